// Storage Commitment peers for tests: dcmjs-dimse as the modality's commitment SCU. Its Client sends the
// N-ACTION (DCMTK has no commitment SCU), and its Scp, on a loopback server of ours (dcmjs-dimse's own
// Server binds every interface), receives the box's N-EVENT-REPORT on the association the box opens.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import dimse from 'dcmjs-dimse';
import { dcmjsSecurityOptions } from './mpps-peers.ts';

const { Client, Dataset, Scp } = dimse;
const { NActionRequest, NEventReportRequest } = dimse.requests;
const { NEventReportResponse } = dimse.responses;
const { PresentationContextResult, Status, TransferSyntax } = dimse.constants;
dimse.log.setLevel('silent');

export const STORAGE_COMMITMENT_SOP_CLASS = '1.2.840.10008.1.20.1';
export const STORAGE_COMMITMENT_SOP_INSTANCE = '1.2.840.10008.1.20.1.1';
export const CT_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.2';

export function uid(): string {
  return `2.25.${BigInt(`0x${randomBytes(16).toString('hex')}`).toString()}`;
}

export interface CommitmentTarget {
  readonly port: number;
  readonly callingAeTitle: string;
  readonly calledAeTitle?: string;
  readonly tls?: { readonly certFile: string; readonly keyFile: string; readonly caFile: string };
  readonly timeoutMs?: number;
}

export interface ReferencedSop {
  readonly sopClassUid: string;
  readonly sopInstanceUid: string;
}

/** One N-ACTION (Request Storage Commitment) on its own association; resolves with its status. */
export async function requestCommitment(
  target: CommitmentTarget,
  transactionUid: string,
  items: readonly ReferencedSop[],
  o: { readonly actionTypeId?: number; readonly lingerMs?: number } = {},
): Promise<{ status?: number; error?: string; reports: ReceivedReport[] }> {
  const securityOptions = await dcmjsSecurityOptions(target.tls);
  return new Promise((resolve) => {
    let status: number | undefined;
    let error: string | undefined;
    const client = new Client();
    const rq = new NActionRequest(STORAGE_COMMITMENT_SOP_CLASS, STORAGE_COMMITMENT_SOP_INSTANCE, o.actionTypeId ?? 1);
    rq.setDataset(
      new Dataset({
        TransactionUID: transactionUid,
        ReferencedSOPSequence: items.map((i) => ({ ReferencedSOPClassUID: i.sopClassUid, ReferencedSOPInstanceUID: i.sopInstanceUid })),
      }),
    );
    rq.on('response', (r: { getStatus(): number }) => (status = r.getStatus()));
    client.addRequest(rq);
    // With `lingerMs` the association stays open that long after the response: a report may come on it.
    const reports: ReceivedReport[] = [];
    client.on('nEventReportRequest', (request: EventReportArgs[0], callback: EventReportArgs[1]) => {
      reports.push(reportOf(request, target.calledAeTitle ?? 'EDGE', target.callingAeTitle));
      const response = NEventReportResponse.fromRequest(request);
      response.setStatus(Status.Success);
      callback(response);
    });
    client.on('networkError', (e: Error) => (error = String(e?.message ?? e)));
    client.on('associationRejected', (r: unknown) => (error = `association rejected ${JSON.stringify(r)}`));
    client.on('closed', () => resolve({ ...(status === undefined ? {} : { status }), ...(error === undefined ? {} : { error }), reports }));
    const timeout = target.timeoutMs ?? 20_000;
    client.send('127.0.0.1', target.port, target.callingAeTitle, target.calledAeTitle ?? 'EDGE', {
      connectTimeout: timeout,
      associationTimeout: timeout,
      pduTimeout: timeout,
      ...(o.lingerMs === undefined ? {} : { associationLingerTimeout: o.lingerMs }),
      ...(securityOptions === undefined ? {} : { securityOptions }),
    });
  });
}

/** An N-EVENT-REPORT sent to the box by a peer that is not its PACS (it must be refused). */
export async function sendEventReport(
  target: CommitmentTarget,
  transactionUid: string,
  committed: readonly ReferencedSop[],
): Promise<{ status?: number; error?: string }> {
  const securityOptions = await dcmjsSecurityOptions(target.tls);
  return new Promise((resolve) => {
    let status: number | undefined;
    let error: string | undefined;
    const client = new Client();
    const rq = new NEventReportRequest(STORAGE_COMMITMENT_SOP_CLASS, STORAGE_COMMITMENT_SOP_INSTANCE, 1);
    rq.setDataset(
      new Dataset({
        TransactionUID: transactionUid,
        ReferencedSOPSequence: committed.map((i) => ({ ReferencedSOPClassUID: i.sopClassUid, ReferencedSOPInstanceUID: i.sopInstanceUid })),
      }),
    );
    rq.on('response', (r: { getStatus(): number }) => (status = r.getStatus()));
    client.addRequest(rq);
    client.on('networkError', (e: Error) => (error = String(e?.message ?? e)));
    client.on('associationRejected', (r: unknown) => (error = `association rejected ${JSON.stringify(r)}`));
    client.on('closed', () => resolve({ ...(status === undefined ? {} : { status }), ...(error === undefined ? {} : { error }) }));
    const timeout = target.timeoutMs ?? 20_000;
    client.send('127.0.0.1', target.port, target.callingAeTitle, target.calledAeTitle ?? 'EDGE', {
      connectTimeout: timeout,
      associationTimeout: timeout,
      pduTimeout: timeout,
      ...(securityOptions === undefined ? {} : { securityOptions }),
    });
  });
}

