// MPPS and RIS-status peers for tests: dcmjs-dimse's Client as the modality sending N-CREATE/N-SET
// (DCMTK has no MPPS sender), and python3's reference MLLP ACK server behind a socat TLS front (client
// certificate required) as the RIS receiving procedure status.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import dimse from 'dcmjs-dimse';
import { Supervised, freePort } from './processes.ts';
import { PEERS } from './paths.ts';
import { waitForPort } from './wait.ts';

const { Client, Dataset } = dimse;
const { NCreateRequest, NSetRequest } = dimse.requests;
dimse.log.setLevel('silent');

export const MPPS_SOP_CLASS = '1.2.840.10008.3.1.2.3.3';

export function uid(): string {
  return `2.25.${BigInt(`0x${randomBytes(16).toString('hex')}`).toString()}`;
}

export interface MppsOp {
  readonly op: 'create' | 'set';
  readonly sopInstanceUid: string;
  readonly attributes: Record<string, unknown>;
}

export interface MppsResult {
  readonly op: 'create' | 'set';
  readonly status: number;
  readonly errorComment?: string;
}

/** N-CREATE attributes for the order `n` that support/hl7-peers.ts ormNew(n) makes. */
export function createAttributes(n: number, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    SpecificCharacterSet: 'ISO_IR 100',
    Modality: 'CT',
    PatientName: `TEST^PATIENT${n}`,
    PatientID: `PID${n}`,
    ScheduledStepAttributesSequence: [
      {
        AccessionNumber: `ACC${n}`,
        RequestedProcedureID: `RP${n}`,
        ScheduledProcedureStepID: `SPS${n}`,
        StudyInstanceUID: '',
        ReferencedStudySequence: [],
      },
    ],
    PerformedProcedureStepID: `PPS${n}`,
    PerformedStationAETitle: 'CT01',
    PerformedProcedureStepStartDate: '20261125',
    PerformedProcedureStepStartTime: '090500',
    PerformedProcedureStepStatus: 'IN PROGRESS',
    PerformedProcedureStepDescription: 'CT',
    PerformedProcedureStepEndDate: '',
    PerformedProcedureStepEndTime: '',
    PerformedSeriesSequence: [],
    ...over,
  };
}

export function finalAttributes(status: 'COMPLETED' | 'DISCONTINUED', images = 2): Record<string, unknown> {
  return {
    PerformedProcedureStepStatus: status,
    PerformedProcedureStepEndDate: '20261125',
    PerformedProcedureStepEndTime: '091500',
    PerformedSeriesSequence: [
      {
        SeriesInstanceUID: uid(),
        ProtocolName: 'TEST',
        RetrieveAETitle: '',
        ReferencedImageSequence: Array.from({ length: images }, () => ({
          ReferencedSOPClassUID: '1.2.840.10008.5.1.4.1.1.2',
          ReferencedSOPInstanceUID: uid(),
        })),
        ReferencedNonImageCompositeSOPInstanceSequence: [],
      },
    ],
    ...(status === 'DISCONTINUED'
      ? {
          PerformedProcedureStepDiscontinuationReasonCodeSequence: [
            { CodeValue: '110514', CodingSchemeDesignator: 'DCM', CodeMeaning: 'Incorrect worklist entry selected' },
          ],
        }
      : {}),
  };
}

export interface MppsTarget {
  readonly port: number;
  readonly callingAeTitle: string;
  readonly calledAeTitle: string;
  readonly tls?: { readonly certFile: string; readonly keyFile: string; readonly caFile: string };
  readonly timeoutMs?: number;
}

/** dcmjs-dimse's client TLS options for a modality's certificate (undefined: plain). */
export async function dcmjsSecurityOptions(tls: MppsTarget['tls']) {
  if (tls === undefined) return undefined;
  return {
    key: await readFile(tls.keyFile),
    cert: await readFile(tls.certFile),
    ca: await readFile(tls.caFile),
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
    servername: 'localhost',
  };
}

/** Send the operations on one association, in order; resolves with one result per operation answered. */
export async function sendMpps(target: MppsTarget, ops: readonly MppsOp[]): Promise<{ results: MppsResult[]; error?: string }> {
  const securityOptions = await dcmjsSecurityOptions(target.tls);
  return new Promise((resolve) => {
    const results: MppsResult[] = [];
    let error: string | undefined;
    const client = new Client();
    for (const o of ops) {
      const rq =
        o.op === 'create' ? new NCreateRequest(MPPS_SOP_CLASS, o.sopInstanceUid) : new NSetRequest(MPPS_SOP_CLASS, o.sopInstanceUid);
      rq.setDataset(new Dataset(o.attributes));
      rq.on('response', (r: { getStatus(): number; getErrorComment(): string | undefined }) => {
        const comment = r.getErrorComment();
        results.push({ op: o.op, status: r.getStatus(), ...(comment ? { errorComment: comment } : {}) });
      });
      client.addRequest(rq);
    }
    client.on('networkError', (e: Error) => (error = String(e?.message ?? e)));
    client.on('associationRejected', (r: unknown) => (error = `association rejected ${JSON.stringify(r)}`));
    client.on('closed', () => resolve({ results, ...(error === undefined ? {} : { error }) }));
    const timeout = target.timeoutMs ?? 20_000;
    client.send('127.0.0.1', target.port, target.callingAeTitle, target.calledAeTitle, {
      connectTimeout: timeout,
      associationTimeout: timeout,
      pduTimeout: timeout,
      ...(securityOptions === undefined ? {} : { securityOptions }),
    });
  });
}

