// A full disk and a stuck daemon, against the running daemon with real peers. Disk: the data directory on
// a real 20 MB tmpfs, filled until the box refuses (HL7 AE 207, C-STORE 0xA700) and says why in
// `edgectl status`; once the filler is gone it serves again by itself, without a restart, and loses no
// acknowledged order. Watchdog: with NOTIFY_SOCKET and WATCHDOG_USEC set as systemd sets them, WATCHDOG=1
// arrives periodically, and none arrives while the process cannot run.
import test from 'ava';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findscu, storescu } from '../support/dicom-peers.ts';
import { MllpTlsClient, msa, ormNew } from '../support/hl7-peers.ts';
import { PEERS } from '../support/paths.ts';
import { needsTmpfs, whenMet } from '../support/preconditions.ts';
import { run } from '../support/processes.ts';
import { startNotifySocket, watchdogPings } from '../support/notify-socket.ts';
import { Daemon, createSite, repoRoot, type SiteInfo } from '../support/site.ts';
import { servingProblem } from '../support/still-serving.ts';

/** After the filler is deleted the box must take a real RIS order and a C-STORE within this. */
const RECOVERY_LIMIT_MS = 30_000;

let work = '';

const withTmpfs = whenMet(needsTmpfs()).serial;

test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'edge-disk-'));
  const r = await run('bash', [`${PEERS}/dicom/gen-dicom.sh`, join(work, 'ct'), '2', '64x64'], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(r.stderr);
});

test.after.always(async () => {
  if (work !== '') await rm(work, { recursive: true, force: true });
});

async function storeStatus(site: SiteInfo, port: number, file: string): Promise<string> {
  const r = await storescu(site, port, [file]);
  return r.statuses[0] ?? `no response (${(r.stdout + r.stderr).slice(-300)})`;
}

