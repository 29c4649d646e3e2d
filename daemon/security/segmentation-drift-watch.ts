// How edged learns that its firewall drifted. edged has no capabilities, so it cannot list nft tables;
// the root edge-firewall-verify timer runs `edgectl segmentation verify --result FILE` and edged reads
// FILE periodically. It reports changes of state only (ok → drift → ok), and a result that stops being
// refreshed counts as unknown, not as ok.
import { open } from 'node:fs/promises';

/** The verify result file is a few kilobytes; anything much larger is not one. */
const maxResultBytes = 1_048_576;

export type SegmentationState =
  | { readonly state: 'ok'; readonly at: string }
  | { readonly state: 'drift'; readonly at: string; readonly absent: boolean; readonly missing: number; readonly unexpected: number }
  | { readonly state: 'unknown'; readonly reason: string };

export interface DriftWatchOptions {
  readonly file: string;
  readonly intervalMs: number;
  /** A result older than this is stale (the verify timer stopped): unknown. */
  readonly staleAfterMs: number;
  /** Called on every change of state, including the first reading. */
  readonly onChange: (current: SegmentationState, previous: SegmentationState | undefined) => void;
  readonly now?: () => number;
}

export class SegmentationDriftWatch {
  readonly #o: DriftWatchOptions;
  #timer: NodeJS.Timeout | undefined;
  #last: SegmentationState | undefined;
  #checking: Promise<void> | undefined;

  constructor(options: DriftWatchOptions) {
    this.#o = options;
  }

  get current(): SegmentationState | undefined {
    return this.#last;
  }

  start(): void {
    if (this.#timer !== undefined) return;
    void this.check();
    this.#timer = setInterval(() => void this.check(), this.#o.intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#checking;
  }

  /** Reads the result once; never throws (a broken file is an unknown state, logged). */
  check(): Promise<void> {
    this.#checking ??= this.#read().then((state) => {
      this.#checking = undefined;
      const previous = this.#last;
      if (previous !== undefined && sameState(previous, state)) return;
      this.#last = state;
      this.#o.onChange(state, previous);
    });
    return this.#checking;
  }

  async #read(): Promise<SegmentationState> {
    let text: string;
    try {
      const handle = await open(this.#o.file, 'r');
      try {
        const { size } = await handle.stat();
        if (size > maxResultBytes) return { state: 'unknown', reason: `result larger than ${maxResultBytes} bytes` };
        text = await handle.readFile({ encoding: 'utf8' });
      } finally {
        await handle.close();
      }
    } catch (err) {
      return { state: 'unknown', reason: `cannot read the verify result (${(err as NodeJS.ErrnoException).code ?? 'error'})` };
    }
    let r: { at?: unknown; drift?: unknown; absent?: unknown; missing?: unknown; unexpected?: unknown };
    try {
      r = JSON.parse(text) as typeof r;
    } catch {
      return { state: 'unknown', reason: 'the verify result is not JSON' };
    }
    const at = typeof r.at === 'string' ? Date.parse(r.at) : Number.NaN;
    if (Number.isNaN(at) || typeof r.drift !== 'boolean') return { state: 'unknown', reason: 'the verify result lacks "at" or "drift"' };
    if ((this.#o.now ?? Date.now)() - at > this.#o.staleAfterMs)
      return { state: 'unknown', reason: `the verify result is stale (from ${String(r.at)})` };
    if (!r.drift) return { state: 'ok', at: String(r.at) };
    return {
      state: 'drift',
      at: String(r.at),
      absent: r.absent === true,
      missing: Array.isArray(r.missing) ? r.missing.length : 0,
      unexpected: Array.isArray(r.unexpected) ? r.unexpected.length : 0,
    };
  }
}

function sameState(a: SegmentationState, b: SegmentationState): boolean {
  if (a.state !== b.state) return false;
  if (a.state === 'drift' && b.state === 'drift') return a.absent === b.absent && a.missing === b.missing && a.unexpected === b.unexpected;
  return true;
}
