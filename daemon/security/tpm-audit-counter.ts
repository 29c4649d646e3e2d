// The audit chain's head anchor in the TPM: an NV monotonic counter (TPM_NT_COUNTER). It can only go up
// and lives in the chip, so an attacker with the disk but not the TPM cannot set it back to match a
// chain whose tail was cut. Every checkpoint carries the counter value (inside its signed statement);
// at start a counter well ahead of the newest stored checkpoint means checkpoints, and the records
// they covered, were removed.
//
// NV writes wear the chip and cost a few TPM round trips, so the counter advances at most once per
// `minAdvanceMs` (and at every clean stop), not per record nor per checkpoint: a cut made within the
// last advance interval is the lag this anchor cannot see (docs/audit.md).
import type { AuditCheckpoint, AuditHeadAnchor } from '../core/audit-trail.ts';
import type { TpmClient } from './tpm-client.ts';

/** Owner-hierarchy NV index of the counter (TPM 2.0 NV index range 0x01xxxxxx). */
export const auditCounterIndex = 0x0150_0e01;
export const defaultMinAdvanceMs = 600_000;

export class TpmAuditCounter implements AuditHeadAnchor {
  readonly #tpm: TpmClient;
  readonly #minAdvanceMs: number;
  #value: number | undefined;
  #advancedAt = 0;

  constructor(tpm: TpmClient, minAdvanceMs = defaultMinAdvanceMs) {
    this.#tpm = tpm;
    this.#minAdvanceMs = minAdvanceMs;
  }

  /**
   * The counter now (undefined: never advanced on this TPM). Read at start: the first checkpoints
   * after it carry this value, so one crash between an increment and its checkpoint is closed by the
   * next checkpoint instead of growing into a gap with the next crash.
   */
  async read(): Promise<number | undefined> {
    this.#value = await this.#tpm.nvReadCounter(auditCounterIndex);
    this.#advancedAt = Date.now();
    return this.#value;
  }

  async advance(final: boolean): Promise<number | undefined> {
    const now = Date.now();
    if (this.#value !== undefined && !final && now - this.#advancedAt < this.#minAdvanceMs) return this.#value;
    if (this.#value === undefined) await this.#tpm.nvDefineCounter(auditCounterIndex);
    await this.#tpm.nvIncrement(auditCounterIndex);
    this.#value = await this.#tpm.nvReadCounter(auditCounterIndex);
    this.#advancedAt = now;
    return this.#value;
  }

  async recorded(_checkpoint: AuditCheckpoint): Promise<void> {
    // The counter itself is the record.
  }
}

/**
 * The start check: the counter against the newest stored checkpoint's counter. One step of lag is a
 * crash between advancing and saving; more means checkpoints were removed. Undefined when consistent.
 */
export function counterProblem(
  tpmValue: number | undefined,
  newest: AuditCheckpoint | undefined,
  storedHeadSeq: number,
): string | undefined {
  if (tpmValue === undefined) return undefined;
  const stored = newest?.counter;
  if (stored !== undefined && tpmValue - stored <= 1) return undefined;
  const where =
    newest === undefined
      ? 'no checkpoint is left in the store'
      : stored === undefined
        ? `the newest stored checkpoint (seq ${newest.seq}) carries no counter`
        : `the newest stored checkpoint (seq ${newest.seq}) carries counter ${stored}`;
  return `the audit chain was cut: the TPM NV counter is at ${tpmValue} but ${where}; records after seq ${storedHeadSeq} were removed with their checkpoints`;
}
