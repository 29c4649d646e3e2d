// The breach-scope report: for a time window (optionally one peer, user, patient or accession), every
// patient, order, study, peer and user the audit trail says was touched, and how (queried, received,
// forwarded, viewed, exported), with byte counts and whether each recipient was reached over TLS — the
// facts HIPAA's four-factor risk assessment starts from. It is built in one pass over the hash-linked
// chain, which it verifies as it reads (every link in the window, the link into it, and onward to the
// next signed checkpoint), and it is signed like an audit bundle (CMS, the device key) by the caller.
import type { AuditEvent, AuditParticipant } from '../core/audit.ts';
import { type AuditCheckpoint, type AuditRecord, type AuditTrail, parseAuditRecord } from '../core/audit-trail.ts';
import { EdgeError } from '../core/errors.ts';

export type TouchKind = 'queried' | 'received' | 'forwarded' | 'viewed' | 'exported' | 'updated';

export interface BreachScopeRequest {
  /** ms since epoch, inclusive */
  readonly from: number;
  readonly to: number;
  readonly peer?: string | undefined;
  readonly user?: string | undefined;
  readonly patient?: string | undefined;
  readonly accession?: string | undefined;
}

export interface BreachScopeContext {
  readonly site: string;
  readonly environment?: string | undefined;
  /** How a peer is reached: over TLS, in the clear, or not known (a peer no longer configured). */
  readonly transportOf: (p: AuditParticipant) => 'TLS' | 'plain' | 'unknown';
  /** The data elements a touch of this kind involves, in words (e.g. a modality's worklist return keys). */
  readonly dataElementsOf: (how: TouchKind, p: AuditParticipant) => string;
  /** Records between the window and the next signed checkpoint verified at most (default 1,000,000). */
  readonly maxContinuityRecords?: number;
}

type Counts = Partial<Record<TouchKind, number>>;

interface PartyEntry {
  kind: AuditParticipant['kind'];
  id: string;
  addresses: Set<string>;
  how: Counts;
  patients: Set<string>;
  bytes: number;
}

interface PatientEntry {
  id: string;
  issuer: string;
  how: Counts;
  accessionNumbers: Set<string>;
  studies: Set<string>;
  parties: Set<string>;
  firstAt: number;
  lastAt: number;
}

export interface BreachScopeReport {
  readonly format: 'imaging-edge-breach-scope/1';
  readonly site: string;
  readonly environment?: string;
  readonly generatedAt: string;
  readonly window: { readonly from: string; readonly to: string };
  readonly filters: Omit<BreachScopeRequest, 'from' | 'to'>;
  readonly chain: {
    readonly fromSeq: number | null;
    readonly toSeq: number | null;
    readonly recordsRead: number;
    readonly recordsInWindow: number;
    readonly recordsMatched: number;
    readonly linksVerified: boolean;
    readonly problems: readonly string[];
    readonly checkpoint: { readonly seq: number; readonly hash: string; readonly at: string; readonly continuityVerified: boolean } | null;
  };
  readonly totals: {
    readonly patients: number;
    readonly orders: number;
    readonly studies: number;
    readonly instances: number;
    readonly bytes: number;
    readonly peers: number;
    readonly users: number;
  };
  readonly patients: ReadonlyArray<{
    readonly id: string;
    readonly issuer: string;
    readonly how: Counts;
    readonly accessionNumbers: readonly string[];
    readonly studies: readonly string[];
    readonly touchedBy: readonly string[];
    readonly firstAt: string;
    readonly lastAt: string;
  }>;
  readonly studies: ReadonlyArray<{
    readonly studyInstanceUid: string;
    readonly instances: number;
    readonly bytes: number;
    readonly how: Counts;
  }>;
  readonly parties: ReadonlyArray<{
    readonly kind: string;
    readonly id: string;
    readonly addresses: readonly string[];
    readonly how: Counts;
    readonly patients: number;
    readonly bytes: number;
    readonly inTransit: 'TLS' | 'plain' | 'unknown';
    readonly dataElements: readonly string[];
  }>;
  readonly exports: ReadonlyArray<{
    readonly type: string;
    readonly seq: number;
    readonly at: string;
    readonly by: string;
    readonly detail: string;
  }>;
}

const TOUCH: Readonly<Record<string, TouchKind>> = {
  'worklist.query': 'queried',
  'worklist.item-skipped': 'queried',
  'hl7.order-committed': 'received',
  'dicom.instance-stored': 'received',
  'mpps.created': 'received',
  'mpps.updated': 'received',
  'pacs.instance-forwarded': 'forwarded',
  'hl7.status-sent': 'forwarded',
  'pacs.demographics-reconciled': 'updated',
  'audit.bundle-pulled': 'exported',
  'backup.exported': 'exported',
};

function touchOf(event: AuditEvent): TouchKind | undefined {
  const known = TOUCH[event.type];
  if (known !== undefined) return known;
  if (event.eventId === 'Export') return 'exported';
  // A person looking at patient data on the admin page (or under break-glass).
  const who = event.participants.find((p) => p.requestor);
  if (who?.kind === 'user' && (event.patient !== undefined || event.disclosed !== undefined)) return 'viewed';
  return undefined;
}

