// The admin page's audit view (auditor): a search over the most recent records of the chain by time
// range, patient, accession, user, peer and event type (`GET /v1/audit/search`), and the break-glass
// review list. The chain's own state (how far it was verified, checkpoints) comes from the audit trail
// flow's status. A search reads at most the last SEARCH_WINDOW records: a look at the page never scans
// a year of audit trail.
import type { AuditRecord, ChainedRecord } from '../core/audit-trail.ts';
import type { ControlRoute } from '../core/control-route.ts';
import { EdgeError } from '../core/errors.ts';

const SEARCH_WINDOW = 20_000;
const MAX_RESULTS = 200;

export interface AuditSearchParts {
  readonly lastSeq: () => number;
  readonly read: (fromSeq: number, toSeq?: number) => AsyncIterable<ChainedRecord>;
  readonly chainStatus: () => unknown;
}

function timeParam(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null || v === '') return undefined;
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new EdgeError('EDGE_AUDIT_RANGE_INVALID', `"${name}" must be an ISO 8601 date-time`);
  return t;
}

function textParam(q: URLSearchParams, name: string): string | undefined {
  const v = (q.get(name) ?? '').trim();
  if (v.length > 64) throw new EdgeError('EDGE_CONTROL_BAD_REQUEST', `"${name}" is at most 64 characters`);
  return v === '' ? undefined : v;
}

export function auditSearchRoutes(p: AuditSearchParts): ControlRoute[] {
  return [
    {
      method: 'GET',
      path: '/v1/audit/search',
      permission: 'auditor',
      handle: async (req) => {
        const q = req.query;
        const from = timeParam(q, 'from');
        const to = timeParam(q, 'to');
        const type = textParam(q, 'type');
        const patient = textParam(q, 'patient');
        const accession = textParam(q, 'accession');
        const user = textParam(q, 'user');
        const peer = textParam(q, 'peer');
        const last = p.lastSeq();
        const fromSeq = Math.max(1, last - SEARCH_WINDOW + 1);
        const matches: Record<string, unknown>[] = [];
        for await (const r of p.read(fromSeq, last)) {
          const { event } = JSON.parse(r.line) as AuditRecord;
          if (from !== undefined && event.at < from) continue;
          if (to !== undefined && event.at > to) continue;
          if (type !== undefined && !event.type.startsWith(type)) continue;
          if (patient !== undefined && event.patient?.id !== patient) continue;
          if (accession !== undefined && event.accessionNumber !== accession) continue;
          if (user !== undefined && !event.participants.some((x) => x.kind === 'user' && x.id === user)) continue;
          if (peer !== undefined && !event.participants.some((x) => x.kind !== 'user' && x.id === peer)) continue;
          matches.push({
            seq: r.seq,
            at: new Date(event.at).toISOString(),
            type: event.type,
            outcome: event.outcome,
            participants: event.participants.map((x) => `${x.kind}:${x.id}${x.address === undefined ? '' : `@${x.address}`}`),
            ...(event.patient === undefined ? {} : { patient: `${event.patient.id}^^^${event.patient.issuer}` }),
            ...(event.accessionNumber === undefined ? {} : { accessionNumber: event.accessionNumber }),
            ...(event.detail === undefined ? {} : { detail: event.detail }),
          });
          if (matches.length > MAX_RESULTS) matches.shift();
        }
        return {
          status: 200,
          body: { searchedFromSeq: fromSeq, searchedToSeq: last, records: matches.reverse(), chain: p.chainStatus() },
        };
      },
    },
  ];
}
