// The live audit stream against a real collector: rsyslogd with gnutls on loopback, mutual TLS. Records
// arrive as RFC 5424 messages carrying DICOM audit XML; a collector outage loses nothing and repeats
// nothing: 1,000 records made while it is down all arrive once, in order, after it comes back.
import test from 'ava';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SyslogSender, type SyslogSenderEvent, parseSyslog } from '../../daemon/audit/index.ts';
import { silentLogger } from '../../daemon/core/log.ts';
import { makeAuditTestPki } from '../support/test-pki.ts';
import { Rsyslog } from '../support/rsyslog.ts';
import { sampleEvent, tempStore } from '../support/audit-store.ts';
import { eventually } from '../support/wait.ts';

async function lines(file: string): Promise<string[]> {
  try {
    return (await readFile(file, 'utf8')).split('\n').filter((l) => l !== '');
  } catch {
    return [];
  }
}

const seqOf = (line: string): number => Number(/\[edge@32473 seq="(\d+)"/.exec(line)?.[1]);

test('records stream to rsyslogd as RFC 5424; an outage loses and repeats nothing', async (t) => {
  const pki = makeAuditTestPki();
  const ctx = await tempStore();
  const rsyslog = await Rsyslog.start({
    dir: join(pki.dir, 'rsyslog'),
    caFile: pki.siteCa,
    certFile: pki.collector.cert,
    keyFile: pki.collector.key,
  });
  const events: SyslogSenderEvent[] = [];
  const sender = new SyslogSender({
    collector: { name: 'central', host: '127.0.0.1', port: rsyslog.port, serverName: 'localhost' },
    trail: ctx.store.audit,
    tls: {
      ca: await readFile(pki.siteCa),
      cert: await readFile(pki.device.cert),
      key: await readFile(pki.device.key),
      minVersion: 'TLSv1.2',
    },
    identity: { hostname: 'edge-test', appName: 'edged', procId: '1' },
    logger: silentLogger,
    onEvent: (e) => events.push(e),
    confirmAfterMs: 300,
    retryMinMs: 100,
    retryMaxMs: 300,
    alertIntervalMs: 600_000,
  });
  t.teardown(async () => {
    await sender.stop(500);
    await rsyslog.stop();
    await ctx.cleanup();
    pki.cleanup();
  });

  for (let i = 1; i <= 5; i++) ctx.store.audit.record(sampleEvent(i));
  await sender.start();
  await eventually(async () => (await lines(rsyslog.outFile)).length >= 5, 30_000, '5 messages', 50);
  const first = await lines(rsyslog.outFile);
  for (const line of first) {
    const m = parseSyslog(line);
    t.truthy(m, `not RFC 5424: ${line.slice(0, 200)}`);
    t.is(m!.pri, 10 * 8 + 5);
    t.is(m!.version, 1);
    t.is(m!.hostname, 'edge-test');
    t.is(m!.appName, 'edged');
    t.is(m!.msgId, 'IHE+RFC-3881');
    t.regex(m!.structuredData, /^\[edge@32473 seq="\d+" hash="[0-9a-f]{64}" type="[a-z0-9.-]+"\]$/);
    t.regex(
      m!.msg,
      /^<AuditMessage><EventIdentification EventActionCode="[CRUDE]" EventDateTime="[^"]+" EventOutcomeIndicator="0"><EventID csd-code="1101\d\d" codeSystemName="DCM"/,
    );
    t.regex(m!.msg, /<ParticipantObjectIdentification ParticipantObjectID="PID\d\^\^\^HOSP" ParticipantObjectTypeCode="1"/);
    t.regex(m!.msg, /<Accession Number="ACC\d"\/>/);
    t.regex(m!.msg, /<\/AuditMessage>$/);
  }
  t.deepEqual(first.map(seqOf), [1, 2, 3, 4, 5]);
  await eventually(() => sender.status.confirmedSeq === 5, 30_000, 'cursor at 5', 50);

  await rsyslog.stop();
  for (let i = 6; i <= 1005; i++) ctx.store.audit.record(sampleEvent(i));
  await ctx.store.flush();
  await eventually(() => events.some((e) => e.type === 'collector-unreachable'), 30_000, 'the outage alert', 50);
  // Several reconnect attempts fail while it is down; only one alert is raised for them.
  await new Promise((r) => setTimeout(r, 800));
  t.is(events.filter((e) => e.type === 'collector-unreachable').length, 1);
  t.false(sender.status.connected);

  await rsyslog.start();
  await eventually(async () => (await lines(rsyslog.outFile)).length >= 1005, 30_000, '1005 messages', 50);
  await eventually(() => sender.status.confirmedSeq === 1005, 30_000, 'cursor at 1005', 50);
  const all = await lines(rsyslog.outFile);
  t.is(all.length, 1005);
  t.deepEqual(
    all.map(seqOf),
    Array.from({ length: 1005 }, (_, i) => i + 1),
  );
  t.true(all.every((l) => parseSyslog(l) !== undefined));
  t.true(events.some((e) => e.type === 'collector-restored'));

  // The cursor is durable: a new sender (a restarted box) sends only what is new.
  await sender.stop(1000);
  ctx.store.audit.record(sampleEvent(1006));
  await ctx.store.flush();
  const again = new SyslogSender({
    collector: { name: 'central', host: '127.0.0.1', port: rsyslog.port, serverName: 'localhost' },
    trail: ctx.store.audit,
    tls: {
      ca: await readFile(pki.siteCa),
      cert: await readFile(pki.device.cert),
      key: await readFile(pki.device.key),
      minVersion: 'TLSv1.2',
    },
    identity: { hostname: 'edge-test', appName: 'edged', procId: '2' },
    logger: silentLogger,
    onEvent: () => undefined,
  });
  await again.start();
  await eventually(async () => (await lines(rsyslog.outFile)).length >= 1006, 30_000, '1006 messages', 50);
  await again.stop(1000);
  t.deepEqual((await lines(rsyslog.outFile)).map(seqOf).slice(-2), [1005, 1006]);
});

test('a collector whose certificate is not from the site CA is refused by the sender', async (t) => {
  const pki = makeAuditTestPki();
  const ctx = await tempStore();
  const rsyslog = await Rsyslog.start({
    dir: join(pki.dir, 'rsyslog'),
    caFile: pki.siteCa,
    certFile: pki.rogue.cert,
    keyFile: pki.rogue.key,
  });
  const events: SyslogSenderEvent[] = [];
  const sender = new SyslogSender({
    collector: { name: 'fake', host: '127.0.0.1', port: rsyslog.port, serverName: 'localhost' },
    trail: ctx.store.audit,
    tls: {
      ca: await readFile(pki.siteCa),
      cert: await readFile(pki.device.cert),
      key: await readFile(pki.device.key),
      minVersion: 'TLSv1.2',
    },
    identity: { hostname: 'edge-test', appName: 'edged', procId: '1' },
    logger: silentLogger,
    onEvent: (e) => events.push(e),
    retryMinMs: 100,
  });
  t.teardown(async () => {
    await sender.stop(200);
    await rsyslog.stop();
    await ctx.cleanup();
    pki.cleanup();
  });
  ctx.store.audit.record(sampleEvent(1));
  await sender.start();
  await eventually(() => events.length > 0, 30_000, 'an alert', 50);
  t.is(events[0]?.type, 'collector-unreachable');
  t.false(sender.status.connected);
  t.deepEqual(await lines(rsyslog.outFile), []);
});
