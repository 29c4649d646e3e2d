// The audit trail's disk budget: how much of it the chain uses, measured now and then by a cheap probe
// (the store's size estimate of the chain's key range, not a scan), and a level that moves between ok,
// warning (80 %) and exceeded (100 %). A change of level is reported once, upward at once and downward
// only below the threshold minus a margin, so usage hovering at a threshold does not repeat alarms.
// Nothing here ever stops recording: over budget, the box keeps every record and says so loudly.

export type AuditBudgetLevel = 'ok' | 'warning' | 'exceeded';

export const WARNING_FRACTION = 0.8;
/** Fall back a level only this far below its threshold. */
const HYSTERESIS_FRACTION = 0.02;

export interface AuditBudgetStatus {
  readonly budgetBytes: number;
  /** Undefined until the first measurement. */
  readonly usedBytes: number | undefined;
  readonly level: AuditBudgetLevel;
  /** ms since epoch of the last measurement. */
  readonly measuredAt: number | undefined;
  /** Why the last measurement failed, if it did (the level is then the one before). */
  readonly problem?: string;
}

export interface AuditBudgetChange {
  readonly from: AuditBudgetLevel;
  readonly to: AuditBudgetLevel;
  readonly usedBytes: number;
  readonly budgetBytes: number;
}

export interface AuditDiskBudgetOptions {
  readonly budgetBytes: number;
  /** Bytes the chain occupies on disk (approximate is fine; it must be cheap). */
  readonly measure: () => Promise<number>;
  readonly checkEveryMs: number;
  readonly onChange: (change: AuditBudgetChange) => void;
  readonly onMeasureFailed?: (error: string) => void;
  readonly now?: () => number;
}

/** The level for a usage, given the level before (for the hysteresis on the way down). */
export function budgetLevel(usedBytes: number, budgetBytes: number, before: AuditBudgetLevel = 'ok'): AuditBudgetLevel {
  const f = usedBytes / budgetBytes;
  if (f >= 1) return 'exceeded';
  if (before === 'exceeded' && f >= 1 - HYSTERESIS_FRACTION) return 'exceeded';
  if (f >= WARNING_FRACTION) return 'warning';
  if (before !== 'ok' && f >= WARNING_FRACTION - HYSTERESIS_FRACTION) return 'warning';
  return 'ok';
}

export class AuditDiskBudget {
  readonly #o: AuditDiskBudgetOptions;
  readonly #now: () => number;
  #level: AuditBudgetLevel = 'ok';
  #usedBytes: number | undefined;
  #measuredAt: number | undefined;
  #problem: string | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #checking: Promise<void> | undefined;

  constructor(options: AuditDiskBudgetOptions) {
    if (!(options.budgetBytes > 0)) throw new TypeError('budgetBytes must be positive');
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  get status(): AuditBudgetStatus {
    return {
      budgetBytes: this.#o.budgetBytes,
      usedBytes: this.#usedBytes,
      level: this.#level,
      measuredAt: this.#measuredAt,
      ...(this.#problem === undefined ? {} : { problem: this.#problem }),
    };
  }

  /** Measure once now (the level is known at start), then every `checkEveryMs`. */
  async start(): Promise<void> {
    if (this.#timer !== undefined) return;
    await this.check();
    this.#timer = setInterval(() => void this.check(), this.#o.checkEveryMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#checking;
  }

  /** One measurement; never throws (a failed probe is reported and the level kept). */
  check(): Promise<void> {
    this.#checking ??= this.#measure().finally(() => (this.#checking = undefined));
    return this.#checking;
  }

  async #measure(): Promise<void> {
    let used: number;
    try {
      used = await this.#o.measure();
    } catch (err) {
      this.#problem = err instanceof Error ? err.message : String(err);
      this.#o.onMeasureFailed?.(this.#problem);
      return;
    }
    this.#problem = undefined;
    this.#usedBytes = used;
    this.#measuredAt = this.#now();
    const from = this.#level;
    const to = budgetLevel(used, this.#o.budgetBytes, from);
    this.#level = to;
    if (to !== from) this.#o.onChange({ from, to, usedBytes: used, budgetBytes: this.#o.budgetBytes });
  }
}