async function status(site: SiteInfo): Promise<Record<string, any>> {
  const r = await run(join(repoRoot, 'bin/edgectl'), ['status', '--config', site.configFile, '--json'], { timeoutMs: 20_000 });
  if (r.code !== 0) throw new Error(`edgectl status: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, any>;
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

withTmpfs(
  'disk full on a 20 MB tmpfs: AE 207 and 0xA700 with the reason in status; once space returns it serves again by itself and loses no acknowledged order',
  async (t) => {
    t.timeout(240_000);
    const mnt = await mkdtemp(join(work, 'tmpfs-'));
    t.is((await run('mount', ['-t', 'tmpfs', '-o', 'size=20m,mode=0700', 'tmpfs', mnt])).code, 0);
    t.teardown(async () => {
      await run('umount', ['-l', mnt]);
    });
    const site = await createSite((c) => {
      c['dataDir'] = join(mnt, 'data');
      c['dicom'].storage = { spool: { minFreeBytes: 0 } };
    });
    t.teardown(() => site.cleanup());
    const daemon = await Daemon.start(site.configFile);
    t.teardown(async () => {
      await daemon.kill9();
    });
    const ct = (await readdir(join(work, 'ct'))).map((f) => join(work, 'ct', f)).sort();
    const ris = { certFile: site.ris.certFile, keyFile: site.ris.keyFile, caFile: site.pki.caCert };
    const acknowledged: number[] = [];
    let n = 40_000;
    const sendOrder = async (client: MllpTlsClient): Promise<string | undefined> => {
      const ack = await client.send(ormNew(++n));
      if (msa(ack) === 'AA') acknowledged.push(n);
      return ack;
    };

    let client = await MllpTlsClient.connect(daemon.ports.hl7, ris);
    for (let i = 0; i < 10; i++) t.is(msa(await sendOrder(client)), 'AA');

    // Fill the file system to the last block, then write orders until the store refuses one.
    const filler = join(mnt, 'filler');
    await run('dd', ['if=/dev/zero', `of=${filler}`, 'bs=64k'], { timeoutMs: 60_000 });
    let refusal: string | undefined;
    for (let i = 0; i < 500 && refusal === undefined; i++) {
      const ack = await sendOrder(client);
      if (msa(ack) !== 'AA') refusal = ack;
    }
    t.truthy(refusal, 'the store never refused an order on a full disk');
    t.is(msa(refusal), 'AE');
    t.regex(refusal ?? '', /ERR\|\^\^\^207&/);
    t.is(await storeStatus(site, daemon.ports.dicomTls, ct[0]!), 'Refused: OutOfResources');
    const degraded = await status(site);
    t.log('status while full:', JSON.stringify(degraded['store']));
    t.is(degraded['store']?.state, 'degraded');
    t.is(degraded['store']?.code, 'EDGE_STORE_WRITE_FAILED');
    t.regex(String(degraded['store']?.reason), /ENOSPC|no space/i);
    const plain = await run(join(repoRoot, 'bin/edgectl'), ['status', '--config', site.configFile], { timeoutMs: 20_000 });
    t.regex(plain.stdout, /^store\s+.*"degraded".*No space left on device/m, 'edgectl status does not say why');
    t.true(daemon.process.events('store.degraded').length > 0, 'no store.degraded log line');

    // Space returns; nothing restarts the daemon.
    await rm(filler);
    client.close();
    const freedAt = performance.now();
    let problem: string | undefined = 'not probed';
    while (performance.now() - freedAt < RECOVERY_LIMIT_MS) {
      problem = await servingProblem(site, daemon, 10_000);
      if (problem === undefined) break;
      await sleep(500);
    }
    const recoveredMs = Math.round(performance.now() - freedAt);
    t.is(problem, undefined, `still not serving ${recoveredMs} ms after space returned`);
    t.log(`serving again ${recoveredMs} ms after the filler was deleted (limit ${RECOVERY_LIMIT_MS} ms)`);
    t.is(await storeStatus(site, daemon.ports.dicomTls, ct[1]!), 'Success');
    client = await MllpTlsClient.connect(daemon.ports.hl7, ris);
    for (let i = 0; i < 5; i++) t.is(msa(await sendOrder(client)), 'AA');
    client.close();
    const after = await status(site);
    t.is(after['store']?.state, 'ok');
    t.true(daemon.process.events('store.recovered').length > 0, 'no store.recovered log line');
    t.false(daemon.process.exited);

    // Every acknowledged order is on the worklist, now and after a clean restart.
    const ct01 = site.modalities.find((m) => m.aeTitle === 'CT01')!;
    const onWorklist = async (d: Daemon): Promise<Set<string>> => {
      const r = await findscu({
        port: d.ports.dicomTls,
        callingAe: 'CT01',
        tls: { certFile: ct01.certFile!, keyFile: ct01.keyFile!, caFile: site.pki.caCert },
        keys: ['AccessionNumber', 'ScheduledProcedureStepSequence[0].Modality=CT'],
      });
      return new Set(r.responses.map((x) => x['AccessionNumber']!));
    };
    const missing = (found: Set<string>): number[] => acknowledged.filter((a) => !found.has(`ACC${a}`));
    t.deepEqual(missing(await onWorklist(daemon)), []);
    t.is(await daemon.stop(), 0);
    const again = await Daemon.start(site.configFile);
    t.teardown(async () => {
      await again.kill9();
    });
    t.deepEqual(missing(await onWorklist(again)), []);
    t.is(await servingProblem(site, again, 10_000), undefined);
    t.is(await again.stop(), 0);
    t.log(`${acknowledged.length} acknowledged orders, all on the worklist`);
  },
);

test.serial('watchdog: WATCHDOG=1 every half WATCHDOG_USEC while healthy, none while the process cannot run, again after', async (t) => {
  t.timeout(120_000);
  const sock = join(work, 'notify.sock');
  const receiver = await startNotifySocket(sock);
  t.teardown(async () => {
    await receiver.stop('SIGTERM');
  });
  const site = await createSite();
  t.teardown(() => site.cleanup());
  const watchdogMs = 2000;
  const daemon = await Daemon.start(site.configFile, { env: { NOTIFY_SOCKET: sock, WATCHDOG_USEC: String(watchdogMs * 1000) } });
  t.teardown(async () => {
    await daemon.kill9();
  });
  await receiver.waitForLine((l) => / READY=1/.test(l), 15_000);
  const pings = (): number[] => watchdogPings(receiver);

  const healthyFrom = Date.now();
  await sleep(4 * watchdogMs);
  const healthy = pings().filter((at) => at >= healthyFrom);
  t.true(healthy.length >= 5, `${healthy.length} pings in ${4 * watchdogMs} ms`);
  const gaps = healthy.slice(1).map((at, i) => at - healthy[i]!);
  t.true(Math.max(...gaps) < watchdogMs, `a gap of ${Math.max(...gaps)} ms between pings (WatchdogSec ${watchdogMs} ms)`);

  // A process that cannot run must not be kept alive by pings sent on its behalf.
  process.kill(daemon.pid, 'SIGSTOP');
  const stoppedAt = Date.now();
  await sleep(3 * watchdogMs);
  const during = pings().filter((at) => at > stoppedAt + 300 && at < Date.now());
  process.kill(daemon.pid, 'SIGCONT');
  t.deepEqual(during, [], 'pings arrived while the daemon was stopped');
  const resumedAt = Date.now();
  await sleep(2 * watchdogMs);
  t.true(
    pings().some((at) => at > resumedAt),
    'no ping after the daemon ran again',
  );
  t.is(await servingProblem(site, daemon, 10_000), undefined);
  t.is(await daemon.stop(), 0);
});
