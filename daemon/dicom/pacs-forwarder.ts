// The outbox sender of destination `pacs`: takes a batch of spooled-instance entries, sends them over one
// C-STORE association (or one STOW-RS request each, see stow-client.ts), and removes each instance from
// the spool only after the PACS confirmed it. Entries whose spool record is gone or was replaced by a
// newer copy are delivered without sending (the newer copy has its own entry): re-sends are idempotent.
import { EdgeError, ErrorKind, kindOf, type ErrorCode } from '../core/errors.ts';
import type { SpooledInstance, SpooledInstanceRef, SpoolReader } from '../core/instance-spool.ts';
import type { Logger } from '../core/log.ts';
import type { DeliveryResult, OutboxEntry, OutboxError, OutboxSender } from '../core/outbox.ts';
import { Status } from './dimse-command.ts';
import { storeBatch, type StoreItem, type StoreOutcome, type StoreScuOptions } from './store-scu.ts';

/** Rewrites an instance's data set on its way out (demographic reconciliation); identity when absent. */
export type InstanceTransform = (instance: SpooledInstance, data: AsyncIterable<Uint8Array>) => AsyncIterable<Uint8Array>;

/** Sends already-resolved instances; one result per instance, never throws per instance. */
export type InstanceTransport = (items: readonly StoreItem[], signal: AbortSignal) => Promise<StoreOutcome[]>;

export interface PacsForwarderOptions {
  readonly destination: string;
  readonly spool: SpoolReader;
  readonly transport: InstanceTransport;
  readonly transform?: InstanceTransform;
  /** Called once per instance the PACS confirmed (for the audit trail). */
  readonly onForwarded?: (instance: SpooledInstance, status: number) => void;
  readonly logger: Logger;
}

/** C-STORE status → what the outbox does with the entry (PS3.4 B.2.3, PS3.7 C). */
export function classifyStoreStatus(status: number): 'delivered' | 'retry' | 'rejected' {
  if (status === Status.Success || (status & 0xf000) === 0xb000 || status === Status.DuplicateSOPInstance) return 'delivered';
  // Out of resources and processing failures are the PACS's momentary trouble; try again later.
  if ((status & 0xff00) === 0xa700 || status === Status.ProcessingFailure || status === Status.ResourceLimitation) return 'retry';
  return 'rejected';
}

export function dimseTransport(options: StoreScuOptions): InstanceTransport {
  return (items, signal) => storeBatch(options, items, signal);
}

export class PacsForwarder implements OutboxSender {
  readonly destination: string;
  readonly #o: PacsForwarderOptions;

  constructor(options: PacsForwarderOptions) {
    this.destination = options.destination;
    this.#o = options;
  }

  async deliver(entries: readonly OutboxEntry[], signal: AbortSignal): Promise<readonly DeliveryResult[]> {
    const results: Array<DeliveryResult | undefined> = entries.map(() => undefined);
    const toSend: Array<{ index: number; instance: SpooledInstance }> = [];
    for (const [index, entry] of entries.entries()) {
      const ref = entry.payload as Partial<SpooledInstanceRef> | null;
      if (ref === null || typeof ref.key !== 'string' || typeof ref.fileId !== 'string') {
        results[index] = {
          outcome: 'failed',
          error: outboxError('EDGE_OUTBOX_PAYLOAD_INVALID', 'entry payload is not a spooled instance'),
        };
        continue;
      }
      let instance: SpooledInstance | undefined;
      try {
        instance = await this.#o.spool.get(ref.key);
      } catch (err) {
        results[index] = { outcome: 'failed', error: retried(toOutboxError(err), 'EDGE_OUTBOX_SENDER_FAILED') };
        continue;
      }
      if (instance === undefined || instance.fileId !== ref.fileId) {
        results[index] = { outcome: 'delivered' };
        continue;
      }
      toSend.push({ index, instance });
    }
    if (toSend.length > 0) {
      const items: StoreItem[] = toSend.map(({ instance }) => ({
        sopClassUid: instance.sopClassUid,
        sopInstanceUid: instance.sopInstanceUid,
        transferSyntaxUid: instance.transferSyntaxUid,
        data: () => {
          const raw = this.#o.spool.read(instance);
          return this.#o.transform === undefined ? raw : this.#o.transform(instance, raw);
        },
      }));
      const outcomes = await this.#o.transport(items, signal);
      // Settled together: their spool removals share one synced database batch.
      await Promise.all(
        toSend.map(async ({ index, instance }, i) => {
          const outcome = outcomes[i] ?? { error: new EdgeError('EDGE_OUTBOX_SENDER_FAILED', 'no outcome'), reachedPeer: false };
          results[index] = await this.#settle(instance, outcome);
        }),
      );
    }
    return results.map((r): DeliveryResult => r ?? { outcome: 'failed', error: outboxError('EDGE_OUTBOX_SENDER_FAILED', 'not attempted') });
  }

