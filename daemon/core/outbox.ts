// The outbox: one store-and-forward mechanism for every outbound leg (status to the RIS, images to the
// PACS, later audit to collectors). Entries are durable and encrypted; entries with the same ordering key
// go out strictly in order; a destination's sender reports, per entry, delivered / retry / rejected.
// The dispatcher decides on the error's kind: transient and ambiguous are retried with capped exponential
// back-off and jitter, permanent moves the entry to the dead-letter list, where a person can retry or
// discard it (audited).
import type { ErrorCode } from './errors.ts';

export interface OutboxError {
  /** A registry code (daemon/core/errors.ts); its kind is what the dispatcher does with the entry. */
  readonly code: ErrorCode;
  /** The peer's own answer where it gave one: HL7 MSA-1 (`AE`), DIMSE status (`0xa700`), HTTP status (`503`). */
  readonly peerStatus?: string;
  /** Without patient data. */
  readonly message: string;
  readonly at: number;
}

export interface OutboxEntry<P = unknown> {
  /** Unique and increasing in enqueue order (so a key's entries sort in the order they were queued). */
  readonly id: string;
  /** Which sender takes it, e.g. `ris`, `pacs`. */
  readonly destination: string;
  /** Entries with the same key are delivered one after another, in id order (order, patient or study). */
  readonly orderingKey: string;
  /** What the payload is, e.g. `hl7-procedure-status`, `dicom-instance`. */
  readonly kind: string;
  /** JSON-serialisable; stored encrypted. Large objects are referenced (spool id), not inlined. */
  readonly payload: P;
  readonly enqueuedAt: number;
  readonly attempts: number;
  /** ms since epoch; not before this. */
  readonly nextAttemptAt: number;
  readonly lastError?: OutboxError;
  /** Times the destination answered this entry and did not take it (e.g. C-STORE 0xA700). */
  readonly refusals?: number;
  /** When it first did; with `refusals`, what bounds an entry before it becomes a dead letter. */
  readonly firstRefusedAt?: number;
}

export interface NewOutboxEntry<P = unknown> {
  readonly destination: string;
  readonly orderingKey: string;
  readonly kind: string;
  readonly payload: P;
}

export type DeliveryResult =
  | { readonly outcome: 'delivered' }
  /**
   * Not delivered. What happens next follows `error.code`'s kind: transient → retry; ambiguous (it may
   * have arrived) → retry under the same identity (MSH-10, SOP Instance UID), so the peer's duplicate
   * check answers the copy; permanent → dead letter. `reachedPeer`: the destination answered and refused
   * this entry (e.g. 0xA700): the entry's failure, counted towards its dead-letter bound, not the
   * destination's (it does not back the destination off).
   */
  | { readonly outcome: 'failed'; readonly error: OutboxError; readonly reachedPeer?: boolean };

/** An adapter that delivers entries of one destination (one association / connection per batch). */
export interface OutboxSender {
  readonly destination: string;
  /** Results in the same order as `entries`. Must not throw for per-entry failures. */
  deliver(entries: readonly OutboxEntry[], signal: AbortSignal): Promise<readonly DeliveryResult[]>;
}

export const CircuitState = { Up: 'up', Degraded: 'degraded', Down: 'down' } as const;
export type CircuitState = (typeof CircuitState)[keyof typeof CircuitState];

export interface DestinationStatus {
  readonly destination: string;
  readonly state: CircuitState;
  readonly queued: number;
  readonly deadLetters: number;
  readonly lastError?: OutboxError;
  readonly lastDeliveredAt?: number;
}

/** An entry the destination refused for good, kept until a person retries or discards it. */
export interface DeadLetter<P = unknown> {
  readonly entry: OutboxEntry<P>;
  /** Why it was refused (the peer's own reason where it gave one). */
  readonly reason: OutboxError;
  readonly deadAt: number;
}

/** What the dispatcher asks of its durable store (daemon/store/outbox-store.ts implements it). */
export interface OutboxRepository {
  /** Enqueue durably in one commit of its own; the entries are visible to the dispatcher once it resolves. */
  enqueue(entries: readonly NewOutboxEntry[]): Promise<readonly OutboxEntry[]>;
  /** Queued (not dead) entries of a destination, in id order. Synchronous: the store keeps an index. */
  queued(destination: string): readonly OutboxEntry[];
  /** Destinations that have queued or dead entries. */
  destinations(): readonly string[];
  deadLetters(destination?: string): readonly DeadLetter[];
  /** Record a batch's outcomes in one durable commit. */
  settle(outcomes: readonly SettledEntry[]): Promise<void>;
  /** Move dead letters back to the queue (attempts reset), or all of a destination's. Returns how many. */
  requeue(selector: { readonly id: string } | { readonly destination: string }, now: number): Promise<number>;
  /** Make queued entries due now (operator "retry now"). Returns how many. */
  hurry(destination: string, now: number): Promise<number>;
  /** Delete a dead letter for good. Returns false when there is none with that id. */
  discard(id: string): Promise<boolean>;
  /** Called after entries became visible (enqueued, requeued, hurried); the dispatcher wakes. */
  onChange(listener: (destination: string) => void): void;
}

export type SettledEntry =
  | { readonly outcome: 'delivered'; readonly entry: OutboxEntry }
  | { readonly outcome: 'retry'; readonly entry: OutboxEntry; readonly error: OutboxError; readonly nextAttemptAt: number }
  | { readonly outcome: 'rejected'; readonly entry: OutboxEntry; readonly error: OutboxError };
