// Segmentation benchmark (root; network namespaces). Targets: render + nft -c + nft -f of a site with
// 50 modalities and 4 upstreams < 1 s; connection setup for an allowed modality with the ruleset loaded
// ÷ without it ≤ 1.05. Every namespace address is used only inside a namespace (ip netns exec).
// Prints one JSON line. Env: SEG_BENCH_APPLIES (20), SEG_BENCH_CONNECTS (500), SEG_BENCH_ECHOES (100),
// SEG_BENCH_BLOCKS (4: alternating without/with the ruleset, so drift of the machine's load cancels).
import { connect } from 'node:net';
import { join } from 'node:path';
import { loadConfig } from '../daemon/config/index.ts';
import { checkAndLoad, nftCommand } from '../daemon/security/nft-client.ts';
import { buildSegmentationPlan } from '../daemon/security/segmentation-plan.ts';
import { renderFlushScript, renderLoadScript } from '../daemon/security/segmentation-ruleset.ts';
import { PEERS } from '../test/support/paths.ts';
import { Supervised, run } from '../test/support/processes.ts';
import { createSite, repoRoot } from '../test/support/site.ts';
import { fiftyModalitySite } from '../test/support/segmentation-sites.ts';

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const node = process.execPath;
const self = import.meta.filename;
const env = (name: string, fallback: number): number => Number(process.env[name] ?? fallback);

// Child modes, run inside a namespace by the parent.
if (process.argv[2] === '--apply-loop') {
  const times: number[] = [];
  for (let i = 0; i < Number(process.argv[3]); i++) {
    const t0 = performance.now();
    const r = buildSegmentationPlan(fiftyModalitySite());
    if (!r.ok) throw new Error('the 50-modality site has problems');
    await checkAndLoad(renderLoadScript(r.plan));
    times.push(performance.now() - t0);
  }
  process.stdout.write(JSON.stringify(times));
  process.exit(0);
}
if (process.argv[2] === '--connect-loop') {
  const [host = '', port = '0', n = '0'] = process.argv.slice(3);
  const times: number[] = [];
  for (let i = 0; i < Number(n); i++) {
    const t0 = performance.now();
    await new Promise<void>((resolve, reject) => {
      const s = connect({ host, port: Number(port), timeout: 5000 });
      s.once('connect', () => {
        times.push(performance.now() - t0);
        s.destroy();
        resolve();
      });
      s.once('timeout', () => reject(new Error('connect timed out')));
      s.once('error', reject);
    });
  }
  process.stdout.write(JSON.stringify(times));
  process.exit(0);
}

if (process.getuid?.() !== 0 || !nftCommand.startsWith('/')) {
  console.error('segmentation bench: needs root and nftables (apt-get install nftables)');
  process.exit(1);
}
const P = `sb${process.pid % 100000}`;
const [BOX, MOD] = [`${P}-box`, `${P}-mod`];
const inNs = (ns: string, cmd: string, args: readonly string[], timeoutMs = 600_000) =>
  run('ip', ['netns', 'exec', ns, cmd, ...args], { timeoutMs });
const out: Record<string, unknown> = {};
const started: Supervised[] = [];
const site = await createSite((c) => {
  c['hl7'].listen = { host: '10.231.2.1', port: 2575 };
  c['hl7'].peers[0].addresses = ['10.231.2.10'];
  c['dicom'].tls = { host: '10.231.1.1', port: 2762 };
  c['dicom'].plain = { host: '10.231.1.1', port: 11112 };
  for (const m of c['dicom'].modalities) m.addresses = ['10.231.1.10'];
});
try {
  const up = await run('bash', [join(PEERS, 'netns/segments-up.sh'), P]);
  if (up.code !== 0) throw new Error(up.stderr);

  // 1. Render + check + apply, 50 modalities and 4 upstreams (RIS, PACS, two syslog collectors).
  const applies = await inNs(BOX, node, [self, '--apply-loop', String(env('SEG_BENCH_APPLIES', 20))]);
  if (applies.code !== 0) throw new Error(applies.stderr);
  const applyMs = JSON.parse(applies.stdout) as number[];
  out['applyFiftyModalitiesMedianMs'] = Number(median(applyMs).toFixed(1));
  out['applyFiftyModalitiesMaxMs'] = Number(Math.max(...applyMs).toFixed(1));
  const cli = await inNs(BOX, 'bash', [
    '-c',
    `t0=$(date +%s%N); ${join(repoRoot, 'bin/edgectl')} segmentation apply --config ${site.configFile} >/dev/null && echo $(( ($(date +%s%N)-t0)/1000000 ))`,
  ]);
  out['edgectlApplyDevSiteMs'] = Number(cli.stdout.trim());
  await inNs(BOX, nftCommand, ['delete', 'table', 'inet', 'imaging_edge']);

  // 2. Connection setup for the allowed modality, to edged's plain DICOM port, without/with the ruleset.
  const daemon = new Supervised('ip', ['netns', 'exec', BOX, join(repoRoot, 'bin/edged'), '--config', site.configFile], {
    env: { ...process.env },
  });
  started.push(daemon);
  await daemon.waitForEvent('edged.ready', 60_000);
  const connects = env('SEG_BENCH_CONNECTS', 500);
  const echoes = env('SEG_BENCH_ECHOES', 100);
  const samples = { connect: { off: [] as number[], on: [] as number[] }, echo: { off: [] as number[], on: [] as number[] } };
  const plan = buildSegmentationPlan(loadConfig(site.configFile).config);
  if (!plan.ok) throw new Error('the bench site has problems');
  const script = renderLoadScript(plan.plan);
  for (let block = 0; block < env('SEG_BENCH_BLOCKS', 4); block++) {
    const on = block % 2 === 1;
    const r = await inNs(BOX, 'bash', ['-c', `${nftCommand} -f - <<'EOF'\n${on ? script : renderFlushScript()}\nEOF`]);
    if (r.code !== 0) throw new Error(r.stderr);
    const c = await inNs(MOD, node, [self, '--connect-loop', '10.231.1.1', '11112', String(connects)]);
    if (c.code !== 0) throw new Error(c.stderr);
    samples.connect[on ? 'on' : 'off'].push(...(JSON.parse(c.stdout) as number[]));
    for (let i = 0; i < echoes; i++) {
      const t0 = performance.now();
      const e = await inNs(MOD, 'echoscu', ['-aet', 'MR01', '-aec', 'EDGE', '-to', '5', '10.231.1.1', '11112'], 30_000);
      if (e.code !== 0) throw new Error(`echoscu failed: ${e.stderr}`);
      samples.echo[on ? 'on' : 'off'].push(performance.now() - t0);
    }
  }
  for (const kind of ['connect', 'echo'] as const) {
    const off = median(samples[kind].off);
    const on = median(samples[kind].on);
    out[`${kind}MedianWithoutMs`] = Number(off.toFixed(3));
    out[`${kind}MedianWithMs`] = Number(on.toFixed(3));
    out[`${kind}Ratio`] = Number((on / off).toFixed(3));
    out[`${kind}Samples`] = samples[kind].on.length + samples[kind].off.length;
  }
  out['targets'] = { applyMs: 1000, ratio: 1.05 };
  console.log(JSON.stringify(out));
} finally {
  for (const s of started) await s.stop('SIGTERM');
  await run('bash', [join(PEERS, 'netns/segments-down.sh'), P]);
  await site.cleanup();
}
