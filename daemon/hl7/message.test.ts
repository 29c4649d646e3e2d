import { join } from 'node:path';
import test from 'ava';
import { readFileSync } from 'node:fs';
import { isEdgeError } from '../core/errors.ts';
import { Hl7Charset } from './charset.ts';
import { escapeHl7, parseHl7Message, unescapeHl7, DEFAULT_ENCODING } from './message.ts';
import { HL7_FIXTURES } from '../../test/support/paths.ts';

const fixture = (name: string): Buffer => readFileSync(join(HL7_FIXTURES, name));
const msg = (s: string): Buffer => Buffer.from(s.replaceAll('\n', '\r'), 'latin1');

test('MSH fields keep their standard numbers', (t) => {
  const m = parseHl7Message(fixture('orm-o01-new-ct.hl7'));
  t.is(m.get('MSH', 1), '|');
  t.is(m.get('MSH', 2), '^~\\&');
  t.is(m.get('MSH', 3), 'RIS');
  t.is(m.get('MSH', 9, 1, 1), 'ORM');
  t.is(m.get('MSH', 9, 1, 2), 'O01');
  t.is(m.controlId, 'MSG00001');
  t.is(m.versionId, '2.3.1');
  t.is(m.get('MSH', 18), '8859/1');
  t.is(m.charset, Hl7Charset.Latin1);
});

test('Latin-1 names keep their characters', (t) => {
  const m = parseHl7Message(fixture('orm-o01-new-ct.hl7'));
  t.is(m.get('PID', 5, 1, 1), 'MÜLLER');
  t.is(m.get('PID', 5, 1, 2), 'JÜRGEN');
  t.is(m.get('PID', 3, 1, 4), 'GENHOSP');
});

test('UTF-8 ideographic and phonetic repetitions', (t) => {
  const m = parseHl7Message(fixture('omi-o23-new-us.hl7'));
  t.is(m.charset, Hl7Charset.Utf8);
  const pid = m.segment('PID')!;
  t.is(pid.repetitions(5).length, 2);
  t.is(pid.get(5, 1, 1), '山田');
  t.is(pid.get(5, 1, 7), 'I');
  t.is(pid.get(5, 2, 2), 'タロウ');
  t.is(pid.get(5, 2, 7), 'P');
});

test('escape sequences', (t) => {
  const m = parseHl7Message(fixture('orm-o01-new-mr-escapes.hl7'));
  t.is(m.get('OBR', 4, 1, 2), 'MR BRAIN & IAC W/WO');
  const e = (s: string): string => unescapeHl7(s, DEFAULT_ENCODING, Hl7Charset.Latin1);
  t.is(e('a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f'), 'a|b^c&d~e\\f');
  t.is(e('line1\\.br\\line2'), 'line1\nline2');
  t.is(e('\\H\\bold\\N\\'), 'bold');
  t.is(e('M\\XDC\\LLER'), 'MÜLLER');
  t.is(e('unterminated \\F'), 'unterminated \\F');
  t.is(e('unknown \\Q\\ kept'), 'unknown \\Q\\ kept');
  t.is(unescapeHl7('\\XC39C\\', DEFAULT_ENCODING, Hl7Charset.Utf8), 'Ü');
  t.throws(() => e('\\C2842\\'), { code: 'EDGE_HL7_UNSUPPORTED_CHARSET' });
  t.is(e(escapeHl7('a|b^c&d~e\\f', DEFAULT_ENCODING)), 'a|b^c&d~e\\f');
});

test('repetitions, components, subcomponents; absent positions are empty', (t) => {
  const m = parseHl7Message(msg('MSH|^~\\&|A|B|C|D|1||ADT^A08|1|P|2.5.1\nPID|1||ID1^^^AUTH&1.2.3&ISO~ID2^^^OTHER||X'));
  t.is(m.get('PID', 3, 1, 4, 1), 'AUTH');
  t.is(m.get('PID', 3, 1, 4, 2), '1.2.3');
  t.is(m.get('PID', 3, 2, 1), 'ID2');
  t.is(m.get('PID', 3, 3, 1), '');
  t.is(m.get('PID', 99), '');
  t.is(m.get('ZZZ', 1), '');
  t.false(m.segment('PID')!.has(2));
  t.true(m.segment('PID')!.has(3));
});

test('other encoding characters are honoured', (t) => {
  const m = parseHl7Message(msg('MSH#$*!@#A#B#C#D#1##ADT$A08#1#P#2.5.1\nPID#1##ID1$$$AUTH@X*ID2##MU!F!LLER$HANS'));
  t.is(m.get('MSH', 1), '#');
  t.is(m.get('MSH', 2), '$*!@');
  t.is(m.messageCode, 'ADT');
  t.is(m.get('PID', 3, 1, 4, 2), 'X');
  t.is(m.get('PID', 3, 2, 1), 'ID2');
  t.is(m.get('PID', 5, 1, 1), 'MU#LLER');
});

