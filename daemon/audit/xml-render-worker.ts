// Worker thread of the bundle exporter: turns chunks of chain lines into DICOM audit XML (JSON parse
// plus rendering is most of an export's CPU) while the main thread reads and decrypts the next chunk.
import { parentPort, workerData } from 'node:worker_threads';
import { renderAuditMessages } from './audit-message-xml.ts';

export interface RenderRequest {
  readonly id: number;
  /** Chain lines, each followed by '\n', as UTF-8 (moved here, and back with the answer). */
  readonly lines: Uint8Array;
}

/** The XML, and the request's bytes handed back (both moved, not copied). */
export type RenderResponse =
  { readonly id: number; readonly xml: Uint8Array; readonly lines: Uint8Array } | { readonly id: number; readonly error: string };

const auditSourceId = (workerData as { auditSourceId: string }).auditSourceId;
const decoder = new TextDecoder();

parentPort?.on('message', (req: RenderRequest) => {
  let res: RenderResponse;
  let transfer: ArrayBuffer[] = [];
  try {
    const xml = renderAuditMessages(decoder.decode(req.lines), auditSourceId);
    res = { id: req.id, xml, lines: req.lines };
    transfer = [xml.buffer as ArrayBuffer, req.lines.buffer as ArrayBuffer];
  } catch (err) {
    res = { id: req.id, error: err instanceof Error ? err.message : String(err) };
  }
  parentPort?.postMessage(res, transfer);
});
