// Sign-ins beside clinical load: the HL7 ACK p99 on 8 MLLP/TLS connections while bursts of 20 sign-ins
// (20 accounts at once, each a new TLS connection and one argon2id verification) hit the admin
// listener, beside the same load without them, in alternating phases of the same run; and argon2id's
// time per hash on this machine (Node's crypto.argon2 at the box's parameters).
//
// Usage: node bench/access-bench.ts [--phase-ms 8000] [--phases 2] [--burst-every-ms 2000] [--out FILE.json]
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Argon2idParams, hashPassword } from '../daemon/core/password-hash.ts';
import { controlRequest } from '../provisioning/control-client.ts';
import { AdminClient } from '../test/support/admin-client.ts';
import { createSite, Daemon } from '../test/support/site.ts';
import { benchConfig } from './bench-site.ts';
import { runLoad, type LoadResult, type Site } from './hl7-load.ts';
import { median } from './report.ts';
import { localToday } from './worklist-plan.ts';

const BURST = 20;
const CONNECTIONS = 8;

const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    'phase-ms': { type: 'string', default: '8000' },
    phases: { type: 'string', default: '2' },
    'burst-every-ms': { type: 'string', default: '2000' },
    hashes: { type: 'string', default: '20' },
  },
});
const phaseMs = Number(values['phase-ms']);
const phases = Number(values.phases);
const burstEveryMs = Number(values['burst-every-ms']);
const log = (msg: string): void => {
  process.stderr.write(`[access ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
};
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// argon2id per hash, in this process (the daemon runs the same call on its thread pool).
const hashMs: number[] = [];
for (let i = 0; i < Number(values.hashes); i++) {
  const t0 = performance.now();
  await hashPassword(`bench password number ${i}`);
  hashMs.push(performance.now() - t0);
}
log(`argon2id m=${Argon2idParams.m} KiB t=${Argon2idParams.t} p=${Argon2idParams.p}: median ${median(hashMs).toFixed(1)} ms per hash`);

const site = await createSite((config) => {
  Object.assign(config, benchConfig(config as Parameters<typeof benchConfig>[0]));
});
const info = JSON.parse(readFileSync(join(site.dir, 'site.json'), 'utf8')) as Site;
let daemon: Daemon | undefined;
try {
  daemon = await Daemon.start(site.configFile);
  const d = daemon;
  const box: Site = { ...info, box: { ...info.box, hl7Port: d.ports.hl7 } };
  const socket = join(site.dir, 'data', 'control.sock');
  const accounts: { username: string; password: string }[] = [];
  for (let i = 0; i < BURST; i++) {
    const username = `bench${i}`;
    const r = await controlRequest(socket, 'POST', '/v1/users/add', { username, role: 'viewer', consoleUser: 'bench' }, 30_000);
    if (r.status !== 200) throw new Error(`users/add: ${JSON.stringify(r.body)}`);
    accounts.push({ username, password: (r.body as { oneTimePassword: string }).oneTimePassword });
  }
  const today = localToday();
  const nonce = `A${Date.now().toString(36).slice(-5).toUpperCase()}`;
  let from = 0;
  const load = async (label: string): Promise<LoadResult> => {
    const r = await runLoad({
      site: box,
      today,
      from,
      count: 1_000_000,
      connections: CONNECTIONS,
      durationMs: phaseMs,
      nonce: `${nonce}${label[0]}`,
      label,
    });
    from += r.sent + 1;
    if (r.errors > 0) throw new Error(`${label}: the box refused an order: ${r.firstError ?? ''}`);
    return r;
  };
  const signInMs: number[] = [];
  let signInFailures = 0;
  const burst = async (): Promise<void> => {
    await Promise.all(
      accounts.map(async (a) => {
        const client = await AdminClient.connect(d.ports.admin, site.pki.caCert);
        const t0 = performance.now();
        const r = await client.signIn(a.username, a.password);
        signInMs.push(performance.now() - t0);
        if (r.status !== 200) signInFailures++;
        client.close();
      }),
    );
  };
  log('warm-up');
  await load('warm-up');
  const quiet: LoadResult[] = [];
  const withBursts: LoadResult[] = [];
  let bursts = 0;
  for (let p = 0; p < phases; p++) {
    quiet.push(await load('quiet'));
    log(`quiet: ${quiet.at(-1)!.accepted} orders, ACK p99 ${quiet.at(-1)!.latencyMs.p99.toFixed(1)} ms`);
    let running = true;
    const burster = (async () => {
      await sleep(500);
      while (running) {
        const started = performance.now();
        await burst();
        bursts++;
        await sleep(Math.max(0, burstEveryMs - (performance.now() - started)));
      }
    })();
    withBursts.push(await load('sign-ins'));
    running = false;
    await burster;
    log(`with sign-ins: ${withBursts.at(-1)!.accepted} orders, ACK p99 ${withBursts.at(-1)!.latencyMs.p99.toFixed(1)} ms`);
  }
  const p99Quiet = median(quiet.map((r) => r.latencyMs.p99));
  const p99Burst = median(withBursts.map((r) => r.latencyMs.p99));
  const result = {
    argon2id: { params: Argon2idParams, msPerHashMedian: median(hashMs), samples: hashMs.length },
    hl7: {
      connections: CONNECTIONS,
      phaseMs,
      phases,
      ackP99MsQuiet: p99Quiet,
      ackP99MsWithSignIns: p99Burst,
      ratio: p99Burst / p99Quiet,
      target: 1.2,
      ackP50MsQuiet: median(quiet.map((r) => r.latencyMs.p50)),
      ackP50MsWithSignIns: median(withBursts.map((r) => r.latencyMs.p50)),
      ordersPerSecondQuiet: median(quiet.map((r) => r.messagesPerSecond)),
      ordersPerSecondWithSignIns: median(withBursts.map((r) => r.messagesPerSecond)),
    },
    signIns: { bursts, perBurst: BURST, burstEveryMs, failures: signInFailures, msMedian: median(signInMs), msMax: Math.max(...signInMs) },
  };
  log(
    `HL7 ACK p99: ${p99Quiet.toFixed(1)} ms quiet, ${p99Burst.toFixed(1)} ms with ${bursts} burst(s) of ${BURST} sign-ins: ×${result.hl7.ratio.toFixed(2)} (target ≤ 1.2); sign-in median ${result.signIns.msMedian.toFixed(0)} ms`,
  );
  const text = JSON.stringify(result, null, 2);
  console.log(text);
  if (values.out !== undefined) writeFileSync(values.out, `${text}\n`);
  if (signInFailures > 0) process.exitCode = 1;
} finally {
  await daemon?.stop();
  await site.cleanup();
}