test('segment separators CR, LF and CRLF are tolerated', (t) => {
  for (const sep of ['\r', '\n', '\r\n']) {
    const m = parseHl7Message(Buffer.from(['MSH|^~\\&|A|B|C|D|1||ADT^A08|1|P|2.5.1', 'PID|1||X', ''].join(sep)));
    t.is(m.segments.length, 2);
  }
});

test('invalid encoding characters are rejected with a clear error', (t) => {
  for (const bad of ['MSH|^~\\|A', 'MSH|^~\\^|A', 'MSH|^~A&|A', 'MSH|^~\\&&&|A', 'MSH|^ \\&|A']) {
    const err = t.throws(() => parseHl7Message(Buffer.from(bad)));
    t.true(isEdgeError(err, 'EDGE_HL7_PARSE'), bad);
    t.regex(err!.message, /MSH-1\/MSH-2|MSH-2|does not start/);
  }
});

test('not HL7 at all', (t) => {
  t.throws(() => parseHl7Message(Buffer.from('GET / HTTP/1.1')), { code: 'EDGE_HL7_PARSE' });
  t.throws(() => parseHl7Message(Buffer.from('MSH|^~\\&|A\rpid|1')), { code: 'EDGE_HL7_PARSE' });
});

test('character sets: unsupported MSH-18, invalid bytes', (t) => {
  const base = 'MSH|^~\\&|A|B|C|D|1||ADT^A08|1|P|2.5.1||||||';
  t.throws(() => parseHl7Message(Buffer.from(base + 'ISO IR87\rPID|1')), { code: 'EDGE_HL7_UNSUPPORTED_CHARSET' });
  t.throws(() => parseHl7Message(Buffer.from(base + 'UNICODE UTF-8\rPID|1||\xff', 'latin1')), { code: 'EDGE_HL7_PARSE' });
  t.throws(() => parseHl7Message(Buffer.from(base + '\rPID|1||\xdc', 'latin1')), { code: 'EDGE_HL7_PARSE' });
  t.is(parseHl7Message(Buffer.from(base + 'ASCII\rPID|1||X')).charset, Hl7Charset.Ascii);
});

const limits = { maxSegments: 10, maxOrderGroups: 2, maxFieldsPerSegment: 20, maxRepetitions: 3, maxComponents: 5, maxSubcomponents: 4 };
const header = 'MSH|^~\\&|RIS|GENHOSP|EDGE|RAD1|20261125||ORM^O01|LIM1|P|2.5.1\n';

function limitDetail(text: string): Record<string, unknown> | undefined {
  try {
    parseHl7Message(msg(text), limits);
    return undefined;
  } catch (err) {
    if (!isEdgeError(err) || err.code !== 'EDGE_HL7_LIMIT_EXCEEDED') throw err;
    return { ...err.detail };
  }
}

test('limits: a message within every cap parses as without them', (t) => {
  const text = header + 'PID|1||A~B~C||X^Y^Z^W^V||&&&\nORC|NW\nORC|NW\n';
  t.is(limitDetail(text), undefined);
  t.deepEqual(parseHl7Message(msg(text), limits).segments.length, 4);
});

test('limits: the first position over each cap is named as ERR-2 would', (t) => {
  t.deepEqual(limitDetail(header + 'PID|1||A~B~C~D\n'), { segment: 'PID', sequence: 1, field: 3, repetition: 4 });
  t.deepEqual(limitDetail(header + 'PID|1||A~B^1^2^3^4^5\n'), { segment: 'PID', sequence: 1, field: 3, repetition: 2, component: 6 });
  t.deepEqual(limitDetail(header + 'PID|1||A^B&1&2&3&4\n'), {
    segment: 'PID',
    sequence: 1,
    field: 3,
    repetition: 1,
    component: 2,
    subcomponent: 5,
  });
  t.deepEqual(limitDetail(header + 'NTE|1\nNTE|2' + '|'.repeat(20) + '\n'), { segment: 'NTE', sequence: 2, field: 21 });
  t.deepEqual(limitDetail(header + 'ORC|NW\nOBR|1\nORC|NW\nOBR|2\nORC|NW\n'), { segment: 'ORC', sequence: 3 });
  t.deepEqual(limitDetail(header + 'NTE|1\n'.repeat(10)), { segment: 'NTE', sequence: 10 });
});

test('limits: MSH-2 encoding characters are not counted as delimiters', (t) => {
  t.is(limitDetail('MSH|^~\\&|R^A^P&1&2&3|GENHOSP|EDGE|RAD1|20261125||ORM^O01|LIM2|P|2.5.1\n'), undefined);
  t.deepEqual(limitDetail('MSH|^~\\&|RIS|GENHOSP~A~B~C|EDGE|RAD1\n'), { segment: 'MSH', sequence: 1, field: 4, repetition: 4 });
});
