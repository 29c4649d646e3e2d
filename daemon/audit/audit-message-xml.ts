// DICOM PS3.15 A.5.1 audit message XML (the RFC 3881 descendant that IHE ATNA collectors store) for one
// chain record. Local refinements of the event (our `type`) travel as an EventTypeCode in the local
// coding scheme 99IMAGING-EDGE; those the registry (core/audit-events.ts) gives a DCM EventTypeCode
// (PS3.16 CID 401/402) also carry it. Event ID and action are the record's own, as it was signed.
import type { AuditEvent, AuditParticipant } from '../core/audit.ts';
import { AuditEventId, AuditEventTypeCode, auditEventSpec } from '../core/audit-events.ts';
import type { AuditRecord } from '../core/audit-trail.ts';

const LOCAL_SCHEME = '99IMAGING-EDGE';

// Most values (codes, AE titles, UIDs, addresses) need no escaping: one test instead of two replaces
// (bundle export renders a million messages).
const NEEDS_ESCAPE = /[&<>"'\u0000-\u0008\u000b\u000c\u000e-\u001f]/;

export function xmlEscape(text: string): string {
  if (!NEEDS_ESCAPE.test(text)) return text;
  return (
    text
      .replace(/[&<>"']/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&apos;'))
      // XML 1.0 forbids most C0 controls even escaped; audit text never needs them.
      .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '\ufffd')
  );
}

/** ParticipantObjectDetail values are xs:base64Binary. */
const base64 = (ascii: string): string => Buffer.from(ascii, 'ascii').toString('base64');

const attr = (name: string, value: string | undefined): string => (value === undefined ? '' : ` ${name}="${xmlEscape(value)}"`);

function roleOf(p: AuditParticipant, event: AuditEvent): readonly [string, string] {
  if (p.kind === 'system' && event.eventId === 'ApplicationActivity') return ['110150', 'Application'];
  if (p.kind === 'user') return ['110151', 'Application Launcher'];
  return p.requestor ? ['110153', 'Source Role ID'] : ['110152', 'Destination Role ID'];
}

function participantXml(p: AuditParticipant, event: AuditEvent): string {
  const [code, meaning] = roleOf(p, event);
  const alternative = p.kind === 'dicom' ? `AETITLES=${p.id}` : undefined;
  return `<ActiveParticipant${attr('UserID', p.id)}${attr('AlternativeUserID', alternative)} UserIsRequestor="${p.requestor}"${
    p.address === undefined ? '' : `${attr('NetworkAccessPointID', p.address)} NetworkAccessPointTypeCode="2"`
  }><RoleIDCode csd-code="${code}" codeSystemName="DCM" originalText="${meaning}"/></ActiveParticipant>`;
}

function objectsXml(event: AuditEvent, seq: number, environment: string | undefined): string {
  let out = '';
  if (event.patient !== undefined) {
    const id = event.patient.issuer === '' ? event.patient.id : `${event.patient.id}^^^${event.patient.issuer}`;
    out +=
      `<ParticipantObjectIdentification${attr('ParticipantObjectID', id)} ParticipantObjectTypeCode="1" ParticipantObjectTypeCodeRole="1">` +
      '<ParticipantObjectIDTypeCode csd-code="2" codeSystemName="RFC-3881" originalText="Patient Number"/></ParticipantObjectIdentification>';
  }
  if (event.studyInstanceUid !== undefined || event.accessionNumber !== undefined) {
    out +=
      `<ParticipantObjectIdentification${attr('ParticipantObjectID', event.studyInstanceUid ?? '')} ParticipantObjectTypeCode="2" ParticipantObjectTypeCodeRole="3">` +
      '<ParticipantObjectIDTypeCode csd-code="110180" codeSystemName="DCM" originalText="Study Instance UID"/>' +
      (event.accessionNumber === undefined ? '' : `<Accession${attr('Number', event.accessionNumber)}/>`) +
      '</ParticipantObjectIdentification>';
  }
  if (event.query !== undefined) {
    // PS3.15 A.5.3.12: the SOP Class queried, the query data set and its transfer syntax (both base64).
    out +=
      `<ParticipantObjectIdentification${attr('ParticipantObjectID', event.query.sopClassUid)} ParticipantObjectTypeCode="2" ParticipantObjectTypeCodeRole="3">` +
      '<ParticipantObjectIDTypeCode csd-code="110181" codeSystemName="DCM" originalText="SOP Class UID"/>' +
      `<ParticipantObjectQuery>${xmlEscape(event.query.dataSet)}</ParticipantObjectQuery>` +
      `<ParticipantObjectDetail type="TransferSyntax" value="${base64(event.query.transferSyntaxUid)}"/>` +
      '</ParticipantObjectIdentification>';
  }
  if (event.controlId !== undefined && event.controlId !== '') {
    // The HL7 message control id (MSH-10) or DICOM association id, so one accession can be followed
    // from order to image to status across records.
    out +=
      `<ParticipantObjectIdentification${attr('ParticipantObjectID', event.controlId)} ParticipantObjectTypeCode="2" ParticipantObjectTypeCodeRole="4">` +
      `<ParticipantObjectIDTypeCode csd-code="control-id" codeSystemName="${LOCAL_SCHEME}" originalText="Message or association id"/>` +
      '</ParticipantObjectIdentification>';
  }
  if (event.occurrences !== undefined) {
    // A summary of repeats (audit-coalescer.ts): how many, and when the first and last of them happened.
    const o = event.occurrences;
    out +=
      `<ParticipantObjectIdentification ParticipantObjectID="${o.count}" ParticipantObjectTypeCode="2" ParticipantObjectTypeCodeRole="4">` +
      `<ParticipantObjectIDTypeCode csd-code="occurrences" codeSystemName="${LOCAL_SCHEME}" originalText="Further occurrences of this event"/>` +
      `<ParticipantObjectDetail type="FirstOccurrence" value="${base64(new Date(o.firstAt).toISOString())}"/>` +
      `<ParticipantObjectDetail type="LastOccurrence" value="${base64(new Date(o.lastAt).toISOString())}"/>` +
      '</ParticipantObjectIdentification>';
  }
  // The recording box's environment rides on the chain position object, as a ParticipantObjectDetail
  // (PS3.15 A.5.2: type-value pairs about the object), so a SIEM can tell a test box's records apart.
  out +=
    `<ParticipantObjectIdentification ParticipantObjectID="${seq}" ParticipantObjectTypeCode="2" ParticipantObjectTypeCodeRole="13">` +
    `<ParticipantObjectIDTypeCode csd-code="audit-seq" codeSystemName="${LOCAL_SCHEME}" originalText="Audit chain sequence number"/>` +
    (environment === undefined ? '' : `<ParticipantObjectDetail type="Environment" value="${base64(environment)}"/>`) +
    '</ParticipantObjectIdentification>';
  return out;
}

/** The event's detail; a summary of repeats also says, in words, how many and over which span. */
function outcomeDescription(e: AuditEvent): string {
  const o = e.occurrences;
  if (o === undefined) return e.detail ?? '';
  const repeats = `${o.count} further occurrence(s) from ${new Date(o.firstAt).toISOString()} to ${new Date(o.lastAt).toISOString()}`;
  return e.detail === undefined || e.detail === '' ? repeats : `${e.detail}; ${repeats}`;
}

/** One `<AuditMessage>` element (no XML declaration). `auditSourceId` names the box (site.name). */
export function auditMessageXml(record: AuditRecord, auditSourceId: string): string {
  const e = record.event;
  const id = AuditEventId[e.eventId];
  const typeCodeName = auditEventSpec(e.type)?.eventTypeCode;
  const known = typeCodeName === undefined ? undefined : AuditEventTypeCode[typeCodeName];
  return (
    '<AuditMessage>' +
    `<EventIdentification EventActionCode="${e.action}" EventDateTime="${new Date(e.at).toISOString()}" EventOutcomeIndicator="${e.outcome}">` +
    `<EventID csd-code="${id.code}" codeSystemName="DCM" originalText="${id.meaning}"/>` +
    (known === undefined ? '' : `<EventTypeCode csd-code="${known.code}" codeSystemName="DCM" originalText="${known.meaning}"/>`) +
    `<EventTypeCode${attr('csd-code', e.type)} codeSystemName="${LOCAL_SCHEME}"${attr('originalText', e.type)}/>` +
    (e.detail === undefined && e.occurrences === undefined
      ? ''
      : `<EventOutcomeDescription>${xmlEscape(outcomeDescription(e))}</EventOutcomeDescription>`) +
    '</EventIdentification>' +
    e.participants.map((p) => participantXml(p, e)).join('') +
    `<AuditSourceIdentification${attr('AuditSourceID', auditSourceId)}><AuditSourceTypeCode csd-code="4" codeSystemName="DCM" originalText="Application Server"/></AuditSourceIdentification>` +
    objectsXml(e, record.seq, record.environment) +
    '</AuditMessage>'
  );
}

/**
 * The `<AuditMessage>` elements of chain lines (each line followed by '\n'), each element followed by
 * '\n', as UTF-8: the body of a bundle's audit-messages.xml, one chunk at a time. Each message is
 * written into one growing buffer as soon as it is made (flattening one long string of a thousand
 * messages cost as much as rendering them). The result owns its ArrayBuffer (it can move between threads).
 */
export function renderAuditMessages(lines: string, auditSourceId: string): Uint8Array {
  let buf = Buffer.allocUnsafeSlow(Math.max(4096, lines.length * 6));
  let used = 0;
  let from = 0;
  while (from < lines.length) {
    let to = lines.indexOf('\n', from);
    if (to === -1) to = lines.length;
    if (to > from) {
      const xml = auditMessageXml(JSON.parse(lines.slice(from, to)) as AuditRecord, auditSourceId);
      const worst = used + xml.length * 3 + 1;
      if (worst > buf.length) {
        const bigger = Buffer.allocUnsafeSlow(Math.max(worst, buf.length * 2));
        buf.copy(bigger, 0, 0, used);
        buf = bigger;
      }
      used += buf.write(xml, used, 'utf8');
      buf[used++] = 0x0a;
    }
    from = to + 1;
  }
  return buf.subarray(0, used);
}
