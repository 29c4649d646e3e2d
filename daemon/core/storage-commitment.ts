// Storage Commitment Push Model (PS3.4 Annex J): what a modality's N-ACTION asks the box to commit, and
// when and how the box answers it. The box commits an instance only once it holds no copy of its own:
// the PACS has confirmed it (its C-STORE success, or its own storage commitment where it offers one).
// Instances still on their way wait, within the request's deadline; then they fail with the reason.
import type { NewOutboxEntry } from './outbox.ts';

export const StorageCommitmentPushModelSopClass = '1.2.840.10008.1.20.1';
/** The well-known SOP Instance of the Push Model (PS3.4 J.3.5). */
export const StorageCommitmentPushModelSopInstance = '1.2.840.10008.1.20.1.1';
/** Action Type ID of "Request Storage Commitment" (PS3.4 J.3.2.1). */
export const RequestStorageCommitmentActionType = 1;
/** Event Type IDs of the report (PS3.4 J.3.3.1). */
export const CommitmentEventType = { Success: 1, Failures: 2 } as const;
export type CommitmentEventType = (typeof CommitmentEventType)[keyof typeof CommitmentEventType];

/** Failure Reason (0008,1197) values of PS3.4 J.3.3.1.1 the box reports. */
export const FailureReason = {
  ProcessingFailure: 0x0110,
  NoSuchObjectInstance: 0x0112,
  ClassInstanceConflict: 0x0119,
} as const;

/** Most Referenced SOP Sequence items one request may carry (a large study is a few thousand). */
export const MAX_COMMITMENT_ITEMS = 50_000;

export interface ReferencedSop {
  readonly sopClassUid: string;
  readonly sopInstanceUid: string;
}

export interface FailedSop extends ReferencedSop {
  readonly failureReason: number;
}

/** One N-ACTION, as committed before its N-ACTION-RSP (stored encrypted: UIDs identify a patient's images). */
export interface CommitmentRequest {
  readonly transactionUid: string;
  /** The modality's calling AE title and its peer name in the config (for the report's route). */
  readonly callingAeTitle: string;
  readonly modality: string;
  /** Where the N-ACTION came from: the report's default host. */
  readonly remoteAddress: string;
  readonly items: readonly ReferencedSop[];
  readonly receivedAt: number;
  /** After this, instances the PACS has not confirmed are reported as failed (0x0110). */
  readonly deadlineAt: number;
  readonly state: 'pending' | 'reported';
  readonly reportedAt?: number;
}

/** What the box knows of one instance now. */
export type InstanceState =
  | { readonly state: 'unknown' }
  /** In the spool, on its way to the PACS; `refused` when the PACS refused it for good (a dead letter). */
  | { readonly state: 'spooled'; readonly sopClassUid: string; readonly refused: boolean }
  /** The PACS confirmed it (and, where it offers storage commitment, committed it). */
  | { readonly state: 'committed'; readonly sopClassUid: string };

export interface CommitmentReport {
  readonly transactionUid: string;
  readonly eventTypeId: CommitmentEventType;
  readonly success: readonly ReferencedSop[];
  readonly failed: readonly FailedSop[];
  /** Why instances failed, for the audit record and the log (no patient data). */
  readonly why?: string;
}

export type CommitmentVerdict =
  { readonly ready: false; readonly waiting: number } | { readonly ready: true; readonly report: CommitmentReport };

/**
 * Decide a request against the instances' states (one per item, same order). Ready once no instance is
 * still on its way, or once the deadline has passed (those still on their way then fail).
 */
export function evaluateCommitment(request: CommitmentRequest, states: readonly InstanceState[], now: number): CommitmentVerdict {
  const success: ReferencedSop[] = [];
  const failed: FailedSop[] = [];
  const reasons = new Map<string, number>();
  const fail = (item: ReferencedSop, failureReason: number, why: string): void => {
    failed.push({ ...item, failureReason });
    reasons.set(why, (reasons.get(why) ?? 0) + 1);
  };
  let waiting = 0;
  const late = now >= request.deadlineAt;
  request.items.forEach((item, i) => {
    const s = states[i] ?? { state: 'unknown' };
    if (s.state === 'unknown') fail(item, FailureReason.NoSuchObjectInstance, 'not received by the box');
    else if (s.sopClassUid !== item.sopClassUid) fail(item, FailureReason.ClassInstanceConflict, 'stored under another SOP class');
    else if (s.state === 'committed') success.push(item);
    else if (s.refused) fail(item, FailureReason.ProcessingFailure, 'refused by the PACS');
    else if (late) fail(item, FailureReason.ProcessingFailure, 'not confirmed by the PACS before the deadline');
    else waiting++;
  });
  if (waiting > 0) return { ready: false, waiting };
  const why = [...reasons].map(([text, n]) => `${n} ${text}`).join('; ');
  return {
    ready: true,
    report: {
      transactionUid: request.transactionUid,
      eventTypeId: failed.length === 0 ? CommitmentEventType.Success : CommitmentEventType.Failures,
      success,
      failed,
      ...(why === '' ? {} : { why }),
    },
  };
}

/** Outbox payload of a report: everything the sender needs, the route resolved from the config when sent. */
export interface CommitmentReportPayload {
  readonly report: CommitmentReport;
  readonly modality: string;
  readonly callingAeTitle: string;
  readonly remoteAddress: string;
}

export const COMMITMENT_REPORT_KIND = 'storage-commitment-report';

/** Durable record of the requests (implemented in store/commitment-repository.ts). */
export interface CommitmentRepository {
  /**
   * Commit a new request. One still pending with the same Transaction UID from the same AE is kept as it
   * is ('exists'); one already reported is replaced (the repeat gets its own report).
   */
  record(request: CommitmentRequest): Promise<'created' | 'exists'>;
  pending(): Promise<readonly CommitmentRequest[]>;
  /** Mark the request reported and queue its report, in one commit. */
  complete(request: CommitmentRequest, reportedAt: number, report: NewOutboxEntry<CommitmentReportPayload>): Promise<void>;
  /** Delete reported requests older than `before`; returns how many. */
  prune(before: number): Promise<number>;
}

/** Where instances are (implemented by the spool, which remembers what the PACS confirmed). */
export interface InstanceLedger {
  states(sopInstanceUids: readonly string[]): Promise<readonly InstanceState[]>;
  /** Forget confirmations older than `before` (they only serve commitment requests); returns how many. */
  prune(before: number): Promise<number>;
}