/** Who received or acted: the requestor, except when the box sent data to someone (then the recipient). */
function partyOf(event: AuditEvent, how: TouchKind): AuditParticipant | undefined {
  if (how === 'forwarded' || how === 'updated')
    return event.participants.find((p) => !p.requestor && p.kind !== 'system') ?? event.participants.find((p) => !p.requestor);
  return event.participants.find((p) => p.requestor) ?? event.participants[0];
}

function bytesOf(event: AuditEvent): number {
  const m = /(\d+) bytes/.exec(event.detail ?? '');
  return m === null ? 0 : Number(m[1]);
}

function matches(event: AuditEvent, req: BreachScopeRequest): boolean {
  if (req.peer !== undefined && !event.participants.some((p) => p.kind !== 'user' && p.id === req.peer)) return false;
  if (req.user !== undefined && !event.participants.some((p) => p.kind === 'user' && p.id === req.user)) return false;
  if (
    req.patient !== undefined &&
    event.patient?.id !== req.patient &&
    !(event.disclosed?.patients ?? []).some((p) => p.id === req.patient)
  )
    return false;
  if (
    req.accession !== undefined &&
    event.accessionNumber !== req.accession &&
    !(event.disclosed?.accessionNumbers ?? []).includes(req.accession)
  )
    return false;
  return true;
}

const iso = (ms: number): string => new Date(ms).toISOString();

