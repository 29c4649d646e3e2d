// Which records a bundle request asks for: by sequence numbers, by event time, or the whole held chain;
// clipped to what is durable, refused when it reaches before the pruned head, is empty, or is larger
// than one bundle may be.
import type { AuditTrail } from '../core/audit-trail.ts';
import { EdgeError } from '../core/errors.ts';
import { seqRangeForTime } from './bundle-export.ts';

export interface BundleRangeRequest {
  readonly fromSeq?: number | undefined;
  readonly toSeq?: number | undefined;
  /** ms since epoch */
  readonly from?: number | undefined;
  readonly to?: number | undefined;
}

export async function bundleRange(
  trail: AuditTrail,
  req: BundleRangeRequest,
  maxRecords: number,
): Promise<{ fromSeq: number; toSeq: number }> {
  let fromSeq = req.fromSeq ?? trail.firstSeq;
  let toSeq = req.toSeq ?? trail.durableSeq;
  if (req.from !== undefined || req.to !== undefined) {
    const found = await seqRangeForTime(trail, req.from, req.to);
    if (found === undefined) throw new EdgeError('EDGE_AUDIT_RANGE_EMPTY', 'no records in that time range');
    fromSeq = Math.max(fromSeq, found.fromSeq);
    toSeq = Math.min(toSeq, found.toSeq);
  }
  if (fromSeq < trail.firstSeq) throw new EdgeError('EDGE_AUDIT_RANGE_INVALID', `records before seq ${trail.firstSeq} were pruned`);
  toSeq = Math.min(toSeq, trail.durableSeq);
  if (toSeq < fromSeq) throw new EdgeError('EDGE_AUDIT_RANGE_EMPTY', `no records in ${fromSeq}..${toSeq}`);
  if (toSeq - fromSeq + 1 > maxRecords)
    throw new EdgeError('EDGE_AUDIT_RANGE_INVALID', `over ${maxRecords} records: ask for a smaller range`);
  return { fromSeq, toSeq };
}
