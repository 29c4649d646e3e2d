// A few worker threads that render chain-line chunks to audit XML for the bundle exporter. Results come
// back as promises in submission order's FIFO (the exporter awaits the oldest), so the XML stays in
// sequence order however the workers interleave. Size 0 renders inline on the calling thread.
import { Worker } from 'node:worker_threads';
import { EdgeError } from '../core/errors.ts';
import { renderAuditMessages } from './audit-message-xml.ts';
import type { RenderRequest, RenderResponse } from './xml-render-worker.ts';

interface Slot {
  readonly worker: Worker;
  readonly waiting: Map<number, { resolve: (r: Rendered) => void; reject: (err: unknown) => void }>;
  failed?: Error;
}

export interface Rendered {
  readonly xml: Uint8Array;
  /** The chain lines' bytes given to render(), back from the worker. */
  readonly lines: Uint8Array;
}

export class XmlRenderPool {
  readonly #auditSourceId: string;
  readonly #slots: Slot[] = [];
  #next = 0;
  #id = 0;

  constructor(size: number, auditSourceId: string) {
    this.#auditSourceId = auditSourceId;
    for (let i = 0; i < size; i++) {
      const worker = new Worker(new URL('./xml-render-worker.ts', import.meta.url), { workerData: { auditSourceId } });
      const slot: Slot = { worker, waiting: new Map() };
      const failAll = (err: Error): void => {
        slot.failed ??= err;
        for (const w of slot.waiting.values()) w.reject(err);
        slot.waiting.clear();
      };
      worker.on('message', (res: RenderResponse) => {
        const w = slot.waiting.get(res.id);
        if (w === undefined) return;
        slot.waiting.delete(res.id);
        if ('error' in res) w.reject(new EdgeError('EDGE_AUDIT_CHAIN_BROKEN', `a chain record cannot be rendered: ${res.error}`));
        else w.resolve({ xml: res.xml, lines: res.lines });
      });
      worker.on('error', (err) => failAll(err));
      worker.on('exit', (code) => failAll(new Error(`audit XML worker exited (${code})`)));
      this.#slots.push(slot);
    }
  }

  /**
   * Audit XML for chain lines (each followed by '\n'), encoded as UTF-8. `bytes` is `lines` as UTF-8,
   * in an ArrayBuffer of its own: it moves to a worker (the caller must not touch it until it comes
   * back in the result) because copying large messages between threads was a tenth of an export.
   */
  render(lines: string, bytes: Uint8Array): Promise<Rendered> {
    if (this.#slots.length === 0) {
      try {
        return Promise.resolve({ xml: renderAuditMessages(lines, this.#auditSourceId), lines: bytes });
      } catch (err) {
        return Promise.reject(
          new EdgeError(
            'EDGE_AUDIT_CHAIN_BROKEN',
            `a chain record cannot be rendered: ${err instanceof Error ? err.message : String(err)}`,
          ),
        );
      }
    }
    const slot = this.#slots[this.#next++ % this.#slots.length]!;
    if (slot.failed !== undefined) return Promise.reject(slot.failed);
    const id = this.#id++;
    const p = new Promise<Rendered>((resolve, reject) => slot.waiting.set(id, { resolve, reject }));
    const req: RenderRequest = { id, lines: bytes };
    slot.worker.postMessage(req, [bytes.buffer as ArrayBuffer]);
    return p;
  }

  async close(): Promise<void> {
    await Promise.all(this.#slots.map((s) => s.worker.terminate()));
  }
}
