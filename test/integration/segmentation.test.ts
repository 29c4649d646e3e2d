// The box's own firewall with real packets: a box namespace linked to a modality, a RIS, an office and
// an upstream segment (test/peers/netns/segments-up.sh), the ruleset applied there with
// `edgectl segmentation apply`, edged running there. Every namespace address (10.231.x.y) is used only
// from inside a namespace (ip netns exec): from the root namespace it would route off the machine.
import test from 'ava';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AuditRecord } from '../../daemon/core/audit-trail.ts';
import { silentLogger } from '../../daemon/core/log.ts';
import { FileKeySource } from '../../daemon/security/file-key-source.ts';
import { nftCommand } from '../../daemon/security/nft-client.ts';
import { compareTables } from '../../daemon/security/segmentation-drift.ts';
import { openStore } from '../../daemon/store/index.ts';
import { PEERS } from '../support/paths.ts';
import { needsCommand, needsRoot } from '../support/preconditions.ts';
import { Supervised, run } from '../support/processes.ts';
import type { RunResult } from '../support/processes.ts';
import { createSite, repoRoot } from '../support/site.ts';
import { waitFor } from '../support/wait.ts';

const P = `es${process.pid % 100000}`;
const BOX = `${P}-box`;
const MOD = `${P}-mod`;
const RIS = `${P}-ris`;
const OFFICE = `${P}-off`;
const UP = `${P}-up`;
const boxOnModalitySegment = '10.231.1.1';
const boxOnRisSegment = '10.231.2.1';
const modalityHost = '10.231.1.10';
const risHost = '10.231.2.10';
const officeHost = '10.231.3.10';
const listedUpstream = '10.231.4.10';
const unlistedUpstream = '10.231.4.20';
const ports = { hl7: 2575, dicomTls: 2762, dicomPlain: 11112, pacs: 11112, officeService: 8080 } as const;
/** A dropped SYN is retried; a connect that is dropped (not refused) is still pending after this. */
const dropTimeoutS = 3;

function missingPrecondition(): string | undefined {
  // Not `command -v nft`: npm installs an unrelated `nft` in node_modules/.bin.
  const nft = nftCommand.startsWith('/') ? undefined : 'nft is not installed (apt-get install nftables)';
  return [needsRoot(), nft, needsCommand('ip', 'findscu', 'storescu', 'storescp', 'socat', 'openssl')].find((p) => p !== undefined);
}

const inNs = (ns: string, cmd: string, args: readonly string[], timeoutMs = 30_000): Promise<RunResult> =>
  run('ip', ['netns', 'exec', ns, cmd, ...args], { timeoutMs });

/** A TCP connect from inside `ns`: 'connected', 'refused' (RST) or 'timeout' (dropped). */
async function tcpConnect(ns: string, host: string, port: number): Promise<'connected' | 'refused' | 'timeout'> {
  const r = await inNs(ns, 'timeout', [String(dropTimeoutS), 'bash', '-c', `exec 3<>/dev/tcp/${host}/${port}`]);
  if (r.code === 0) return 'connected';
  return r.code === 124 ? 'timeout' : 'refused';
}

async function listening(ns: string, port: number): Promise<boolean> {
  return waitFor(async () => (await inNs(ns, 'ss', ['-Hltn', `sport = :${port}`])).stdout.trim() !== '', 15_000, 100);
}

async function edgectl(args: readonly string[]): Promise<RunResult> {
  return inNs(BOX, join(repoRoot, 'bin/edgectl'), args, 60_000);
}

async function counters(configFile: string): Promise<Map<string, number>> {
  const r = await edgectl(['segmentation', 'status', '--json', '--config', configFile]);
  if (r.code !== 0) throw new Error(`segmentation status failed: ${r.stderr}`);
  const parsed = JSON.parse(r.stdout) as { counters: Array<{ chain: string; comment: string; packets: number }> };
  return new Map(parsed.counters.map((c) => [`${c.chain}/${c.comment}`, c.packets]));
}

function findscuArgs(callingAe: string, host: string, port: number, tls?: { keyFile: string; certFile: string; caFile: string }): string[] {
  return [
    '-W',
    '-aet',
    callingAe,
    '-aec',
    'EDGE',
    '-to',
    String(dropTimeoutS),
    '-ta',
    '10',
    '-td',
    '10',
    ...(tls === undefined ? [] : ['+tls', tls.keyFile, tls.certFile, '+cf', tls.caFile]),
    '-k',
    'ScheduledProcedureStepSequence[0].Modality',
    '-k',
    'PatientName',
    host,
    String(port),
  ];
}

