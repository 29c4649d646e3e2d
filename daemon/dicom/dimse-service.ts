// The DIMSE service table: each entry serves one command on one SOP class. The SCP dispatches by
// (CommandField, SOP Class UID); later services (MPPS N-CREATE/N-SET, C-STORE) are new entries.
import type { Buffer } from 'node:buffer';
import type { DataSet } from '../core/dataset.ts';
import type { Logger } from '../core/log.ts';
import type { Command } from './dimse-command.ts';
import type { TransferSyntaxUid } from './transfer-syntax.ts';

export const SopClass = {
  Verification: '1.2.840.10008.1.1',
  ModalityWorklistInformationModelFind: '1.2.840.10008.5.1.4.31',
} as const;

export type Transport = 'tls' | 'plain';

export interface PeerCertificate {
  readonly subjectCn: string;
  readonly fingerprint256: string;
}

/** Who is on the other end of an accepted association. */
export interface AssociationContext {
  /** Random id for logs, shared by every line about this association. */
  readonly associationId: string;
  readonly callingAeTitle: string;
  readonly calledAeTitle: string;
  readonly remoteAddress: string;
  readonly transport: Transport;
  readonly peerCertificate: PeerCertificate | undefined;
  /** What the association policy returned for this peer; opaque to the dicom layer. */
  readonly peer: unknown;
  /**
   * Send a request of the box's own to the peer on this association (as SCP of `abstractSyntax`, e.g. a
   * storage commitment N-EVENT-REPORT) and resolve with its response command. Rejects when the association
   * has ended, has no accepted context for the SOP class, or the peer does not answer within the idle timeout.
   */
  readonly invoke?: (abstractSyntax: string, command: ResponseCommand, dataSet?: DataSet) => Promise<Command>;
  /** True while the association is established (a request sent with `invoke` can still be answered). */
  readonly isOpen?: () => boolean;
}

export interface DimseRequest {
  readonly presentationContextId: number;
  readonly abstractSyntax: string;
  /**
   * The negotiated transfer syntax. Services that decode data sets are only reached on contexts the codec
   * speaks (TransferSyntaxUid); storage contexts may carry any configured syntax (kept as received).
   */
  readonly transferSyntax: TransferSyntaxUid;
  readonly command: Command;
  /** The data set bytes as received (in `transferSyntax`), when the command announced one. */
  readonly dataSet: Buffer | undefined;
  /** For a service that streams (`openDataSetSink`): the sink that received the data set; `dataSet` is then undefined. */
  readonly sink?: DataSetSink;
}

/**
 * Where a streamed data set goes, fragment by fragment, instead of being buffered whole (C-STORE).
 * The association calls `write` for each fragment in order, then `end` once; the service's `handle`
 * then gets the sink back in the request. `abort` is called (instead of, or after, `write`) when the
 * association ends before `handle` took the sink over; it must be idempotent.
 */
export interface DataSetSink {
  /** A returned promise asks the association to stop reading the socket until it settles (back-pressure). */
  write(fragment: Buffer): Promise<void> | undefined;
  end(): void;
  abort(reason: string): void;
}

export type ResponseCommand = Omit<Command, 'CommandDataSetType'>;

/** What a service uses to answer its request. */
export interface DimseExchange {
  readonly association: AssociationContext;
  readonly logger: Logger;
  /** Aborted on C-CANCEL of this request (`cancelled` is then true) and when the association ends. */
  readonly signal: AbortSignal;
  readonly cancelled: boolean;
  /**
   * Send one response; the data set is encoded in the request's transfer syntax and fragmented to the
   * peer's maximum PDU length. Resolves once the socket accepted it (waits for 'drain'). A data set the
   * codec cannot encode rejects with EDGE_DICOM_DATASET_INVALID before anything is sent.
   */
  respond(command: ResponseCommand, dataSet?: DataSet): Promise<void>;
}

export interface DimseService {
  readonly commandField: number;
  readonly sopClassUid: string;
  /** Answer the request completely (final response included). Throwing aborts the association. */
  handle(request: DimseRequest, exchange: DimseExchange): Promise<void>;
  /**
   * Present on services whose data sets may be large: called when the request's command set is complete,
   * before its data set arrives; the fragments then go to the returned sink and are never buffered whole.
   */
  openDataSetSink?(request: StreamedRequestStart, association: AssociationContext): DataSetSink;
}

export interface StreamedRequestStart {
  readonly presentationContextId: number;
  readonly abstractSyntax: string;
  readonly transferSyntax: string;
  readonly command: Command;
}

export function serviceKey(commandField: number, sopClassUid: string): string {
  return `${commandField}|${sopClassUid}`;
}
