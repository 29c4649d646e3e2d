// The live audit stream to one central collector: RFC 5424 messages over TLS (RFC 5425) with mutual
// authentication. The sender reads durable chain records from its own cursor, so an outage or restart on
// either side loses nothing: it resumes from the cursor. TLS syslog has no application acknowledgement,
// so a record counts as delivered once it was written at least `confirmAfterMs` before the connection was
// still alive (or the collector closed cleanly after our close_notify); anything newer is sent again
// after a failure. Duplicates are therefore possible after a crash, never gaps: every message carries
// its chain seq in structured data, so a collector can drop repeats.
import tls from 'node:tls';
import type { AuditTrail, AuditRecord } from '../core/audit-trail.ts';
import { EdgeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { type SyslogIdentity, octetFrame, syslogMessage } from './syslog-message.ts';

export interface SyslogCollector {
  /** Unique name: the cursor's key and the name in alerts. */
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** Name the collector's certificate must carry (defaults to host). */
  readonly serverName?: string;
}

export type SyslogSenderEvent =
  | { readonly type: 'collector-unreachable'; readonly collector: string; readonly reason: string; readonly failuresSinceLastAlert: number }
  | { readonly type: 'collector-restored'; readonly collector: string; readonly downMs: number };

export interface SyslogSenderOptions {
  readonly collector: SyslogCollector;
  readonly trail: AuditTrail;
  readonly tls: Pick<tls.ConnectionOptions, 'ca' | 'cert' | 'key' | 'minVersion' | 'ciphers' | 'ecdhCurve'>;
  readonly identity: SyslogIdentity;
  readonly logger: Logger;
  readonly onEvent: (event: SyslogSenderEvent) => void;
  readonly connectTimeoutMs?: number;
  readonly confirmAfterMs?: number;
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
  /** At most one "unreachable" alert per collector per interval. */
  readonly alertIntervalMs?: number;
  /** Records read from the store per step. */
  readonly batchRecords?: number;
}

export interface SyslogSenderStatus {
  readonly collector: string;
  readonly connected: boolean;
  /** Last seq counted as delivered (durable cursor). */
  readonly confirmedSeq: number;
  /** Last seq written to the current connection. */
  readonly sentSeq: number;
}

export class SyslogSender {
  readonly #o: SyslogSenderOptions;
  readonly #log: Logger;
  readonly #cursorName: string;
  #socket: tls.TLSSocket | undefined;
  #connected = false;
  #confirmed = 0;
  #sent = 0;
  /** (seq written, when) per write step on the current connection. */
  #marks: Array<{ seq: number; at: number }> = [];
  #pumping = false;
  #running = false;
  #retryMs: number;
  #retryTimer: NodeJS.Timeout | undefined;
  #confirmTimer: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  #downSince: number | undefined;
  #lastAlertAt = Number.NEGATIVE_INFINITY;
  #failuresSinceAlert = 0;
  #alerted = false;
  #saving: Promise<void> = Promise.resolve();

  constructor(options: SyslogSenderOptions) {
    this.#o = options;
    this.#log = options.logger;
    this.#cursorName = `syslog:${options.collector.name}`;
    this.#retryMs = options.retryMinMs ?? 250;
  }

  get status(): SyslogSenderStatus {
    return { collector: this.#o.collector.name, connected: this.#connected, confirmedSeq: this.#confirmed, sentSeq: this.#sent };
  }

  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    this.#confirmed = await this.#o.trail.cursor(this.#cursorName);
    this.#sent = this.#confirmed;
    this.#unsubscribe = this.#o.trail.onDurable(() => this.#pump());
    const confirmAfter = this.#o.confirmAfterMs ?? 2000;
    this.#confirmTimer = setInterval(() => this.#confirm(Date.now() - confirmAfter), Math.max(50, confirmAfter / 2));
    this.#confirmTimer.unref();
    this.#connect();
  }

  /** Close cleanly: a collector that answers our close has read everything, so all of it is confirmed. */
  async stop(deadlineMs = 2000): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#unsubscribe?.();
    clearInterval(this.#confirmTimer);
    clearTimeout(this.#retryTimer);
    const socket = this.#socket;
    if (socket !== undefined && this.#connected) {
      // Let the last records (e.g. application.stop) go out before closing, within the deadline.
      const until = Date.now() + deadlineMs;
      while (this.#connected && this.#sent < this.#o.trail.durableSeq && Date.now() < until) {
        this.#pump();
        await new Promise((r) => setTimeout(r, 20));
      }
      const sent = this.#sent;
      const closedByPeer = new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), deadlineMs);
        socket.once('end', () => {
          clearTimeout(timer);
          resolve(true);
        });
        socket.once('close', () => {
          clearTimeout(timer);
          resolve(false);
        });
      });
      socket.end();
      if (await closedByPeer) this.#setConfirmed(sent);
      else this.#confirm(Date.now() - (this.#o.confirmAfterMs ?? 2000));
    }
    socket?.destroy();
    this.#socket = undefined;
    this.#connected = false;
    await this.#saving;
  }

  #connect(): void {
    if (!this.#running) return;
    const c = this.#o.collector;
    const socket = tls.connect({
      host: c.host,
      port: c.port,
      servername: c.serverName ?? c.host,
      ...this.#o.tls,
      timeout: this.#o.connectTimeoutMs ?? 10_000,
    });
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.once('secureConnect', () => {
      if (this.#socket !== socket) return;
      socket.setTimeout(0);
      this.#connected = true;
      this.#retryMs = this.#o.retryMinMs ?? 250;
      this.#sent = this.#confirmed;
      this.#marks = [];
      this.#log.info('audit.collector-connected', { collector: c.name, resumeAfterSeq: this.#confirmed });
      if (this.#alerted) {
        this.#o.onEvent({ type: 'collector-restored', collector: c.name, downMs: Date.now() - (this.#downSince ?? Date.now()) });
      }
      this.#alerted = false;
      this.#downSince = undefined;
      this.#failuresSinceAlert = 0;
      this.#pump();
    });
    socket.on('timeout', () => socket.destroy(new EdgeError('EDGE_AUDIT_COLLECTOR_UNREACHABLE', 'connect timed out')));
    // The collector never talks back; anything it sends is ignored (but read, so TLS alerts surface).
    socket.on('data', () => undefined);
    let reason = 'connection closed by the collector';
    socket.on('error', (err) => {
      reason = (err as NodeJS.ErrnoException).code ?? err.message;
    });
    socket.once('close', () => this.#closed(socket, reason));
  }

  #closed(socket: tls.TLSSocket, reason: string): void {
    if (this.#socket !== socket) return;
    const wasConnected = this.#connected;
    this.#socket = undefined;
    this.#connected = false;
    // What was written long enough before the loss is counted; the rest goes again on reconnect.
    this.#confirm(Date.now() - (this.#o.confirmAfterMs ?? 2000));
    this.#sent = this.#confirmed;
    this.#marks = [];
    if (!this.#running) return;
    this.#downSince ??= Date.now();
    this.#failuresSinceAlert++;
    if (wasConnected) this.#log.warn('audit.collector-disconnected', { collector: this.#o.collector.name, reason });
    const now = Date.now();
    if (now - this.#lastAlertAt >= (this.#o.alertIntervalMs ?? 300_000)) {
      this.#lastAlertAt = now;
      this.#alerted = true;
      this.#log.error('audit.collector-unreachable', { collector: this.#o.collector.name, reason, failures: this.#failuresSinceAlert });
      this.#o.onEvent({
        type: 'collector-unreachable',
        collector: this.#o.collector.name,
        reason,
        failuresSinceLastAlert: this.#failuresSinceAlert,
      });
      this.#failuresSinceAlert = 0;
    }
    const delay = this.#retryMs;
    this.#retryMs = Math.min(this.#retryMs * 2, this.#o.retryMaxMs ?? 30_000);
    this.#retryTimer = setTimeout(() => this.#connect(), delay);
    this.#retryTimer.unref();
  }

  #pump(): void {
    if (this.#pumping || !this.#connected) return;
    this.#pumping = true;
    this.#pumpLoop().then(
      () => {
        this.#pumping = false;
        if (this.#connected && this.#sent < this.#o.trail.durableSeq) this.#pump();
      },
      (err: unknown) => {
        this.#pumping = false;
        this.#log.error('audit.stream-read-failed', {
          collector: this.#o.collector.name,
          code: err instanceof EdgeError ? err.code : 'unexpected',
        });
        this.#socket?.destroy();
      },
    );
  }

  async #pumpLoop(): Promise<void> {
    const batch = this.#o.batchRecords ?? 500;
    const socket = this.#socket;
    while (socket !== undefined && this.#socket === socket && this.#connected && this.#sent < this.#o.trail.durableSeq) {
      const from = this.#sent + 1;
      const chunks: Buffer[] = [];
      let last = this.#sent;
      for await (const r of this.#o.trail.read(from, from + batch - 1)) {
        if (r.seq !== last + 1) throw new EdgeError('EDGE_AUDIT_CHAIN_BROKEN', `expected seq ${last + 1}, read ${r.seq}`);
        chunks.push(octetFrame(syslogMessage(JSON.parse(r.line) as AuditRecord, r.hash, this.#o.identity)));
        last = r.seq;
      }
      if (last === this.#sent) {
        // The range was pruned: skip to what is still held.
        const first = this.#o.trail.firstSeq;
        if (first > from) {
          this.#sent = first - 1;
          continue;
        }
        return;
      }
      if (this.#socket !== socket || !this.#connected) return;
      const flushed = socket.write(Buffer.concat(chunks));
      this.#sent = last;
      this.#marks.push({ seq: last, at: Date.now() });
      if (!flushed) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            socket.off('drain', done);
            socket.off('close', done);
            resolve();
          };
          socket.on('drain', done);
          socket.on('close', done);
        });
      }
    }
  }

  #confirm(writtenBefore: number): void {
    let upTo = this.#confirmed;
    while (this.#marks.length > 0 && this.#marks[0]!.at <= writtenBefore) upTo = this.#marks.shift()!.seq;
    this.#setConfirmed(upTo);
  }

  #setConfirmed(seq: number): void {
    if (seq <= this.#confirmed) return;
    this.#confirmed = seq;
    this.#saving = this.#saving
      .then(() => this.#o.trail.setCursor(this.#cursorName, this.#confirmed))
      .catch((err: unknown) => {
        this.#log.error('audit.cursor-save-failed', {
          collector: this.#o.collector.name,
          code: err instanceof EdgeError ? err.code : 'unexpected',
        });
      });
  }
}
