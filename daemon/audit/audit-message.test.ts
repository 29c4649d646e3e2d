import test from 'ava';
import type { AuditEvent } from '../core/audit.ts';
import { securityAlert } from '../core/audit-event-builders.ts';
import { AuditEventTypeCode, AuditEvents, type AuditEventSpec, type AuditEventType } from '../core/audit-events.ts';
import { auditMessageXml, xmlEscape } from './audit-message-xml.ts';
import { octetFrame, parseSyslog, syslogMessage } from './syslog-message.ts';

const event: AuditEvent = {
  eventId: 'ProcedureRecord',
  type: 'hl7.order-committed',
  action: 'U',
  outcome: 0,
  at: Date.UTC(2024, 4, 6, 7, 8, 9, 10),
  participants: [
    { kind: 'hl7', id: 'RIS^HOSP', address: '10.0.0.5', requestor: true },
    { kind: 'dicom', id: 'EDGE', requestor: false },
  ],
  patient: { id: 'P<1>', issuer: 'HOSP' },
  accessionNumber: 'A&1',
  studyInstanceUid: '1.2.3',
  controlId: 'MSG1',
  detail: 'a "b"\u0001',
};

test('a record renders as a PS3.15 A.5.1 AuditMessage with participants and objects', (t) => {
  const xml = auditMessageXml({ seq: 7, prevHash: '0'.repeat(64), event }, 'site-1');
  t.regex(
    xml,
    /^<AuditMessage><EventIdentification EventActionCode="U" EventDateTime="2024-05-06T07:08:09.010Z" EventOutcomeIndicator="0"><EventID csd-code="110111" codeSystemName="DCM" originalText="Procedure Record"\/>/,
  );
  t.regex(
    xml,
    /<ActiveParticipant UserID="RIS\^HOSP" UserIsRequestor="true" NetworkAccessPointID="10.0.0.5" NetworkAccessPointTypeCode="2"><RoleIDCode csd-code="110153"/,
  );
  t.regex(xml, /<ActiveParticipant UserID="EDGE" AlternativeUserID="AETITLES=EDGE" UserIsRequestor="false">/);
  t.regex(xml, /<AuditSourceIdentification AuditSourceID="site-1">/);
  t.regex(xml, /ParticipantObjectID="P&lt;1&gt;\^\^\^HOSP" ParticipantObjectTypeCode="1" ParticipantObjectTypeCodeRole="1"/);
  t.regex(
    xml,
    /ParticipantObjectID="1.2.3" ParticipantObjectTypeCode="2" ParticipantObjectTypeCodeRole="3"><ParticipantObjectIDTypeCode csd-code="110180"[^>]*\/><Accession Number="A&amp;1"\/>/,
  );
  t.regex(xml, /ParticipantObjectID="MSG1"/);
  t.regex(xml, /<EventOutcomeDescription>a &quot;b&quot;\ufffd<\/EventOutcomeDescription>/);
  t.is(xmlEscape(`<&>"'`), '&lt;&amp;&gt;&quot;&apos;');
});

test('the syslog message is RFC 5424 and the frame counts octets', (t) => {
  const msg = syslogMessage({ seq: 7, prevHash: '0'.repeat(64), event: { ...event, outcome: 8 } }, 'ab'.repeat(32), {
    hostname: 'box one',
    appName: 'edged',
    procId: '42',
  });
  const p = parseSyslog(msg);
  t.truthy(p);
  t.is(p!.pri, 83);
  t.is(p!.hostname, 'box_one');
  t.is(p!.timestamp, '2024-05-06T07:08:09.010Z');
  t.is(p!.structuredData, `[edge@32473 seq="7" hash="${'ab'.repeat(32)}" type="hl7.order-committed"]`);
  t.true(p!.msg.startsWith('<AuditMessage>'));
  const frame = octetFrame(msg);
  const space = frame.indexOf(0x20);
  t.is(Number(frame.subarray(0, space).toString()), frame.length - space - 1);
  t.is(parseSyslog('<13>1 not-a-time h a p m - x'), undefined);
});

