// kill -9 during store-and-forward (issue 3): MPPS updates stream in while the outbox sends status to the
// RIS; the daemon is killed at a random moment, restarted, and so on. Every MPPS the box acknowledged
// must have its status message at the RIS in the end (in order per order); duplicates are reported.
// CYCLES defaults to 4 (fast); MPPS_CRASH_CYCLES=20 runs the long version.
import { readFile, writeFile } from 'node:fs/promises';
import test from 'ava';
import { MllpTlsClient, msa, ormNew } from '../support/hl7-peers.ts';
import { RisReceiver, createAttributes, finalAttributes, sendMpps, uid, type MppsOp } from '../support/mpps-peers.ts';
import { seededRandom } from '../support/seeded-random.ts';
import { Daemon, createSite } from '../support/site.ts';
import { eventually } from '../support/wait.ts';

const CYCLES = Number(process.env['MPPS_CRASH_CYCLES'] ?? 4);
const PER_CYCLE = 40;
type Site = Awaited<ReturnType<typeof createSite>>;
let site: Site;
let daemon: Daemon | undefined;
let ris: RisReceiver;

test.before(async () => {
  site = await createSite((c) => {
    c['outbox'] = { initialDelayMs: 100, maxDelayMs: 500 };
  });
  ris = await RisReceiver.create(site.dir, { certFile: site.ris.certFile, keyFile: site.ris.keyFile, caFile: site.pki.caCert });
  const config = JSON.parse(await readFile(site.configFile, 'utf8'));
  config.upstream = {
    ris: {
      host: '127.0.0.1',
      port: ris.port,
      tls: true,
      receivingApplication: 'RIS',
      receivingFacility: 'GENHOSP',
      ackTimeoutMs: 3000,
      connectTimeoutMs: 2000,
      batchSize: 5,
    },
  };
  await writeFile(site.configFile, JSON.stringify(config, null, 2));
  await ris.start();
});

test.after.always(async () => {
  await daemon?.stop();
  await ris?.stop();
  await site?.cleanup();
});

test(`kill -9 at random moments in ${CYCLES} cycles loses no acknowledged MPPS status`, async (t) => {
  t.timeout(CYCLES * 30_000 + 60_000);
  const random = seededRandom(t);
  daemon = await Daemon.start(site.configFile);
  const client = await MllpTlsClient.connect(daemon.ports.hl7, {
    certFile: site.ris.certFile,
    keyFile: site.ris.keyFile,
    caFile: site.pki.caCert,
  });
  for (let n = 1; n <= CYCLES * PER_CYCLE; n++) if (msa(await client.send(ormNew(n))) !== 'AA') throw new Error(`order ${n} not accepted`);
  client.close();

  /** placer → statuses the box acknowledged (IP after a successful N-CREATE, CM after N-SET). */
  const acked = new Map<string, string[]>();
  let killedWithUnacked = 0;
  for (let c = 0; c < CYCLES; c++) {
    if (daemon === undefined) daemon = await Daemon.start(site.configFile);
    const d: Daemon = daemon;
    const ops: MppsOp[] = [];
    const placerOf = new Map<string, number>();
    for (let i = 1; i <= PER_CYCLE; i++) {
      const n = c * PER_CYCLE + i;
      const u = uid();
      placerOf.set(u, n);
      ops.push(
        { op: 'create', sopInstanceUid: u, attributes: createAttributes(n) },
        { op: 'set', sopInstanceUid: u, attributes: finalAttributes('COMPLETED') },
      );
    }
    const sending = sendMpps({ port: d.ports.dicomPlain, callingAeTitle: 'MR01', calledAeTitle: 'EDGE', timeoutMs: 5000 }, ops);
    await new Promise((r) => setTimeout(r, 300 + random.int(1200)));
    await d.kill9();
    daemon = undefined;
    const { results } = await sending;
    results.forEach((r, i) => {
      if (r.status !== 0) return;
      const o = ops[i]!;
      const n = placerOf.get(o.sopInstanceUid)!;
      acked.set(`PLC${n}`, [...(acked.get(`PLC${n}`) ?? []), o.op === 'create' ? 'IP' : 'CM']);
    });
    if (results.length < ops.length) killedWithUnacked++;
  }
  daemon = await Daemon.start(site.configFile);
  const expected = [...acked.values()].reduce((s, v) => s + v.length, 0);
  const msgs = await eventually(
    async () => {
      const m = await ris.messages();
      const got = new Set(m.map((x) => `${x.placer}|${x.status}`));
      const missing = [...acked].flatMap(([p, ss]) => ss.filter((s) => !got.has(`${p}|${s}`)));
      return missing.length === 0 ? m : undefined;
    },
    30_000,
    `status messages for ${expected} acknowledged MPPS operations`,
  );
  for (const [placer, statuses] of acked) {
    const seen = msgs.filter((m) => m.placer === placer).map((m) => m.status);
    const distinct = seen.filter((s, i) => i === 0 || s !== seen[i - 1]);
    t.deepEqual(distinct.slice(0, statuses.length), statuses, `${placer} in order`);
  }
  const duplicates = msgs.length - new Set(msgs.map((m) => m.controlId)).size;
  t.log(
    `${CYCLES} kills (${killedWithUnacked} mid-association); ${expected} acknowledged MPPS operations; ${msgs.length} messages at the RIS, ${duplicates} duplicate(s) (same MSH-10 re-sent after a kill)`,
  );
  t.true(expected > 0);
});
