// The order the box places with the RIS for a downtime order (IHE Scheduled Workflow, the department
// system as order placer): ORM^O01 v2.3.1 with ORC-1 NW, carrying the box's placer order number in
// ORC-2 / OBR-2 (entity id ^ the box's namespace), its local accession number in OBR-18, requested
// procedure id in OBR-19, step id in OBR-20, modality in OBR-24, start in ORC-7.4 / OBR-27.4, the box's
// Study Instance UID in ZDS-1 and the downtime note in NTE-3 — the same positions the box reads on
// inbound orders. The RIS answers with its own accession and patient identity in a later ORM naming the
// placer number. MSH-10 is the outbox entry id, so a re-send after a crash is the same message.
import { Buffer } from 'node:buffer';
import type { Order } from '../core/order.ts';
import { formatHl7Timestamp } from './ack.ts';
import { DEFAULT_ENCODING, escapeHl7 } from './message.ts';
import { type StatusMessageHeader, outboundMessage } from './outbound-status-message.ts';

const e = (v: string | undefined): string => escapeHl7(v ?? '', DEFAULT_ENCODING);

function xpn(pn: string): string {
  return (pn.split('=')[0] ?? '').split('^').map(e).join('^');
}

function ei(id: string, namespace: string): string {
  return namespace === '' ? e(id) : `${e(id)}^${e(namespace)}`;
}

/** The ORM^O01 NW for `order` (unframed), segments separated by CR. */
export function buildOrderPlacedMessage(order: Order, h: Omit<StatusMessageHeader, 'style'>): Buffer {
  const now = formatHl7Timestamp(h.now ?? new Date());
  const step = order.steps[0];
  const start = step === undefined ? '' : `${step.startDate}${step.startTime}`.slice(0, 14);
  const p = order.patient;
  const pid = `PID|1||${e(p.id)}^^^${e(p.issuer)}||${xpn(p.name)}||${e(p.birthDate)}|${e(p.sex)}`;
  const placer = ei(order.placerOrderNumber, order.placerIssuer);
  const orc = ['ORC', 'NW', placer, '', '', 'SC', '', `^^^${start}`, '', now].join('|');
  const obr: string[] = ['OBR', '1', placer, '', `^${e(order.requestedProcedureDescription)}`];
  while (obr.length < 18) obr.push('');
  obr.push(e(order.accessionNumber), e(order.requestedProcedureId), e(step?.id ?? ''));
  while (obr.length < 24) obr.push('');
  obr.push(e(step?.modality ?? ''), '', '', `^^^${start}`);
  const segments = [pid, orc, obr.join('|')];
  if (order.downtime !== undefined) {
    const note = `DOWNTIME ORDER entered at ${e(step?.stationAeTitle ?? '')} by ${e(order.downtime.enteredBy)}${order.downtime.temporaryPatientId ? ' (temporary patient ID)' : ''}: ${e(order.downtime.reason)}`;
    segments.push(`NTE|1|L|${note}`);
  }
  segments.push(`ZDS|${e(order.studyInstanceUid)}^^Application^DICOM`);
  return outboundMessage(h, now, 'ORM^O01', '2.3.1', segments);
}
