// What the admin page's images view shows besides the spool's own usage: instances stored and
// forwarded per hour over the last 24 hours, and the most recent refusals with their DIMSE status and
// reason (no patient data: the reasons are the box's own fixed texts). In memory, bounded.
const HOUR_MS = 3_600_000;
const RECENT_REFUSALS = 20;

export interface ImageRefusal {
  readonly at: string;
  readonly aeTitle: string;
  readonly status: string;
  readonly why: string;
}

export class ImageActivity {
  readonly #stored = new Map<number, number>();
  readonly #forwarded = new Map<number, number>();
  readonly #refusals: ImageRefusal[] = [];
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  stored(): void {
    this.#count(this.#stored);
  }

  forwarded(): void {
    this.#count(this.#forwarded);
  }

  refused(aeTitle: string, status: number, why: string): void {
    this.#refusals.unshift({
      at: new Date(this.#now()).toISOString(),
      aeTitle,
      status: `0x${status.toString(16).padStart(4, '0')}`,
      why: why.slice(0, 200),
    });
    this.#refusals.length = Math.min(this.#refusals.length, RECENT_REFUSALS);
  }

  /** The last 24 hours, oldest first: `{ hour (ISO), stored, forwarded }`, and the recent refusals. */
  summary(): { perHour: { hour: string; stored: number; forwarded: number }[]; refusals: readonly ImageRefusal[] } {
    const current = Math.floor(this.#now() / HOUR_MS);
    const perHour = [];
    for (let h = current - 23; h <= current; h++)
      perHour.push({ hour: new Date(h * HOUR_MS).toISOString(), stored: this.#stored.get(h) ?? 0, forwarded: this.#forwarded.get(h) ?? 0 });
    return { perHour, refusals: [...this.#refusals] };
  }

  #count(buckets: Map<number, number>): void {
    const hour = Math.floor(this.#now() / HOUR_MS);
    buckets.set(hour, (buckets.get(hour) ?? 0) + 1);
    for (const h of buckets.keys()) if (h < hour - 23) buckets.delete(h);
  }
}
