// C-STORE SCU (PS3.4 Annex B, PS3.7 9.1.1): one association per batch to the PACS (scu-connection.ts).
// Data sets stream from the spool straight into P-DATA PDUs in the transfer syntax they were received in
// (no transcoding: each context proposes exactly that syntax). Every phase has a timeout.
import { Buffer } from 'node:buffer';
import { EdgeError } from '../core/errors.ts';
import type { AcceptedAssociation } from './association-requestor.ts';
import { CommandField, CommandDataSetTypePresent, encodeCommand } from './dimse-command.ts';
import { ScuConnection, asScuError, type ScuConnectionOptions } from './scu-connection.ts';

/** Responses are small: our Maximum Length Received may stay the default. */
export type StoreScuOptions = Omit<ScuConnectionOptions, 'peer' | 'failureCode'>;

export interface StoreItem {
  readonly sopClassUid: string;
  readonly sopInstanceUid: string;
  readonly transferSyntaxUid: string;
  /** The data set bytes in `transferSyntaxUid`, read when the item is sent. */
  data(): AsyncIterable<Uint8Array>;
}

export type StoreOutcome =
  /** The PACS answered with this DIMSE status. */
  | { readonly status: number; readonly errorComment?: string }
  /** No status: no association, no context for the item, the data could not be read, or the connection failed. */
  | { readonly error: EdgeError; readonly reachedPeer: boolean };

/** What we send per PDU when the PACS announces no limit. */
const UNLIMITED_SEND_PDU = 256 * 1024;

/** Send a batch over one association; one outcome per item, in order. Never throws for per-item failures. */
export async function storeBatch(options: StoreScuOptions, items: readonly StoreItem[], signal: AbortSignal): Promise<StoreOutcome[]> {
  const outcomes: StoreOutcome[] = [];
  if (items.length === 0) return outcomes;
  const contexts = new Map<string, number>();
  for (const it of items) {
    const k = `${it.sopClassUid}|${it.transferSyntaxUid}`;
    if (!contexts.has(k) && contexts.size < 128) contexts.set(k, contexts.size * 2 + 1);
  }
  let conn: ScuConnection;
  try {
    conn = await ScuConnection.open(options, signal);
  } catch (err) {
    const e = asScuError(err);
    return items.map(() => ({ error: e, reachedPeer: false }));
  }
  try {
    let assoc: AcceptedAssociation;
    try {
      assoc = await conn.associate(
        [...contexts].map(([k, id]) => {
          const [abstractSyntax, ts] = k.split('|') as [string, string];
          return { id, abstractSyntax, transferSyntaxes: [ts] };
        }),
      );
    } catch (err) {
      const e = asScuError(err);
      return items.map(() => ({ error: e, reachedPeer: false }));
    }
    const peerMax = assoc.maxPduLength === 0 ? UNLIMITED_SEND_PDU : assoc.maxPduLength;
    let broken: EdgeError | undefined;
    for (const it of items) {
      if (broken !== undefined) {
        outcomes.push({ error: broken, reachedPeer: false });
        continue;
      }
      const id = contexts.get(`${it.sopClassUid}|${it.transferSyntaxUid}`);
      if (id === undefined || !assoc.accepted.has(id)) {
        outcomes.push({
          error: new EdgeError(
            'EDGE_STORE_SCU_REJECTED',
            'the PACS accepted no presentation context for this SOP class and transfer syntax',
            {
              detail: { result: id === undefined ? -1 : (assoc.results.get(id) ?? -1) },
            },
          ),
          reachedPeer: true,
        });
        continue;
      }
      try {
        outcomes.push(await cStore(conn, id, it, peerMax));
      } catch (err) {
        broken = asScuError(err);
        // A failure reading our own spool leaves the association usable only if nothing was sent yet;
        // the simple and safe course is to end the association.
        outcomes.push({ error: broken, reachedPeer: false });
      }
    }
    if (broken === undefined) await conn.release().catch(() => undefined);
    return outcomes;
  } finally {
    conn.close();
  }
}

/** One C-STORE on an open association: the command, the data set streamed, the response. */
async function cStore(conn: ScuConnection, contextId: number, item: StoreItem, peerMax: number): Promise<StoreOutcome> {
  const messageId = conn.nextMessageId();
  const command = encodeCommand({
    CommandField: CommandField.CStoreRq,
    MessageID: messageId,
    Priority: 0,
    AffectedSOPClassUID: item.sopClassUid,
    AffectedSOPInstanceUID: item.sopInstanceUid,
    CommandDataSetType: CommandDataSetTypePresent,
  });
  await conn.sendPdvs(contextId, true, command, peerMax);
  // One chunk of lookahead: only the last fragment of the data set may carry the "last" bit.
  let held: Buffer | undefined;
  for await (const chunk of item.data()) {
    if (held !== undefined) await conn.sendData(contextId, held, false, peerMax);
    held = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  }
  await conn.sendData(contextId, held ?? Buffer.alloc(0), true, peerMax);
  // C-STORE-RSP carries no data set; a peer that sends one anyway is held to a small cap.
  const { command: rsp } = await conn.readMessage(64 * 1024);
  if (rsp.CommandField !== CommandField.CStoreRsp || rsp.MessageIDBeingRespondedTo !== messageId) {
    throw new EdgeError('EDGE_STORE_SCU_FAILED', 'the PACS answered with an unexpected message');
  }
  return { status: rsp.Status ?? 0xffff, ...(rsp.ErrorComment === undefined ? {} : { errorComment: rsp.ErrorComment }) };
}
