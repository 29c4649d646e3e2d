// The procedure status message the box sends the RIS when a modality reports progress (IHE RAD-13
// style, "Procedure Update" from the performer's side): ORC-1 SC with ORC-5 IP (in progress), CM
// (completed) or DC (discontinued), carrying the order's placer and filler numbers and its accession.
//   orm-o01 (v2.3.1): MSH PID ORC OBR ZDS; OBR-18 accession, OBR-19 requested procedure id, OBR-20 SPS id,
//     OBR-24 modality, ZDS-1 Study Instance UID (the same positions the box reads on inbound orders).
//   omi-o23 (v2.5.1): MSH PID ORC TQ1 OBR IPC; IPC-1 accession, IPC-2 requested procedure id, IPC-3 Study
//     Instance UID, IPC-4 SPS id, IPC-5 modality, IPC-9 performing station AE title.
// MSH-10 is the outbox entry id, so the RIS can recognise a re-send after a crash as the same message.
import { Buffer } from 'node:buffer';
import type { ProcessingId } from '../core/environment.ts';
import type { CodedEntry } from '../core/order.ts';
import type { ProcedureStatusPayload } from '../core/mpps-status.ts';
import { formatHl7Timestamp, versionAtLeast } from './ack.ts';
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
  /** MSH-11: the box's own processing id (its site.environment). */
  readonly processingId: ProcessingId;
  /** Message time; defaults to now. */
  readonly now?: Date;
}

const e = (v: string | undefined): string => escapeHl7(v ?? '', DEFAULT_ENCODING);

/**
 * PID-5 (XPN) from a DICOM PN: the alphabetic group, else the ideographic, else the phonetic one (a
 * patient registered only in kanji or kana still has a name). DICOM orders family^given^middle^prefix^
 * suffix, XPN family^given^middle^suffix^prefix. XPN.8 (name representation code, HL7 table 4000:
 * A alphabetic, I ideographic, P phonetic; in XPN since v2.3) says which group it is when not alphabetic.
 */
function xpn(pn: string): string {
  const groups = pn.split('=');
  const index = groups.findIndex((g) => g.replaceAll('^', '').trim() !== '');
  if (index === -1) return '';
  const [family = '', given = '', middle = '', prefix = '', suffix = ''] = groups[index]!.split('^');
  const parts = [family, given, middle, suffix, prefix].map(e);
  if (index > 0) {
    while (parts.length < 7) parts.push('');
    parts.push(index === 1 ? 'I' : 'P');
  }
  while (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
  return parts.join('^');
}

/** PID-3 (CX): every component the RIS sent, else id ^^^ assigning authority. */
function cx(patient: ProcedureStatusPayload['patient']): string {
  if (patient.asReceived !== undefined && patient.asReceived.length > 0) {
    return patient.asReceived.map((subs) => subs.map(e).join('&')).join('^');
  }
  return `${e(patient.id)}^^^${e(patient.issuer)}`;
}

/**
 * MSH-18 for text `text` in HL7 version `version` (HL7 table 0211): nothing for ASCII (the default),
 * `8859/1` when every character is in ISO 8859-1, else the version's Unicode value: `UNICODE` in v2.3
 * and v2.3.1 (the only Unicode entry they have, sent as UTF-8), `UNICODE UTF-8` from v2.4 on.
 */
export function outboundCharset(text: string, version: string): { readonly msh18: string; readonly encoding: 'latin1' | 'utf8' } {
  if (/^[\x00-\x7f]*$/.test(text)) return { msh18: '', encoding: 'latin1' };
  if (/^[\x00-\xff]*$/.test(text)) return { msh18: '8859/1', encoding: 'latin1' };
  return { msh18: versionAtLeast(version, 2, 4) ? 'UNICODE UTF-8' : 'UNICODE', encoding: 'utf8' };
}

function ce(code: CodedEntry | undefined, text: string): string {
  if (code === undefined) return `^${e(text)}`;
  return `${e(code.codeValue)}^${e(code.codeMeaning)}^${e(code.codingSchemeDesignator)}`;
}

function ei(id: string, namespace: string): string {
  return namespace === '' ? e(id) : `${e(id)}^${e(namespace)}`;
}

/**
 * A message the box sends, unframed: its MSH (MSH-11 the box's processing id; MSH-18 from HL7 table 0211
 * of `version` for the characters of the body) and the body segments, encoded as MSH-18 says.
 */
export function outboundMessage(
  h: Omit<StatusMessageHeader, 'style' | 'now'>,
  now: string,
  type: string,
  version: string,
  segments: readonly string[],
): Buffer {
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
    h.processingId,
    version,
  ];
  const body = segments.join('\r');
  const charset = outboundCharset(body, version);
  if (charset.msh18 !== '') msh.push('', '', '', '', '', charset.msh18);
  return Buffer.from(`${[msh.join('|'), body].join('\r')}\r`, charset.encoding);
}

/** The message payload (unframed), segments separated by CR. */
export function buildStatusMessage(p: ProcedureStatusPayload, h: StatusMessageHeader): Buffer {
  const now = formatHl7Timestamp(h.now ?? new Date());
  const at = formatHl7Timestamp(new Date(p.at));
  const v251 = h.style === StatusMessageStyle.OmiO23;
  const version = v251 ? '2.5.1' : '2.3.1';
  const pid = `PID|1||${cx(p.patient)}||${xpn(p.patient.name)}`;
  const orc = ['ORC', 'SC', ei(p.placerOrderNumber, p.placerIssuer), e(p.fillerOrderNumber), '', p.orderStatus, '', '', '', at].join('|');
  const service = ce(p.requestedProcedureCode, p.requestedProcedureDescription);
  const segments = [pid, orc];
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
  return outboundMessage(h, now, v251 ? 'OMI^O23^OMI_O23' : 'ORM^O01', version, segments);
}
