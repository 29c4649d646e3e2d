// The procedure status message the box sends the RIS when a modality reports progress (IHE RAD-13
// style, "Procedure Update" from the performer's side): ORC-1 SC with ORC-5 IP (in progress), CM
// (completed) or DC (discontinued), carrying the order's placer and filler numbers and its accession.
//   orm-o01 (v2.3.1): MSH PID ORC OBR ZDS; OBR-18 accession, OBR-19 requested procedure id, OBR-20 SPS id,
//     OBR-24 modality, ZDS-1 Study Instance UID (the same positions the box reads on inbound orders).
//   omi-o23 (v2.5.1): MSH PID ORC TQ1 OBR IPC; IPC-1 accession, IPC-2 requested procedure id, IPC-3 Study
//     Instance UID, IPC-4 SPS id, IPC-5 modality, IPC-9 performing station AE title.
// MSH-10 is the outbox entry id, so the RIS can recognise a re-send after a crash as the same message.
import { Buffer } from 'node:buffer';
import type { CodedEntry } from '../core/order.ts';
import type { ProcedureStatusPayload } from '../core/mpps-status.ts';
import { formatHl7Timestamp } from './ack.ts';
import { DEFAULT_ENCODING, escapeHl7 } from './message.ts';

export const StatusMessageStyle = { OrmO01: 'orm-o01', OmiO23: 'omi-o23' } as const;
export type StatusMessageStyle = (typeof StatusMessageStyle)[keyof typeof StatusMessageStyle];

export interface StatusMessageHeader {
  readonly sendingApplication: string;
  readonly sendingFacility: string;
  readonly receivingApplication: string;
  readonly receivingFacility: string;
  readonly controlId: string;
  readonly style: StatusMessageStyle;
  /** Message time; defaults to now. */
  readonly now?: Date;
}

const e = (v: string | undefined): string => escapeHl7(v ?? '', DEFAULT_ENCODING);

/** An XPN from a DICOM PN (first component group; components `^` map one to one for the name parts). */
function xpn(pn: string): string {
  return (pn.split('=')[0] ?? '').split('^').map(e).join('^');
}

function ce(code: CodedEntry | undefined, text: string): string {
  if (code === undefined) return `^${e(text)}`;
  return `${e(code.codeValue)}^${e(code.codeMeaning)}^${e(code.codingSchemeDesignator)}`;
}

function ei(id: string, namespace: string): string {
  return namespace === '' ? e(id) : `${e(id)}^${e(namespace)}`;
}

/** MSH of a message the box sends; MSH-18 says UTF-8 when one of `texts` is not ASCII. */
export function mshSegment(
  h: Omit<StatusMessageHeader, 'style' | 'now'>,
  now: string,
  type: string,
  version: string,
  texts: readonly string[],
): string {
  const msh = [
    'MSH',
    '^~\\&',
    e(h.sendingApplication),
    e(h.sendingFacility),
    e(h.receivingApplication),
    e(h.receivingFacility),
    now,
    '',
    type,
    e(h.controlId),
    'P',
    version,
  ];
  // Names outside ASCII travel as UTF-8, and MSH-18 says so.
  if (!texts.every((x) => /^[\x00-\x7f]*$/.test(x))) msh.push('', '', '', '', '', 'UNICODE UTF-8');
  return msh.join('|');
}

/** The message payload (unframed), segments separated by CR. */
export function buildStatusMessage(p: ProcedureStatusPayload, h: StatusMessageHeader): Buffer {
  const now = formatHl7Timestamp(h.now ?? new Date());
  const at = formatHl7Timestamp(new Date(p.at));
  const v251 = h.style === StatusMessageStyle.OmiO23;
  const msh = mshSegment(h, now, v251 ? 'OMI^O23^OMI_O23' : 'ORM^O01', v251 ? '2.5.1' : '2.3.1', [
    p.patient.name,
    p.requestedProcedureDescription,
  ]);
  const pid = `PID|1||${e(p.patient.id)}^^^${e(p.patient.issuer)}||${xpn(p.patient.name)}`;
  const orc = ['ORC', 'SC', ei(p.placerOrderNumber, p.placerIssuer), e(p.fillerOrderNumber), '', p.orderStatus, '', '', '', at].join('|');
  const service = ce(p.requestedProcedureCode, p.requestedProcedureDescription);
  const segments = [msh, pid, orc];
  if (v251) {
    segments.push(`TQ1|1||||||${at}`);
    segments.push(`OBR|1|${ei(p.placerOrderNumber, p.placerIssuer)}|${e(p.fillerOrderNumber)}|${service}`);
    const ipc = [
      'IPC',
      e(p.accessionNumber),
      e(p.requestedProcedureId),
      e(p.studyInstanceUid),
      e(p.scheduledProcedureStepId),
      e(p.modality),
      '',
      '',
      '',
      e(p.performedStationAeTitle),
    ];
    segments.push(ipc.join('|'));
  } else {
    const obr: string[] = ['OBR', '1', ei(p.placerOrderNumber, p.placerIssuer), e(p.fillerOrderNumber), service];
    while (obr.length < 18) obr.push('');
    obr.push(e(p.accessionNumber), e(p.requestedProcedureId), e(p.scheduledProcedureStepId));
    while (obr.length < 24) obr.push('');
    obr.push(e(p.modality));
    segments.push(obr.join('|'));
    segments.push(`ZDS|${e(p.studyInstanceUid)}^^Application^DICOM`);
  }
  return Buffer.from(`${segments.join('\r')}\r`, 'utf8');
}
