import { join } from 'node:path';
import test from 'ava';
import { readFileSync } from 'node:fs';
import { AckCode, buildAck, newControlId } from './ack.ts';
import { parseHl7Message, parseMessageHeader } from './message.ts';
import { readStrictHl7 } from './testing/strict-v2-reader.ts';
import { HL7_FIXTURES } from '../../test/support/paths.ts';

const fixture = (name: string): Buffer => readFileSync(join(HL7_FIXTURES, name));

test('AA: swapped sender/receiver, new control id, ACK^trigger^ACK, copies MSH-11/12/18', (t) => {
  const req = parseHl7Message(fixture('orm-o01-new-ct.hl7'));
  const ack = parseHl7Message(buildAck(req, { code: AckCode.ApplicationAccept, text: 'Message accepted' }));
  t.is(ack.get('MSH', 3), 'EDGE');
  t.is(ack.get('MSH', 4), 'RAD1');
  t.is(ack.get('MSH', 5), 'RIS');
  t.is(ack.get('MSH', 6), 'GENHOSP');
  t.is(ack.get('MSH', 9, 1, 1), 'ACK');
  t.is(ack.get('MSH', 9, 1, 2), 'O01');
  t.is(ack.get('MSH', 9, 1, 3), 'ACK');
  t.not(ack.controlId, 'ACK');
  t.not(ack.controlId, req.controlId);
  t.true(ack.controlId.length > 0 && ack.controlId.length <= 20);
  t.is(ack.get('MSH', 11), 'P');
  t.is(ack.get('MSH', 12), '2.3.1');
  t.is(ack.get('MSH', 18), '8859/1');
  t.is(ack.get('MSA', 1), 'AA');
  t.is(ack.get('MSA', 2), 'MSG00001');
  t.is(ack.segment('ERR'), undefined);
});

test('control ids are unique', (t) => {
  const ids = new Set(Array.from({ length: 10_000 }, () => newControlId()));
  t.is(ids.size, 10_000);
});

test('v2.3.1 AE puts location and code into ERR-1', (t) => {
  const req = parseHl7Message(fixture('bad-missing-obr.hl7'));
  const ack = parseHl7Message(
    buildAck(req, {
      code: AckCode.ApplicationError,
      text: 'Message invalid',
      error: { condition: 100, location: { segment: 'OBR', sequence: 1 } },
    }),
  );
  t.is(ack.get('MSA', 1), 'AE');
  t.is(ack.get('MSA', 2), 'MSG00007');
  t.is(ack.get('ERR', 1, 1, 1), 'OBR');
  t.is(ack.get('ERR', 1, 1, 2), '1');
  t.is(ack.get('ERR', 1, 1, 4, 1), '100');
  t.is(ack.get('ERR', 1, 1, 4, 3), 'HL70357');
});

test('v2.5.1 AR uses ERR-2 (ERL), ERR-3 (HL7 table 0357) and ERR-4 severity; UTF-8 kept', (t) => {
  const req = parseHl7Message(fixture('omi-o23-new-us.hl7'));
  const bytes = buildAck(req, {
    code: AckCode.ApplicationReject,
    text: 'x',
    error: { condition: 101, location: { segment: 'IPC', sequence: 1, field: 5, component: 1 } },
  });
  const ack = parseHl7Message(bytes);
  t.is(ack.get('MSH', 18), 'UNICODE UTF-8');
  t.is(ack.get('MSH', 9, 1, 2), 'O23');
  t.is(ack.get('MSA', 1), 'AR');
  t.deepEqual(
    [1, 2, 3, 4, 5].map((c) => ack.get('ERR', 2, 1, c)),
    ['IPC', '1', '5', '1', '1'],
  );
  t.is(ack.get('ERR', 3, 1, 1), '101');
  t.is(ack.get('ERR', 3, 1, 3), 'HL70357');
  t.is(ack.get('ERR', 4), 'E');
});

test('the request delimiters are used, texts are escaped', (t) => {
  const req = parseHl7Message(Buffer.from('MSH#$*!@#APP#FAC#EDGE#RAD#1##ADT$A08#C1#P#2.5.1\rPID#1##X'));
  const bytes = buildAck(req, { code: AckCode.ApplicationError, text: 'a#b$c' });
  t.true(bytes.toString().startsWith('MSH#$*!@#EDGE#RAD#APP#FAC#'));
  const ack = parseHl7Message(bytes);
  t.is(ack.get('MSA', 3), 'a#b$c');
  t.is(ack.get('MSA', 2), 'C1');
});

test('ACK from a header only (body not decodable) is ASCII', (t) => {
  const raw = Buffer.from('MSH|^~\\&|RIS|H|E|R|1||ORM^O01|C9|P|2.3.1||||||ISO IR87\rPID|1');
  const ack = parseHl7Message(
    buildAck(parseMessageHeader(raw), {
      code: AckCode.ApplicationReject,
      error: { condition: 103, location: { segment: 'MSH', sequence: 1, field: 18 } },
    }),
  );
  t.is(ack.get('MSH', 18), '');
  t.is(ack.get('MSA', 2), 'C9');
  t.is(ack.get('ERR', 1, 1, 3), '18');
});

test('v2.5.1 ERR-2 names repetition and sub-component when the location has them', (t) => {
  const request = parseHl7Message(Buffer.from('MSH|^~\\&|RIS|GENHOSP|EDGE|RAD1|20261125||ORM^O01|X1|P|2.5.1\rPID|1\r', 'latin1'));
  const ack = buildAck(request, {
    code: AckCode.ApplicationError,
    text: 'Message invalid',
    error: { condition: 102, location: { segment: 'PID', sequence: 1, field: 5, repetition: 2, component: 1, subcomponent: 33 } },
  });
  t.regex(ack.toString('latin1'), /\rERR\|\|PID\^1\^5\^2\^1\^33\|102\^Data type error\^HL70357\|E\r/);
});

test('ACK MSH-9 is shaped for the request version: two components before v2.3.1, three from it; each ACK parses strictly', (t) => {
  for (const [version, expected] of [
    ['2.2', 'ACK^O01'],
    ['2.3', 'ACK^O01'],
    ['2.3.1', 'ACK^O01^ACK'],
    ['2.4', 'ACK^O01^ACK'],
    ['2.5', 'ACK^O01^ACK'],
    ['2.5.1', 'ACK^O01^ACK'],
  ] as const) {
    const request = Buffer.from(fixture('orm-o01-new-ct.hl7').toString('latin1').replace('|P|2.3.1|', `|P|${version}|`), 'latin1');
    for (const code of [AckCode.ApplicationAccept, AckCode.ApplicationError, AckCode.ApplicationReject]) {
      const ack = readStrictHl7(
        buildAck(parseHl7Message(request), {
          code,
          text: 'Message accepted',
          ...(code === AckCode.ApplicationAccept
            ? {}
            : { error: { condition: 102, location: { segment: 'OBR', sequence: 1, field: 18 } } }),
        }),
      );
      t.is(ack.field('MSH', 9), expected, version);
      t.is(ack.version, version);
    }
  }
});
