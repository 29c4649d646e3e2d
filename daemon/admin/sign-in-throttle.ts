// Back-off after failed sign-ins, per user name and per source address. Unknown user names are
// counted exactly like known ones, so the answers (and their timing) never tell which names exist.
// Kept in memory: a restart resets the back-off, never the persisted lock of an account.

export interface ThrottleOptions {
  readonly backoffAfterFailures: number;
  readonly addressBackoffAfterFailures: number;
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
}

interface Counter {
  failures: number;
  notBefore: number;
  lastFailureAt: number;
}

const MAX_TRACKED = 10_000;

export class SignInThrottle {
  readonly #o: ThrottleOptions;
  readonly #byName = new Map<string, Counter>();
  readonly #byAddress = new Map<string, Counter>();

  constructor(options: ThrottleOptions) {
    this.#o = options;
  }

  /** Milliseconds until a sign-in for this name from this address may be tried; 0 = now. */
  waitMs(username: string, address: string, now = Date.now()): number {
    const a = this.#byName.get(username)?.notBefore ?? 0;
    const b = this.#byAddress.get(address)?.notBefore ?? 0;
    return Math.max(0, Math.max(a, b) - now);
  }

  /** Counts a failure; returns the name's failures in a row and whether a back-off began with this one. */
  failed(username: string, address: string, now = Date.now()): { failures: number; backoffStarted: boolean } {
    const name = this.#bump(this.#byName, username, this.#o.backoffAfterFailures, now);
    const addr = this.#bump(this.#byAddress, address, this.#o.addressBackoffAfterFailures, now);
    return { failures: name.failures, backoffStarted: name.started || addr.started };
  }

  succeeded(username: string, address: string): void {
    this.#byName.delete(username);
    this.#byAddress.delete(address);
  }

  /** An admin's unlock clears the name's back-off too. */
  clear(username: string): void {
    this.#byName.delete(username);
  }

  failuresOf(username: string): number {
    return this.#byName.get(username)?.failures ?? 0;
  }

  #bump(map: Map<string, Counter>, key: string, after: number, now: number): { failures: number; started: boolean } {
    const c = map.get(key) ?? { failures: 0, notBefore: 0, lastFailureAt: now };
    c.failures += 1;
    c.lastFailureAt = now;
    const over = c.failures - after;
    if (over >= 0) c.notBefore = now + Math.min(this.#o.maxBackoffMs, this.#o.initialBackoffMs * 2 ** Math.min(over, 30));
    map.delete(key);
    map.set(key, c);
    // A spray of made-up names must not grow the map without bound: the oldest entries go first.
    while (map.size > MAX_TRACKED) map.delete(map.keys().next().value as string);
    return { failures: c.failures, started: over === 0 };
  }
}
