// A PACS that refuses one study for good, against the running daemon: Orthanc (the real PACS) with a Lua
// ReceivedInstanceFilter that raises an error for that study, so Orthanc answers its C-STORE with 0xA700
// and takes every other study. The other studies must reach Orthanc promptly while the stuck one is
// retried, and the stuck one must become a dead letter with Orthanc's reason after its bound.
import test from 'ava';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Orthanc, startOrthanc } from '../support/orthanc.ts';
import { waitFor } from '../support/wait.ts';
import { PEERS } from '../support/paths.ts';
import { storescu } from '../support/dicom-peers.ts';
import { freePort, run } from '../support/processes.ts';
import { Daemon, createSite, repoRoot } from '../support/site.ts';
import { servingProblem } from '../support/still-serving.ts';

/** Other studies sent while the stuck one is refused must be in Orthanc within this. */
const PROMPT_MS = 5000;
/** The bound configured below: the stuck instance is a dead letter at its sixth refusal. */
const REFUSALS = 6;

let work = '';

test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'edge-outbox-'));
  for (const [dir, count, perStudy] of [
    ['stuck', '1', '1'],
    ['others', '6', '3'],
  ] as const) {
    const r = await run('bash', [`${PEERS}/dicom/gen-dicom.sh`, join(work, dir), count, '32x32'], {
      timeoutMs: 60_000,
      env: { ...process.env, PER_STUDY: perStudy },
    });
    if (r.code !== 0) throw new Error(r.stderr);
  }
});

test.after.always(async () => {
  if (work !== '') await rm(work, { recursive: true, force: true });
});

async function files(dir: string): Promise<string[]> {
  return (await readdir(join(work, dir))).map((f) => join(work, dir, f)).sort();
}

async function tag(file: string, keyword: string): Promise<string> {
  const r = await run('dcmdump', ['+P', keyword, file]);
  const m = /\[([^\]]*)\]/.exec(r.stdout);
  if (m === null) throw new Error(`no ${keyword} in ${file}: ${r.stderr}`);
  return m[1]!;
}

test.serial(
  'a PACS answering 0xA700 for one study: the other studies arrive promptly, the stuck one becomes a dead letter with the reason',
  async (t) => {
    t.timeout(150_000);
    const [stuck] = await files('stuck');
    const others = await files('others');
    const stuckStudy = await tag(stuck!, 'StudyInstanceUID');
    const lua = join(work, 'refuse-one-study.lua');
    await writeFile(
      lua,
      `function ReceivedInstanceFilter(dicom, origin, info)\n  if dicom.StudyInstanceUID == '${stuckStudy}' then error('this study is refused') end\n  return true\nend\n`,
    );
    const http = await freePort();
    const dicom = await freePort();
    const orthanc: Orthanc = await startOrthanc(join(work, 'orthanc'), http, dicom, { luaScript: lua });
    t.teardown(() => orthanc.stop());
    const site = await createSite((c) => {
      c['upstream'] = {
        pacs: { host: '127.0.0.1', port: dicom, aeTitle: 'ORTHANC', tls: false, connectTimeoutMs: 1000, batchSize: 10, maxAssociations: 2 },
      };
      // Back-off 1, 2, 4, 8, 16 s without jitter: the sixth refusal comes about 31 s after the first.
      c['outbox'] = { initialDelayMs: 1000, maxDelayMs: 30_000, jitterPercent: 0, deadLetterAfterRefusals: REFUSALS };
    });
    t.teardown(() => site.cleanup());
    const daemon = await Daemon.start(site.configFile);
    t.teardown(async () => {
      await daemon.kill9();
    });

    t.is((await storescu(site, daemon.ports.dicomTls, [stuck!])).stored.size, 1, 'the box acknowledged the stuck instance');
    const refusals = (): number => daemon.process.events('forward.status').filter((e) => e['status'] === '0xa700').length;
    t.true(await waitFor(async () => refusals() >= REFUSALS - 1, 60_000), `only ${refusals()} refusals seen`);

    // Stuck for a while now: other studies must not wait for it.
    const want = await Promise.all(others.map((f) => tag(f, 'SOPInstanceUID')));
    const sentAt = performance.now();
    t.is((await storescu(site, daemon.ports.dicomTls, others)).stored.size, others.length);
    const arrived = await waitFor(async () => {
      const have = await orthanc.sopInstanceUids();
      return want.every((u) => have.has(u));
    }, 60_000);
    const latencyMs = Math.round(performance.now() - sentAt);
    t.true(arrived, 'the other studies never reached Orthanc');
    t.true(
      latencyMs <= PROMPT_MS,
      `the other studies took ${latencyMs} ms to reach Orthanc (limit ${PROMPT_MS} ms) behind a study the PACS refuses`,
    );
    t.log(
      `${others.length} instances of 2 other studies in Orthanc ${latencyMs} ms after they were sent (limit ${PROMPT_MS} ms), after ${refusals()} refusals of the stuck one`,
    );

    // The stuck one: a dead letter after its bound, with Orthanc's answer as the reason.
    const dead = async (): Promise<Array<Record<string, any>>> => {
      const r = await run(join(repoRoot, 'bin/edgectl'), ['queue', 'dead', '--config', site.configFile, '--json'], { timeoutMs: 20_000 });
      return r.code === 0 ? (JSON.parse(r.stdout) as { deadLetters: Array<Record<string, any>> }).deadLetters : [];
    };
    t.true(await waitFor(async () => (await dead()).length > 0, 60_000), 'the stuck instance never became a dead letter');
    const letters = await dead();
    t.is(letters.length, 1);
    t.is(letters[0]?.['destination'], 'pacs');
    t.is(letters[0]?.['reason']?.code, 'EDGE_STORE_SCU_REFUSED');
    t.is(letters[0]?.['reason']?.peerStatus, '0xa700');
    t.regex(String(letters[0]?.['reason']?.message), /PACS answered 0xa700.*dead letter after 6 refusals/);
    t.is(refusals(), REFUSALS, 'attempted again after it became a dead letter');
    t.true(daemon.process.events('outbox.dead-lettered').length === 1);
    const queues = await run(join(repoRoot, 'bin/edgectl'), ['queue', 'list', '--config', site.configFile, '--json'], {
      timeoutMs: 20_000,
    });
    const pacs = (JSON.parse(queues.stdout) as { destinations: Array<Record<string, any>> }).destinations.find(
      (d) => d['destination'] === 'pacs',
    );
    t.is(pacs?.['queued'], 0);
    t.is(pacs?.['deadLetters'], 1);
    t.false((await orthanc.sopInstanceUids()).has(await tag(stuck!, 'SOPInstanceUID')));
    t.is(await servingProblem(site, daemon, 10_000), undefined);
    t.is(await daemon.stop(), 0);
  },
);