  async #settle(instance: SpooledInstance, outcome: StoreOutcome): Promise<DeliveryResult> {
    if ('error' in outcome) {
      const e = toOutboxError(outcome.error);
      // Only a refusal of this instance (or an unreadable copy of it) is a dead letter; any other failure is
      // the transport's, and an outage queues, it never dead-letters.
      const error = ENTRY_FAILURES.has(e.code) ? e : retried(e, 'EDGE_STORE_SCU_FAILED');
      const peerStatus = outcome.error.detail?.['httpStatus'];
      return {
        outcome: 'failed',
        error: peerStatus === undefined ? error : { ...error, peerStatus: String(peerStatus) },
        reachedPeer: outcome.reachedPeer,
      };
    }
    const verdict = classifyStoreStatus(outcome.status);
    const hex = `0x${outcome.status.toString(16).padStart(4, '0')}`;
    if (verdict !== 'delivered') {
      this.#o.logger.warn('forward.status', { destination: this.destination, status: hex, verdict, spoolKey: instance.key });
      const code: ErrorCode = verdict === 'retry' ? 'EDGE_STORE_SCU_REFUSED' : 'EDGE_STORE_SCU_REJECTED';
      const error: OutboxError = {
        code,
        peerStatus: hex,
        message: `PACS answered ${hex}${outcome.errorComment === undefined ? '' : ` (${sanitize(outcome.errorComment)})`}`,
        at: Date.now(),
      };
      return { outcome: 'failed', error, reachedPeer: true };
    }
    try {
      await this.#o.spool.remove(instance.key, instance.fileId);
    } catch (err) {
      // Confirmed by the PACS but still spooled: delivering again later is harmless (same object).
      this.#o.logger.warn('forward.spool-remove-failed', { code: toOutboxError(err).code, spoolKey: instance.key });
      return { outcome: 'failed', error: retried(toOutboxError(err), 'EDGE_STORE_WRITE_FAILED') };
    }
    this.#o.onForwarded?.(instance, outcome.status);
    return { outcome: 'delivered' };
  }
}

/** PACS error comments are free text; keep them short and printable (they reach logs and the admin page). */
function sanitize(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, 64);
}

/** Permanent failures that belong to the instance itself, not to the way to the PACS. */
const ENTRY_FAILURES: ReadonlySet<ErrorCode> = new Set(['EDGE_STORE_SCU_REJECTED', 'EDGE_STOW_REJECTED', 'EDGE_STORE_DECRYPT_FAILED']);

/** A failure that must be tried again whatever its own code says: recoded as `code` when that is permanent. */
function retried(error: OutboxError, code: ErrorCode): OutboxError {
  return kindOf(error.code) === ErrorKind.Permanent ? { ...error, code, message: `${error.code}: ${error.message}`.slice(0, 500) } : error;
}

function outboxError(code: ErrorCode, message: string): OutboxError {
  return { code, message, at: Date.now() };
}

function toOutboxError(err: unknown): OutboxError {
  if (err instanceof EdgeError) {
    return { code: err.code, message: err.message, at: Date.now() };
  }
  return { code: 'EDGE_OUTBOX_SENDER_FAILED', message: err instanceof Error ? err.message : String(err), at: Date.now() };
}