function reportOf(request: EventReportArgs[0], callingAeTitle: string, calledAeTitle: string): ReceivedReport {
  const e = (request.getDataset()?.getElements() ?? {}) as Elements;
  const seq = (k: string): Elements[] => (Array.isArray(e[k]) ? (e[k] as Elements[]) : []);
  return {
    callingAeTitle,
    calledAeTitle,
    eventTypeId: request.getEventTypeId(),
    transactionUid: String(e['TransactionUID'] ?? ''),
    success: seq('ReferencedSOPSequence').map((i) => String(i['ReferencedSOPInstanceUID'])),
    failed: seq('FailedSOPSequence').map((i) => ({
      sopInstanceUid: String(i['ReferencedSOPInstanceUID']),
      failureReason: Number(i['FailureReason']),
    })),
    at: Date.now(),
  };
}

export interface ReceivedReport {
  readonly callingAeTitle: string;
  readonly calledAeTitle: string;
  readonly eventTypeId: number;
  readonly transactionUid: string;
  readonly success: readonly string[];
  readonly failed: ReadonlyArray<{ readonly sopInstanceUid: string; readonly failureReason: number }>;
  readonly at: number;
}

type Elements = Record<string, unknown>;
type ScpInstance = InstanceType<typeof Scp>;
type AssociationOf = Parameters<ScpInstance['associationRequested']>[0];
type EventReportArgs = Parameters<ScpInstance['nEventReportRequest']>;

/**
 * The modality's commitment SCU listening for N-EVENT-REPORTs on 127.0.0.1: plain TCP, or with `tls` a
 * TLS server that requires the box's client certificate from the site CA.
 */
export class CommitmentReceiver {
  readonly reports: ReceivedReport[] = [];
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  #port = 0;
  /** Answer status the receiver gives (a test may make it refuse). */
  answerStatus = 0;

  constructor(aeTitle: string, options: { readonly tls?: { certFile: string; keyFile: string; caFile: string } } = {}) {
    const reports = this.reports;
    const receiver = this;
    class ModalityScp extends Scp {
      association: AssociationOf | undefined;
      override associationRequested(association: AssociationOf): void {
        this.association = association;
        if (association.getCalledAeTitle() !== aeTitle) {
          this.sendAssociationReject(1, 1, 7);
          return;
        }
        for (const c of association.getPresentationContexts()) {
          const context = association.getPresentationContext(c.id);
          if (context.getAbstractSyntaxUid() !== STORAGE_COMMITMENT_SOP_CLASS) {
            context.setResult(PresentationContextResult.RejectAbstractSyntaxNotSupported);
            continue;
          }
          const ts = context
            .getTransferSyntaxUids()
            .find((t: string) => t === TransferSyntax.ImplicitVRLittleEndian || t === TransferSyntax.ExplicitVRLittleEndian);
          if (ts === undefined) context.setResult(PresentationContextResult.RejectTransferSyntaxesNotSupported);
          else context.setResult(PresentationContextResult.Accept, ts);
        }
        this.sendAssociationAccept();
      }
      override nEventReportRequest(request: EventReportArgs[0], callback: EventReportArgs[1]): void {
        reports.push(reportOf(request, this.association?.getCallingAeTitle() ?? '', this.association?.getCalledAeTitle() ?? ''));
        const response = NEventReportResponse.fromRequest(request);
        response.setStatus(receiver.answerStatus === 0 ? Status.Success : receiver.answerStatus);
        callback(response);
      }
      override associationReleaseRequested(): void {
        this.sendAssociationReleaseResponse();
      }
    }
    const serve = (socket: net.Socket): void => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
      new ModalityScp(socket, { associationTimeout: 10_000, pduTimeout: 10_000 });
    };
    const t = options.tls;
    this.#server =
      t === undefined
        ? net.createServer(serve)
        : tls.createServer(
            {
              cert: readFileSync(t.certFile),
              key: readFileSync(t.keyFile),
              ca: readFileSync(t.caFile),
              requestCert: true,
              rejectUnauthorized: true,
              minVersion: 'TLSv1.2',
            },
            serve,
          );
  }

  get port(): number {
    return this.#port;
  }

  async start(port = 0): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, '127.0.0.1', () => resolve());
    });
    this.#port = (this.#server.address() as net.AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  report(transactionUid: string): ReceivedReport | undefined {
    return this.reports.find((r) => r.transactionUid === transactionUid);
  }
}