export async function breachScope(
  trail: AuditTrail,
  checkpoints: readonly AuditCheckpoint[],
  req: BreachScopeRequest,
  ctx: BreachScopeContext,
): Promise<BreachScopeReport> {
  if (!(req.from <= req.to)) throw new EdgeError('EDGE_REPORT_RANGE_INVALID', '--from must be before --to');
  const problems: string[] = [];
  const patients = new Map<string, PatientEntry>();
  const studies = new Map<string, { instances: number; bytes: number; how: Counts }>();
  const orders = new Set<string>();
  const parties = new Map<string, PartyEntry>();
  const exports: Array<{ type: string; seq: number; at: string; by: string; detail: string }> = [];
  let prevHash = trail.anchorHash;
  let prevSeq = trail.firstSeq - 1;
  let read = 0;
  let inWindow = 0;
  let matched = 0;
  let fromSeq: number | null = null;
  let toSeq: number | null = null;
  /** Hashes of the records at checkpoint seqs the pass went through. */
  const checkpointSeqs = new Set(checkpoints.map((c) => c.seq));
  const passed = new Map<number, string>();
  let instances = 0;
  let bytes = 0;

  const count = (c: Counts, how: TouchKind, n = 1): void => {
    c[how] = (c[how] ?? 0) + n;
  };
  const patientEntry = (id: string, issuer: string, at: number): PatientEntry => {
    const key = `${issuer}\u0000${id}`;
    let e = patients.get(key);
    if (e === undefined) {
      e = { id, issuer, how: {}, accessionNumbers: new Set(), studies: new Set(), parties: new Set(), firstAt: at, lastAt: at };
      patients.set(key, e);
    }
    e.firstAt = Math.min(e.firstAt, at);
    e.lastAt = Math.max(e.lastAt, at);
    return e;
  };

  outer: for await (const batch of trail.readBatches(trail.firstSeq)) {
    for (const r of batch) {
      read++;
      let record: AuditRecord;
      try {
        record = parseAuditRecord(r.line);
      } catch {
        problems.push(`seq ${r.seq}: not a JSON record`);
        prevHash = r.hash;
        prevSeq = r.seq;
        continue;
      }
      // Verified from the first record read: a break before the window would make its records doubtful too.
      if (r.seq !== prevSeq + 1) problems.push(`records ${prevSeq + 1}..${r.seq - 1} are missing`);
      else if (record.prevHash !== prevHash) problems.push(`seq ${r.seq} does not link to seq ${prevSeq}`);
      prevHash = r.hash;
      prevSeq = r.seq;
      if (checkpointSeqs.has(r.seq)) passed.set(r.seq, r.hash);
      const event = record.event;
      // Records are appended in time order; a later one ends the window (the rest is only checked onward).
      if (event.at > req.to) break outer;
      if (event.at < req.from) continue;
      inWindow++;
      fromSeq ??= r.seq;
      toSeq = r.seq;
      if (!matches(event, req)) continue;
      const how = touchOf(event);
      if (how === undefined) continue;
      matched++;
      const party = partyOf(event, how);
      const partyKey = party === undefined ? 'unknown' : `${party.kind}:${party.id}`;
      let p = parties.get(partyKey);
      if (p === undefined && party !== undefined) {
        p = { kind: party.kind, id: party.id, addresses: new Set(), how: {}, patients: new Set(), bytes: 0 };
        parties.set(partyKey, p);
      }
      if (p !== undefined) {
        count(p.how, how);
        if (party?.address !== undefined) p.addresses.add(party.address);
      }
      const n = bytesOf(event);
      if (how === 'exported') {
        const by = event.participants.find((x) => x.requestor);
        exports.push({
          type: event.type,
          seq: r.seq,
          at: iso(event.at),
          by: by === undefined ? 'unknown' : `${by.kind}:${by.id}`,
          detail: event.detail ?? '',
        });
      }
      const named = [...(event.patient === undefined ? [] : [event.patient]), ...(event.disclosed?.patients ?? [])];
      for (const pt of named) {
        if (pt.id === '') continue;
        const e = patientEntry(pt.id, pt.issuer, event.at);
        count(e.how, how);
        e.parties.add(partyKey);
        if (event.accessionNumber !== undefined && event.patient === pt) e.accessionNumbers.add(event.accessionNumber);
        if (event.studyInstanceUid !== undefined && event.patient === pt) e.studies.add(event.studyInstanceUid);
        p?.patients.add(`${pt.issuer}\u0000${pt.id}`);
      }
      if (event.accessionNumber !== undefined) orders.add(event.accessionNumber);
      for (const a of event.disclosed?.accessionNumbers ?? []) orders.add(a);
      if (event.studyInstanceUid !== undefined) {
        let s = studies.get(event.studyInstanceUid);
        if (s === undefined) studies.set(event.studyInstanceUid, (s = { instances: 0, bytes: 0, how: {} }));
        count(s.how, how);
        if (event.type === 'dicom.instance-stored' || event.type === 'pacs.instance-forwarded') {
          s.instances++;
          s.bytes += n;
        }
      }
      if (event.type === 'dicom.instance-stored') instances++;
      bytes += n;
      if (p !== undefined) p.bytes += n;
    }
  }

  // Onward to the next signed checkpoint: the window's records are the ones the device signed.
  const lastInWindow = toSeq ?? prevSeq;
  const checkpoint = checkpoints.find((c) => c.seq >= lastInWindow);
  let continuity = false;
  if (checkpoint !== undefined) {
    if (checkpoint.seq <= prevSeq) continuity = passed.get(checkpoint.seq) === checkpoint.hash;
    else if (checkpoint.seq - prevSeq <= (ctx.maxContinuityRecords ?? 1_000_000)) {
      let hash = prevHash;
      let seq = prevSeq;
      for await (const batch of trail.readBatches(seq + 1, checkpoint.seq)) {
        for (const r of batch) {
          const rec = parseAuditRecord(r.line);
          if (r.seq !== seq + 1 || rec.prevHash !== hash) problems.push(`seq ${r.seq} does not link to seq ${seq}`);
          hash = r.hash;
          seq = r.seq;
        }
      }
      continuity = seq === checkpoint.seq && hash === checkpoint.hash;
    }
    if (!continuity) problems.push(`the chain does not reach the checkpoint at seq ${checkpoint.seq} with its signed hash`);
  }

  const partyList = [...parties.values()].map((p) => {
    const participant: AuditParticipant = { kind: p.kind, id: p.id, requestor: true };
    return {
      kind: p.kind,
      id: p.id,
      addresses: [...p.addresses].sort(),
      how: p.how,
      patients: p.patients.size,
      bytes: p.bytes,
      inTransit: p.kind === 'user' ? ('TLS' as const) : ctx.transportOf(participant),
      dataElements: (Object.keys(p.how) as TouchKind[]).map((h) => `${h}: ${ctx.dataElementsOf(h, participant)}`),
    };
  });
  return {
    format: 'imaging-edge-breach-scope/1',
    site: ctx.site,
    ...(ctx.environment === undefined ? {} : { environment: ctx.environment }),
    generatedAt: new Date().toISOString(),
    window: { from: iso(req.from), to: iso(req.to) },
    filters: {
      ...(req.peer === undefined ? {} : { peer: req.peer }),
      ...(req.user === undefined ? {} : { user: req.user }),
      ...(req.patient === undefined ? {} : { patient: req.patient }),
      ...(req.accession === undefined ? {} : { accession: req.accession }),
    },
    chain: {
      fromSeq,
      toSeq,
      recordsRead: read,
      recordsInWindow: inWindow,
      recordsMatched: matched,
      linksVerified: problems.length === 0,
      problems: problems.slice(0, 100),
      checkpoint:
        checkpoint === undefined
          ? null
          : { seq: checkpoint.seq, hash: checkpoint.hash, at: iso(checkpoint.at), continuityVerified: continuity },
    },
    totals: {
      patients: patients.size,
      orders: orders.size,
      studies: studies.size,
      instances,
      bytes,
      peers: partyList.filter((p) => p.kind !== 'user').length,
      users: partyList.filter((p) => p.kind === 'user').length,
    },
    patients: [...patients.values()]
      .sort((a, b) => a.firstAt - b.firstAt)
      .map((e) => ({
        id: e.id,
        issuer: e.issuer,
        how: e.how,
        accessionNumbers: [...e.accessionNumbers].sort(),
        studies: [...e.studies].sort(),
        touchedBy: [...e.parties].sort(),
        firstAt: iso(e.firstAt),
        lastAt: iso(e.lastAt),
      })),
    studies: [...studies.entries()].map(([studyInstanceUid, s]) => ({ studyInstanceUid, ...s })),
    parties: partyList,
    exports,
  };
}
