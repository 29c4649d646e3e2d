// Connections from TCP accept until they have proven who they are (TLS handshake with a verified
// certificate, then the protocol's own check), held apart from authenticated connections so that
// strangers can never keep a known peer out. Bounded per source address and in total: when full, the
// OLDEST connection of that address (or of all) yields to the newcomer, so a flood cannot lock anyone
// out for longer than it keeps flooding; each one is closed at the deadline whatever it is doing.
//
// File descriptors a listener can hold are therefore bounded by this pool's total plus the
// authenticated cap.

/** What the pool needs of a socket: closing it. */
export interface PoolSocket {
  destroy(): void;
}

export interface PreAuthenticationLimits {
  /** From accept to authenticated. */
  readonly timeoutMs: number;
  readonly maxConnections: number;
  readonly maxConnectionsPerAddress: number;
}

export interface PoolTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const nodeTimers: PoolTimers = {
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** Why the pool closed a connection (the listener audits it). */
export const PoolExpulsion = {
  Deadline: 'pre-authentication deadline',
  OldestOfAddress: 'pre-authentication connections per address: oldest closed',
  Oldest: 'pre-authentication connections: oldest closed',
} as const;
export type PoolExpulsion = (typeof PoolExpulsion)[keyof typeof PoolExpulsion];

/** Why a listener closed a connection at accept: no peer of it may connect from that address. */
export const SOURCE_NOT_ALLOWED = 'source address not allowed';

interface Entry<S> {
  readonly socket: S;
  readonly remoteAddress: string;
  readonly timer: unknown;
}

export class PreAuthenticationPool<S extends PoolSocket> {
  readonly #limits: PreAuthenticationLimits;
  readonly #timers: PoolTimers;
  readonly #onExpel: (socket: S, remoteAddress: string, why: PoolExpulsion) => void;
  /** Oldest first (a Map keeps insertion order). */
  readonly #entries = new Map<string, Entry<S>>();
  readonly #perAddress = new Map<string, number>();

  /**
   * `onExpel` is called after the pool has let go of the connection; it closes the socket and audits
   * the reason.
   */
  constructor(
    limits: PreAuthenticationLimits,
    onExpel: (socket: S, remoteAddress: string, why: PoolExpulsion) => void,
    timers: PoolTimers = nodeTimers,
  ) {
    for (const key of ['timeoutMs', 'maxConnections', 'maxConnectionsPerAddress'] as const) {
      if (!Number.isInteger(limits[key]) || limits[key] < 1)
        throw new TypeError(`PreAuthenticationPool: ${key} must be a positive integer`);
    }
    this.#limits = limits;
    this.#onExpel = onExpel;
    this.#timers = timers;
  }

  get size(): number {
    return this.#entries.size;
  }

  has(key: string): boolean {
    return this.#entries.has(key);
  }

  /** Take a new connection in, making room first by expelling the oldest of its address or of all. */
  admit(key: string, socket: S, remoteAddress: string): void {
    if ((this.#perAddress.get(remoteAddress) ?? 0) >= this.#limits.maxConnectionsPerAddress) {
      this.#expelOldest((address) => address === remoteAddress, PoolExpulsion.OldestOfAddress);
    }
    if (this.#entries.size >= this.#limits.maxConnections) this.#expelOldest(() => true, PoolExpulsion.Oldest);
    const timer = this.#timers.setTimeout(() => this.#expel(key, PoolExpulsion.Deadline), this.#limits.timeoutMs);
    this.#entries.set(key, { socket, remoteAddress, timer });
    this.#perAddress.set(remoteAddress, (this.#perAddress.get(remoteAddress) ?? 0) + 1);
  }

  /** The connection authenticated or closed: it no longer counts. False when it was not in the pool. */
  leave(key: string): boolean {
    const entry = this.#entries.get(key);
    if (entry === undefined) return false;
    this.#timers.clearTimeout(entry.timer);
    this.#entries.delete(key);
    const n = (this.#perAddress.get(entry.remoteAddress) ?? 1) - 1;
    if (n <= 0) this.#perAddress.delete(entry.remoteAddress);
    else this.#perAddress.set(entry.remoteAddress, n);
    return true;
  }

  #expelOldest(of: (remoteAddress: string) => boolean, why: PoolExpulsion): void {
    for (const [key, entry] of this.#entries) {
      if (!of(entry.remoteAddress)) continue;
      this.#expel(key, why);
      return;
    }
  }

  #expel(key: string, why: PoolExpulsion): void {
    const entry = this.#entries.get(key);
    if (entry === undefined || !this.leave(key)) return;
    this.#onExpel(entry.socket, entry.remoteAddress, why);
  }
}

/**
 * One key for a TCP connection and the TLS socket wrapping it (different objects): the peer's address
 * and port. Read it at accept; a destroyed socket may have forgotten its peer.
 */
export function connectionKey(socket: { readonly remoteAddress?: string | undefined; readonly remotePort?: number | undefined }): string {
  return `${socket.remoteAddress ?? 'unknown'}|${socket.remotePort ?? 0}`;
}