/**
 * `upstream.ris` of a site whose RIS is a RisReceiver: port 1 until the test knows the receiver's port
 * (set it before the daemon starts), short timeouts so an outage shows quickly.
 */
export function risUpstreamConfig(port = 1): Record<string, unknown> {
  return {
    host: '127.0.0.1',
    port,
    tls: true,
    receivingApplication: 'RIS',
    receivingFacility: 'GENHOSP',
    ackTimeoutMs: 3000,
    connectTimeoutMs: 2000,
  };
}

export interface RisMessage {
  readonly controlId: string;
  readonly type: string;
  readonly placer: string;
  readonly status: string;
  readonly accession: string;
  readonly text: string;
}

/** The RIS status receiver: python mllp-ack-server.py on loopback, fronted by socat with mutual TLS. */
export class RisReceiver {
  readonly port: number;
  readonly logFile: string;
  readonly #pki: { certFile: string; keyFile: string; caFile: string };
  readonly #args: readonly string[];
  #backend: Supervised | undefined;
  #front: Supervised | undefined;
  #backendPort = 0;

  private constructor(port: number, logFile: string, pki: { certFile: string; keyFile: string; caFile: string }, args: readonly string[]) {
    this.port = port;
    this.logFile = logFile;
    this.#pki = pki;
    this.#args = args;
  }

  /** Ports are chosen now; call start() to run it (a test may start it late to simulate an outage). */
  static async create(
    dir: string,
    pki: { certFile: string; keyFile: string; caFile: string },
    args: readonly string[] = [],
  ): Promise<RisReceiver> {
    return new RisReceiver(await freePort(), join(dir, `ris-${Date.now()}.msgs`), pki, args);
  }

  /** Start (again) on the same port; `args` replace the receiver's options for this run (e.g. --ack-code AE). */
  async start(args: readonly string[] = this.#args): Promise<void> {
    if (this.#backendPort === 0) this.#backendPort = await freePort();
    this.#backend = new Supervised('/usr/bin/python3', [
      `${PEERS}/hl7/mllp-ack-server.py`,
      String(this.#backendPort),
      '--log',
      this.logFile,
      ...args,
    ]);
    await this.#backend.waitForLine((l) => l.startsWith('READY'), 10_000);
    this.#front = new Supervised('socat', [
      `OPENSSL-LISTEN:${this.port},bind=127.0.0.1,reuseaddr,fork,nodelay,cert=${this.#pki.certFile},key=${this.#pki.keyFile},cafile=${this.#pki.caFile},verify=1,openssl-min-proto-version=TLS1.2`,
      `TCP:127.0.0.1:${this.#backendPort},nodelay`,
    ]);
    const front = this.#front;
    await waitForPort(this.port, { exited: () => (front.exited ? `socat exited: ${front.stderr.slice(-500)}` : undefined) });
  }

  async stop(): Promise<void> {
    await this.#front?.stop('SIGTERM', 5000);
    await this.#backend?.stop('SIGTERM', 5000);
    this.#front = undefined;
    this.#backend = undefined;
  }

  /** Every message the receiver logged, in arrival order. */
  async messages(): Promise<RisMessage[]> {
    let text: string;
    try {
      text = await readFile(this.logFile, 'utf8');
    } catch {
      return [];
    }
    return text
      .split(/\n{2,}/)
      .map((m) => m.trim())
      .filter((m) => m.startsWith('MSH|'))
      .map((m) => {
        const seg = (name: string): string[] => (m.split('\n').find((s) => s.startsWith(`${name}|`)) ?? '').split('|');
        const msh = seg('MSH');
        const orc = seg('ORC');
        const ipc = seg('IPC');
        const obr = seg('OBR');
        return {
          controlId: msh[9] ?? '',
          type: msh[8] ?? '',
          placer: (orc[2] ?? '').split('^')[0] ?? '',
          status: orc[5] ?? '',
          accession: ipc.length > 1 ? (ipc[1] ?? '') : (obr[18] ?? ''),
          text: m,
        };
      });
  }
}
