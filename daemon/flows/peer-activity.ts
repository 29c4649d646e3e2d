// What the admin page's peers view shows besides the config: when each peer was last seen and the
// refusals of the last 24 hours by listener and reason. Fed by the same one-line hooks as the metrics
// (it is an EdgeMetrics too, composed with the Prometheus one), held in memory with bounded size.
import type { DimseStatusClass, EdgeMetrics, MetricsListener } from '../core/metrics.ts';

const HOUR_MS = 3_600_000;
/** Distinct peers and refusal reasons kept; past this, the oldest is forgotten (a flood cannot grow it). */
const MAX_KEYS = 256;

export interface RefusalCount {
  readonly listener: MetricsListener;
  readonly reason: string;
  readonly last24h: number;
  readonly lastAt: number;
}

export class PeerActivity implements EdgeMetrics {
  readonly #lastSeen = new Map<string, number>();
  /** listener\0reason → 24 hourly buckets (by hour since the epoch) and the last time. */
  readonly #refusals = new Map<string, { buckets: Map<number, number>; lastAt: number }>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** ms since epoch a peer (HL7 peer name or modality AE title) last had a request answered. */
  lastSeen(kind: 'hl7' | 'dicom', name: string): number | undefined {
    return this.#lastSeen.get(`${kind}:${name}`);
  }

  refusals(): RefusalCount[] {
    const now = this.#now();
    const fromHour = Math.floor(now / HOUR_MS) - 23;
    const out: RefusalCount[] = [];
    for (const [key, r] of this.#refusals) {
      let n = 0;
      for (const [hour, count] of r.buckets) if (hour >= fromHour) n += count;
      if (n === 0) continue;
      const [listener, reason] = key.split('\0') as [MetricsListener, string];
      out.push({ listener, reason, last24h: n, lastAt: r.lastAt });
    }
    return out.sort((a, b) => b.lastAt - a.lastAt);
  }

  hl7Message(peer: string): void {
    this.#seen(`hl7:${peer}`);
  }

  refusal(listener: MetricsListener, reason: string): void {
    const now = this.#now();
    const key = `${listener}\0${reason}`;
    let r = this.#refusals.get(key);
    if (r === undefined) {
      if (this.#refusals.size >= MAX_KEYS) this.#refusals.delete(this.#refusals.keys().next().value!);
      r = { buckets: new Map(), lastAt: now };
      this.#refusals.set(key, r);
    }
    const hour = Math.floor(now / HOUR_MS);
    r.buckets.set(hour, (r.buckets.get(hour) ?? 0) + 1);
    for (const h of r.buckets.keys()) if (h < hour - 23) r.buckets.delete(h);
    r.lastAt = now;
  }

  worklistQuery(aeTitle: string): void {
    this.#seen(`dicom:${aeTitle}`);
  }

  mpps(aeTitle: string): void {
    this.#seen(`dicom:${aeTitle}`);
  }

  cStore(aeTitle: string, _statusClass: DimseStatusClass): void {
    this.#seen(`dicom:${aeTitle}`);
  }

  #seen(key: string): void {
    if (!this.#lastSeen.has(key) && this.#lastSeen.size >= MAX_KEYS) this.#lastSeen.delete(this.#lastSeen.keys().next().value!);
    this.#lastSeen.set(key, this.#now());
  }
}

/** Every event to each of `targets` (the Prometheus metrics and the peers view). */
export function teeMetrics(...targets: readonly EdgeMetrics[]): EdgeMetrics {
  return {
    hl7Message: (peer, type, ack) => targets.forEach((t) => t.hl7Message(peer, type, ack)),
    refusal: (listener, reason) => targets.forEach((t) => t.refusal(listener, reason)),
    worklistQuery: (ae, s) => targets.forEach((t) => t.worklistQuery(ae, s)),
    mpps: (ae, op, c) => targets.forEach((t) => t.mpps(ae, op, c)),
    cStore: (ae, c, b) => targets.forEach((t) => t.cStore(ae, c, b)),
  };
}
