// The challenges of WebAuthn ceremonies in progress, kept server-side (never trusted back from the
// client), each usable once and only until its ceremony times out. Keys are per signed-in session or
// per pending sign-in, so the map is bounded by the sessions the listener already bounds; the cap is a
// second fence that drops the oldest.
export class WebAuthnChallenges {
  readonly #ttlMs: number;
  readonly #max: number;
  readonly #pending = new Map<string, { challenge: string; expiresAt: number }>();

  constructor(ttlMs: number, max = 4096) {
    this.#ttlMs = ttlMs;
    this.#max = max;
  }

  put(key: string, challenge: string, now = Date.now()): void {
    this.#pending.delete(key);
    if (this.#pending.size >= this.#max) {
      for (const [k, v] of this.#pending) {
        if (v.expiresAt <= now || this.#pending.size >= this.#max) this.#pending.delete(k);
        else break;
      }
    }
    this.#pending.set(key, { challenge, expiresAt: now + this.#ttlMs });
  }

  /** The challenge for `key`, removed: a second answer to the same challenge finds nothing. */
  take(key: string, now = Date.now()): string | undefined {
    const entry = this.#pending.get(key);
    this.#pending.delete(key);
    return entry !== undefined && entry.expiresAt > now ? entry.challenge : undefined;
  }
}