const why = missingPrecondition();
if (why !== undefined) {
  process.stderr.write(`segmentation.test.ts: skipped: ${why}\n`);
  test.skip(`segmentation with real packets in network namespaces (skipped: ${why})`, () => {});
} else {
  test.serial('segmentation with real packets in network namespaces', async (t) => {
    t.timeout(300_000);
    const started: Supervised[] = [];
    const site = await createSite((c) => {
      c['hl7'].listen = { host: boxOnRisSegment, port: ports.hl7 };
      c['hl7'].peers[0].addresses = [risHost];
      c['dicom'].tls = { host: boxOnModalitySegment, port: ports.dicomTls };
      c['dicom'].plain = { host: boxOnModalitySegment, port: ports.dicomPlain };
      delete c['admin'];
      for (const m of c['dicom'].modalities) m.addresses = [modalityHost];
      c['upstream'] = { pacs: { host: listedUpstream, port: ports.pacs, aeTitle: 'PACS', tls: false } };
      c['network'] = { ntpServers: ['10.231.4.1'], verifyResultFile: './verify.json', verifyCheckIntervalMs: 1000 };
    });
    const mr = site.modalities.find((m) => m.transport === 'plain')!;
    const ct = site.modalities.find((m) => m.transport === 'tls')!;
    const ctTls = { keyFile: ct.keyFile!, certFile: ct.certFile!, caFile: site.pki.caCert };
    t.teardown(async () => {
      for (const s of started) await s.stop('SIGTERM');
      await run('bash', [join(PEERS, 'netns/segments-down.sh'), P], { timeoutMs: 30_000 });
      await site.cleanup();
    });

    const up = await run('bash', [join(PEERS, 'netns/segments-up.sh'), P], { timeoutMs: 30_000 });
    t.is(up.code, 0, up.stderr);
    // The box must not route; turning forwarding on inside its namespace proves the ruleset stops it.
    t.is((await inNs(BOX, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1'])).code, 0);

    // A malformed peer address: an error naming the field, and nothing loaded.
    const badConfig = join(site.dir, 'bad.json');
    const good = JSON.parse(await readFile(site.configFile, 'utf8')) as Record<string, any>;
    const bad = structuredClone(good);
    bad['dicom'].modalities[1].addresses = ['10.231.1.300'];
    await writeFile(badConfig, JSON.stringify(bad));
    const refused = await edgectl(['segmentation', 'apply', '--config', badConfig]);
    t.is(refused.code, 1);
    t.regex(refused.stderr, /dicom\.modalities\[1\]\.addresses\[0\]/);
    t.is((await inNs(BOX, nftCommand, ['list', 'tables'])).stdout.trim(), '', 'no table loaded from an invalid config');

    // Peers that do not depend on the firewall: a PACS on the listed and the unlisted upstream address,
    // and a service on the office PC (the forwarding target).
    const pacs = new Supervised('ip', ['netns', 'exec', UP, 'storescp', '-aet', 'PACS', '-od', site.dir, String(ports.pacs)]);
    started.push(pacs);
    const office = new Supervised('ip', [
      'netns',
      'exec',
      OFFICE,
      'socat',
      `TCP-LISTEN:${ports.officeService},reuseaddr,fork`,
      'EXEC:/bin/true',
    ]);
    started.push(office);
    const daemon = new Supervised('ip', ['netns', 'exec', BOX, join(repoRoot, 'bin/edged'), '--config', site.configFile], {
      env: { ...process.env },
    });
    started.push(daemon);
    await daemon.waitForEvent('edged.ready', 60_000);
    t.true((await listening(UP, ports.pacs)) && (await listening(OFFICE, ports.officeService)), 'the peers listen');

    // Without the ruleset the network is open (so each check below can fail): the office PC reaches
    // the DICOM port, the box reaches the unlisted upstream, the modality host reaches the office PC
    // through the box.
    t.is(await tcpConnect(OFFICE, boxOnModalitySegment, ports.dicomPlain), 'connected', 'open before apply');
    t.is(await tcpConnect(BOX, unlistedUpstream, ports.pacs), 'connected', 'open before apply');
    t.is(await tcpConnect(MOD, officeHost, ports.officeService), 'connected', 'forwarding works before apply');

    const applied = await edgectl(['segmentation', 'apply', '--config', site.configFile]);
    t.is(applied.code, 0, applied.stderr + applied.stdout);
    t.log(applied.stdout.trim());
    const before = await counters(site.configFile);
    const verified = await edgectl(['segmentation', 'verify', '--config', site.configFile]);
    t.is(verified.code, 0, verified.stdout);

    // The allowlisted modality works, plain and TLS.
    const plainFind = await inNs(MOD, 'findscu', findscuArgs(mr.aeTitle, boxOnModalitySegment, ports.dicomPlain));
    t.is(plainFind.code, 0, plainFind.stderr);
    const image = join(site.dir, 'image');
    const gen = await run('bash', [join(PEERS, 'dicom/gen-dicom.sh'), image, '1', '64x64'], { timeoutMs: 60_000 });
    t.is(gen.code, 0, gen.stderr);
    const file = join(image, 'img00001.dcm');
    const stored = await inNs(MOD, 'storescu', [
      '-aet',
      mr.aeTitle,
      '-aec',
      'EDGE',
      '-to',
      String(dropTimeoutS),
      boxOnModalitySegment,
      String(ports.dicomPlain),
      file,
    ]);
    t.is(stored.code, 0, stored.stderr);
    const tlsFind = await inNs(MOD, 'findscu', findscuArgs(ct.aeTitle, boxOnModalitySegment, ports.dicomTls, ctTls));
    t.is(tlsFind.code, 0, tlsFind.stderr);
    // The RIS completes a mutual TLS handshake on the HL7 port.
    const risTls = await inNs(
      RIS,
      'openssl',
      [
        's_client',
        '-brief',
        '-verify_return_error',
        '-connect',
        `${boxOnRisSegment}:${ports.hl7}`,
        '-cert',
        site.ris.certFile,
        '-key',
        site.ris.keyFile,
        '-CAfile',
        site.pki.caCert,
      ],
      20_000,
    );
    t.is(risTls.code, 0, risTls.stderr);

    // The same tools from the office time out: dropped, not refused.
    const t0 = performance.now();
    const officeFind = await inNs(OFFICE, 'findscu', findscuArgs(mr.aeTitle, boxOnModalitySegment, ports.dicomPlain));
    t.not(officeFind.code, 0);
    t.true(performance.now() - t0 >= (dropTimeoutS - 0.5) * 1000, 'the office findscu failed by timeout, not by a refusal');
    const officeStore = await inNs(OFFICE, 'storescu', [
      '-aet',
      mr.aeTitle,
      '-aec',
      'EDGE',
      '-to',
      String(dropTimeoutS),
      boxOnModalitySegment,
      String(ports.dicomPlain),
      file,
    ]);
    t.not(officeStore.code, 0, 'storescu from the office fails');
    t.is(await tcpConnect(OFFICE, boxOnModalitySegment, ports.dicomTls), 'timeout');
    t.is(await tcpConnect(OFFICE, boxOnRisSegment, ports.hl7), 'timeout');
    // Each peer only at its own door.
    t.is(await tcpConnect(MOD, boxOnRisSegment, ports.hl7), 'timeout', 'the modality on the HL7 port is dropped');
    t.is(await tcpConnect(RIS, boxOnModalitySegment, ports.dicomPlain), 'timeout', 'the RIS on the DICOM port is dropped');
    // Egress only to the plan: the listed PACS answers, the unlisted address is unreachable.
    t.is(await tcpConnect(BOX, listedUpstream, ports.pacs), 'connected', 'the box reaches the listed PACS');
    t.is(await tcpConnect(BOX, unlistedUpstream, ports.pacs), 'timeout', 'the box cannot reach an unlisted upstream');
    // edged's own outbound leg passes: the stored image reaches the PACS on the listed address.
    t.true(
      await waitFor(async () => (await readdir(site.dir)).some((f) => /^[A-Z]{2}\./.test(f)), 60_000),
      'the image was forwarded to the listed PACS',
    );
    // No forwarding between segments, whatever the kernel's ip_forward says.
    t.is(await tcpConnect(MOD, officeHost, ports.officeService), 'timeout', 'forwarding through the box fails');

    const after = await counters(site.configFile);
    for (const rule of [
      'input/dicom_plain: source not allowed',
      'input/dicom_tls: source not allowed',
      'input/hl7: source not allowed',
      'output/output: destination not in the plan',
      'forward/forward: the box does not route between segments',
      'input/dicom_plain',
      'output/pacs',
    ]) {
      t.true((after.get(rule) ?? 0) > (before.get(rule) ?? 0), `counter of ${rule} grew (${before.get(rule)} → ${after.get(rule)})`);
    }
    const status = await edgectl(['segmentation', 'status', '--config', site.configFile]);
    t.regex(status.stdout, /dicom_plain: source not allowed/);

    // Drift: a rule added by hand, then the table removed.
    t.is((await inNs(BOX, nftCommand, ['insert', 'rule', 'inet', 'imaging_edge', 'input', 'tcp', 'dport', '22', 'accept'])).code, 0);
    const resultFile = join(site.dir, 'verify.json');
    const drifted = await edgectl(['segmentation', 'verify', '--config', site.configFile, '--result', resultFile]);
    t.is(drifted.code, 1);
    t.regex(drifted.stdout, /loaded, not planned: tcp dport 22 accept/);
    t.true((JSON.parse(await readFile(resultFile, 'utf8')) as { drift: boolean }).drift);
    // edged, unprivileged, learns of it from the result file and raises the alarm.
    const alarm = await daemon.waitForEvent('segmentation.drift', 15_000);
    t.is(alarm['unexpected'], 1);
    t.is((await inNs(BOX, nftCommand, ['delete', 'table', 'inet', 'imaging_edge'])).code, 0);
    const absent = await edgectl(['segmentation', 'verify', '--config', site.configFile]);
    t.is(absent.code, 1);
    t.regex(absent.stdout, /not loaded/);

    // Defense in depth: with the ruleset flushed the office PC reaches the port, and edged refuses it.
    const flushedFind = await inNs(OFFICE, 'findscu', ['-v', ...findscuArgs(mr.aeTitle, boxOnModalitySegment, ports.dicomPlain)]);
    t.not(flushedFind.code, 0);
    // No peer of the plain port may connect from the office address: edged closes the connection at accept,
    // before any association (the same rule as the firewall, one layer up).
    t.regex(
      flushedFind.stdout + flushedFind.stderr,
      /Peer aborted Association \(or never connected\)|Association Rejected/,
      'the office host is refused',
    );
    t.true(
      daemon.lines.some((l) => l.includes('"event":"dicom.connection-refused"') && l.includes('source address not allowed')),
      'edged refused the office host by its source address',
    );
    const modStillFinds = await inNs(MOD, 'findscu', findscuArgs(mr.aeTitle, boxOnModalitySegment, ports.dicomPlain));
    t.is(modStillFinds.code, 0, modStillFinds.stderr);

    const reapplied = await edgectl(['segmentation', 'apply', '--config', site.configFile, '--result', resultFile]);
    t.is(reapplied.code, 0, reapplied.stderr);
    await daemon.waitForLine(
      (l) => l.includes('"event":"segmentation.verified"') && daemon.lines.some((x) => x.includes('"event":"segmentation.drift"')),
      15_000,
    );

    t.is(await daemon.stop('SIGTERM'), 0, 'edged stops cleanly on the first SIGTERM');

    // The alarm and its all-clear are in the audit chain.
    const store = await openStore({
      dataDir: join(site.dir, 'data'),
      keySource: new FileKeySource(join(site.dir, 'keys', 'data.key')),
      replayWindowMs: 3_600_000,
      logger: silentLogger,
    });
    const types: Array<{ type: string; eventId: string; outcome: number }> = [];
    try {
      for await (const r of store.audit.read(1)) {
        const e = (JSON.parse(r.line) as AuditRecord).event;
        if (e.type.startsWith('network.')) types.push({ type: e.type, eventId: e.eventId, outcome: e.outcome });
      }
    } finally {
      await store.close();
    }
    t.deepEqual(types, [
      { type: 'network.segmentation-drift', eventId: 'SecurityAlert', outcome: 8 },
      { type: 'network.segmentation-restored', eventId: 'ApplicationActivity', outcome: 0 },
    ]);
  });

  // The golden rulesets (IPv6, interfaces, long wrapped sets) load, and nft lists them back exactly as
  // rendered: the drift comparison rests on that.
  test.serial('the golden rulesets load in nft and list back as rendered', async (t) => {
    const ns = `${P}-gold`;
    t.is((await run('ip', ['netns', 'add', ns])).code, 0);
    t.teardown(() => run('ip', ['netns', 'del', ns]).then(() => undefined));
    for (const name of ['small-site', 'fifty-modality-site']) {
      const file = join(repoRoot, 'test/fixtures/segmentation', `${name}.nft`);
      const loaded = await inNs(ns, nftCommand, ['-f', file]);
      t.is(loaded.code, 0, loaded.stderr);
      const listed = await inNs(ns, nftCommand, ['-s', 'list', 'table', 'inet', 'imaging_edge']);
      const rendered = await readFile(file, 'utf8');
      t.like(compareTables(rendered.slice(rendered.indexOf('table inet imaging_edge {')), listed.stdout), { drift: false }, name);
    }
  });
}
