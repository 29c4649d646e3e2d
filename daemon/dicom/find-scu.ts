// Modality Worklist C-FIND SCU (PS3.4 K.4.1, PS3.7 9.1.2): one association to an upstream worklist
// provider (the RIS's own MWL SCP), one query, every Pending identifier collected. The answer says
// whether it is complete (a final Success status): a cut or cancelled answer must never be read as "these
// items were removed upstream". Capped in responses and bytes; every phase has a timeout.
import type { Buffer } from 'node:buffer';
import { EdgeError } from '../core/errors.ts';
import type { DataSet } from '../core/dataset.ts';
import { decodeDataSet, encodeDataSet } from './dataset-codec.ts';
import { CommandDataSetTypeNone, CommandDataSetTypePresent, CommandField, Status, encodeCommand } from './dimse-command.ts';
import { SopClass } from './dimse-service.ts';
import { ScuConnection, asScuError, type ScuConnectionOptions } from './scu-connection.ts';
import { TransferSyntax } from './transfer-syntax.ts';

export interface WorklistFindScuOptions extends Omit<ScuConnectionOptions, 'peer' | 'failureCode'> {
  /** Responses beyond this are cancelled (C-CANCEL) and the answer is incomplete. */
  readonly maxResponses: number;
  /** The largest identifier accepted in one response. */
  readonly maxIdentifierBytes: number;
}

/** One Pending response: its identifier, or why it could not be read. */
export type FoundIdentifier =
  { readonly dataSet: DataSet } | { readonly problem: 'undecodable' | 'unsupported-character-set'; readonly detail: string };

export interface WorklistFindAnswer {
  readonly identifiers: readonly FoundIdentifier[];
  /** True only when the provider ended with Success after every response was read. */
  readonly complete: boolean;
  /** Why the answer is not complete: a final status other than Success, the cap, or a broken exchange. */
  readonly incompleteBecause?: string;
  /** The final C-FIND-RSP status, when one arrived. */
  readonly finalStatus?: number;
}

const PEER = 'the upstream worklist provider';

/** Query the provider; throws EDGE_MWL_SCU_FAILED (or EDGE_DICOM_TIMEOUT) only when no answer began. */
export async function findUpstreamWorklist(
  options: WorklistFindScuOptions,
  identifier: DataSet,
  signal: AbortSignal,
): Promise<WorklistFindAnswer> {
  const connectionOptions: ScuConnectionOptions = { ...options, peer: PEER, failureCode: 'EDGE_MWL_SCU_FAILED' };
  const conn = await ScuConnection.open(connectionOptions, signal);
  const identifiers: FoundIdentifier[] = [];
  let began = false;
  try {
    const assoc = await conn.associate([
      {
        id: 1,
        abstractSyntax: SopClass.ModalityWorklistInformationModelFind,
        transferSyntaxes: [TransferSyntax.ExplicitVRLittleEndian, TransferSyntax.ImplicitVRLittleEndian],
      },
    ]);
    const ts = assoc.accepted.get(1);
    if (ts === undefined) {
      throw new EdgeError('EDGE_MWL_SCU_FAILED', `${PEER} does not offer Modality Worklist (context result ${assoc.results.get(1) ?? -1})`);
    }
    const peerMax = assoc.maxPduLength === 0 ? 256 * 1024 : assoc.maxPduLength;
    const messageId = conn.nextMessageId();
    await conn.sendPdvs(
      1,
      true,
      encodeCommand({
        CommandField: CommandField.CFindRq,
        MessageID: messageId,
        Priority: 0,
        AffectedSOPClassUID: SopClass.ModalityWorklistInformationModelFind,
        CommandDataSetType: CommandDataSetTypePresent,
      }),
      peerMax,
    );
    await conn.sendPdvs(1, false, encodeDataSet(identifier, ts), peerMax);
    began = true;
    let cancelled = false;
    for (;;) {
      const rsp = await conn.readMessage(options.maxIdentifierBytes);
      const c = rsp.command;
      if (c.CommandField !== CommandField.CFindRsp || c.MessageIDBeingRespondedTo !== messageId) {
        throw new EdgeError('EDGE_MWL_SCU_FAILED', `${PEER} answered with an unexpected message`);
      }
      const status = c.Status ?? 0xffff;
      if (status === Status.Pending || status === Status.PendingWarning) {
        if (cancelled) continue;
        if (rsp.data !== undefined) identifiers.push(readIdentifier(rsp.data, ts));
        if (identifiers.length >= options.maxResponses) {
          // C-CANCEL-RQ (PS3.7 9.3.2.3): the provider ends with Cancel; what came so far is kept.
          cancelled = true;
          await conn.sendPdvs(
            1,
            true,
            encodeCommand({
              CommandField: CommandField.CCancelRq,
              MessageIDBeingRespondedTo: messageId,
              CommandDataSetType: CommandDataSetTypeNone,
            }),
            peerMax,
          );
        }
        continue;
      }
      await conn.release().catch(() => undefined);
      if (status === Status.Success && !cancelled) return { identifiers, complete: true, finalStatus: status };
      return {
        identifiers,
        complete: false,
        finalStatus: status,
        incompleteBecause: cancelled
          ? `more than ${options.maxResponses} items (cancelled)`
          : `final status 0x${hex(status)}${c.ErrorComment === undefined ? '' : ` (${c.ErrorComment})`}`,
      };
    }
  } catch (err) {
    if (!began) throw asScuError(err, connectionOptions);
    conn.abort();
    const e = asScuError(err, connectionOptions);
    return { identifiers, complete: false, incompleteBecause: `${e.code}: ${e.message}` };
  } finally {
    conn.close();
  }
}

function readIdentifier(bytes: Buffer, ts: string): FoundIdentifier {
  const unsupported: string[] = [];
  try {
    const dataSet = decodeDataSet(bytes, ts, { onUnsupportedCharset: (term) => unsupported.push(term) });
    if (unsupported.length > 0) return { problem: 'unsupported-character-set', detail: unsupported.join('\\') };
    return { dataSet };
  } catch (err) {
    return { problem: 'undecodable', detail: (err as Error).message };
  }
}

function hex(n: number): string {
  return n.toString(16).padStart(4, '0');
}