test('a summary of coalesced refusals carries its count and span in the XML and in the syslog structured data', (t) => {
  const first = Date.UTC(2026, 11, 4, 21, 0, 0, 5);
  const last = Date.UTC(2026, 11, 4, 21, 0, 59, 990);
  const summary: AuditEvent = {
    eventId: 'SecurityAlert',
    type: 'dicom.tls-handshake-failed',
    action: 'E',
    outcome: 4,
    at: last + 20,
    participants: [{ kind: 'dicom', id: 'unknown', address: '10.0.0.9', requestor: true }],
    detail: 'ECONNRESET',
    occurrences: { count: 4211, firstAt: first, lastAt: last },
  };
  const xml = auditMessageXml({ seq: 9, prevHash: '0'.repeat(64), event: summary }, 'site-1');
  t.regex(
    xml,
    /<EventOutcomeDescription>ECONNRESET; 4211 further occurrence\(s\) from 2026-12-04T21:00:00.005Z to 2026-12-04T21:00:59.990Z<\/EventOutcomeDescription>/,
  );
  const object =
    /<ParticipantObjectIdentification ParticipantObjectID="4211"[^>]*><ParticipantObjectIDTypeCode csd-code="occurrences" codeSystemName="99IMAGING-EDGE"[^>]*\/>(.*?)<\/ParticipantObjectIdentification>/.exec(
      xml,
    );
  t.truthy(object, xml);
  const details = Object.fromEntries(
    [...object![1]!.matchAll(/type="(\w+)" value="([^"]*)"/g)].map((m) => [m[1], Buffer.from(m[2]!, 'base64').toString('ascii')]),
  );
  t.deepEqual(details, { FirstOccurrence: '2026-12-04T21:00:00.005Z', LastOccurrence: '2026-12-04T21:00:59.990Z' });
  t.notRegex(auditMessageXml({ seq: 7, prevHash: '0'.repeat(64), event }, 'site-1'), /occurrences/);

  const p = parseSyslog(
    syslogMessage({ seq: 9, prevHash: '0'.repeat(64), event: summary }, 'cd'.repeat(32), {
      hostname: 'box',
      appName: 'edged',
      procId: '1',
    }),
  );
  t.is(p!.structuredData, `[edge@32473 seq="9" hash="${'cd'.repeat(32)}" type="dicom.tls-handshake-failed" occurrences="4211"]`);
});

test('the DCM EventTypeCode comes from the registry; a type it does not hold renders without one', (t) => {
  const at = Date.UTC(2024, 0, 1);
  const render = (e: AuditEvent): string => auditMessageXml({ seq: 1, prevHash: '0'.repeat(64), event: e }, 'site-1');
  for (const [type, spec] of Object.entries(AuditEvents) as [AuditEventType, AuditEventSpec][]) {
    const dcm = render({
      eventId: spec.eventIds[0],
      type,
      action: spec.actions[0],
      outcome: spec.outcome,
      at,
      participants: [],
    } as AuditEvent).match(/<EventTypeCode csd-code="(\d+)" codeSystemName="DCM"/)?.[1];
    t.is(dcm, spec.eventTypeCode === undefined ? undefined : AuditEventTypeCode[spec.eventTypeCode].code, type);
  }
  t.regex(
    render(securityAlert('hl7.peer-refused', [], 'x', at)),
    /<EventTypeCode csd-code="110126" codeSystemName="DCM" originalText="Node Authentication"\/><EventTypeCode csd-code="hl7.peer-refused" codeSystemName="99IMAGING-EDGE"/,
  );
  // A record from an older version keeps its own Event ID and action, and its type in the local scheme.
  const older = JSON.parse(
    '{"eventId":"ProcedureRecord","type":"order.created","action":"C","outcome":0,"at":0,"participants":[]}',
  ) as AuditEvent;
  const xml = render(older);
  t.regex(
    xml,
    /EventActionCode="C"[^>]*><EventID csd-code="110111" codeSystemName="DCM" originalText="Procedure Record"\/><EventTypeCode csd-code="order.created" codeSystemName="99IMAGING-EDGE"/,
  );
});

test("the recording box's environment is a ParticipantObjectDetail of the chain position and a syslog SD parameter", (t) => {
  const record = { seq: 9, prevHash: '0'.repeat(64), event, environment: 'training' as const };
  const xml = auditMessageXml(record, 'site-1');
  const detail = Buffer.from('training').toString('base64');
  t.regex(
    xml,
    new RegExp(
      `csd-code="audit-seq"[^>]*/><ParticipantObjectDetail type="Environment" value="${detail}"/></ParticipantObjectIdentification>`,
    ),
  );
  const m = parseSyslog(syslogMessage(record, 'a'.repeat(64), { hostname: 'site-1', appName: 'edged', procId: '1' }));
  t.regex(m?.structuredData ?? '', / environment="training"\]$/);
  // A record of an older version (no environment) renders as before.
  t.notRegex(auditMessageXml({ ...record, environment: undefined }, 'site-1'), /Environment/);
});
