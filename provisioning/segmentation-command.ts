// `edgectl segmentation plan|apply|verify|status --config FILE`: the box's own firewall, rendered from
// its peer policy (docs/segmentation.md). apply, verify and status run nft and so need root; edged never
// does (the edge-firewall units run them, see image/).
import { readFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, formatIssue, loadConfig } from '../daemon/config/index.ts';
import type { EdgeConfig } from '../daemon/config/index.ts';
import { isEdgeError } from '../daemon/core/errors.ts';
import { QUARANTINE_FILE } from '../daemon/core/incident.ts';
import { checkAndLoad, listTable, listTableJson } from '../daemon/security/nft-client.ts';
import { compareTables, ruleCounters } from '../daemon/security/segmentation-drift.ts';
import type { SegmentationDrift } from '../daemon/security/segmentation-drift.ts';
import { buildSegmentationPlan } from '../daemon/security/segmentation-plan.ts';
import type { SegmentationPlan } from '../daemon/security/segmentation-plan.ts';
import { renderLoadScript, renderTable } from '../daemon/security/segmentation-ruleset.ts';
import { describePlan } from '../daemon/security/segmentation-summary.ts';

export const segmentationHelp = `usage: edgectl segmentation <plan|apply|verify|status> --config FILE [options]

The box's own nftables table (inet imaging_edge), rendered from the configuration: each listener open
only to its peers' addresses, egress only to the configured upstreams and infrastructure, everything
else dropped, logged (rate-limited) and counted. See docs/segmentation.md.

  plan     print who may reach what, then the ruleset (no root needed)
  apply    check the ruleset with nft -c, then load it in one nft -f transaction (root)
  verify   compare the loaded table with the plan; exit 1 on drift (root)
  status   counters of every rule of the loaded table (root)

  --config FILE    the box's configuration
  --json           machine-readable output (plan, verify, status)
  --result FILE    verify/apply: also write the verify result as JSON to FILE (edged reads it)

Exit status: 0 done (verify: no drift), 1 failed or drift (nothing is loaded when the plan has
problems or nft -c refuses it), 2 usage error.`;

function usage(message: string): number {
  console.error(`edgectl: ${message}`);
  console.error("Run 'edgectl segmentation --help' for usage.");
  return 2;
}

/** What edged reads: written whole (rename) so a reader never sees half a file. */
export interface VerifyResult extends SegmentationDrift {
  readonly at: string;
  readonly table: string;
}

export async function segmentationCommand(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { config: { type: 'string' }, json: { type: 'boolean' }, result: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    return usage((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    console.log(segmentationHelp);
    return 0;
  }
  const [action, ...extra] = positionals;
  if (action === undefined) return usage('segmentation needs an action: plan, apply, verify or status');
  if (!['plan', 'apply', 'verify', 'status'].includes(action)) return usage(`unknown segmentation action "${action}"`);
  if (extra.length > 0) return usage(`unexpected argument: ${extra[0] ?? ''}`);
  if (values.config === undefined) return usage(`segmentation ${action} needs --config FILE`);

  const plan = planFrom(values.config);
  if (plan === undefined) return 1;
  try {
    switch (action) {
      case 'plan':
        if (values.json === true) console.log(JSON.stringify({ plan, ruleset: renderLoadScript(plan) }, null, 2));
        else
          process.stdout.write(
            `${describePlan(plan)}\n# The ruleset (loaded with nft -f by 'edgectl segmentation apply'):\n${renderLoadScript(plan)}`,
          );
        return 0;
      case 'apply': {
        const t0 = performance.now();
        const { checkMs, loadMs } = await checkAndLoad(renderLoadScript(plan));
        const drift = await verify(plan, values.result);
        console.log(
          `applied table inet imaging_edge: ${plan.ingress.length} listener(s), ${plan.egress.length} destination(s); nft -c ${checkMs.toFixed(0)} ms, nft -f ${loadMs.toFixed(0)} ms, total ${(performance.now() - t0).toFixed(0)} ms`,
        );
        for (const w of plan.warnings) console.log(`warning: ${w}`);
        if (drift.drift) {
          console.error('edgectl: EDGE_FIREWALL_DRIFT: the table listed after loading differs from the plan');
          printDrift(drift);
          return 1;
        }
        return 0;
      }
      case 'verify': {
        const drift = await verify(plan, values.result);
        if (values.json === true) console.log(JSON.stringify(drift, null, 2));
        else if (!drift.drift) console.log('ok: the loaded table inet imaging_edge matches the plan');
        else printDrift(drift);
        return drift.drift ? 1 : 0;
      }
      default: {
        const json = await listTableJson();
        if (json === undefined) {
          console.error('edgectl: table inet imaging_edge is not loaded (run edgectl segmentation apply)');
          return 1;
        }
        const counters = ruleCounters(json);
        if (values.json === true) console.log(JSON.stringify({ counters }, null, 2));
        else {
          console.log(`${'chain'.padEnd(8)} ${'packets'.padStart(10)} ${'bytes'.padStart(12)}  rule`);
          for (const c of counters)
            console.log(`${c.chain.padEnd(8)} ${String(c.packets).padStart(10)} ${String(c.bytes).padStart(12)}  ${c.comment}`);
        }
        return 0;
      }
    }
  } catch (err) {
    if (!isEdgeError(err)) throw err;
    console.error(`edgectl: ${err.code}: ${err.message}`);
    return 1;
  }
}

/**
 * The config without the peers edged has quarantined (it writes `<dataDir>/quarantine.json`, and the
 * firewall's path unit re-applies when it changes): their addresses leave the ruleset too.
 */
function withoutQuarantined(config: EdgeConfig): EdgeConfig {
  let peers: Array<{ kind?: unknown; name?: unknown }> = [];
  try {
    peers = (JSON.parse(readFileSync(join(config.dataDir, QUARANTINE_FILE), 'utf8')) as { peers?: typeof peers }).peers ?? [];
  } catch {
    return config;
  }
  const out = (kind: string, name: string): boolean => peers.some((p) => p.kind === kind && p.name === name);
  if (peers.length > 0) console.error(`edgectl: ${peers.length} quarantined peer(s) left out of the firewall`);
  return {
    ...config,
    hl7: { ...config.hl7, peers: config.hl7.peers.filter((p) => !out('hl7', p.name)) },
    dicom: { ...config.dicom, modalities: config.dicom.modalities.filter((m) => !out('modality', m.aeTitle.trim())) },
  };
}

function planFrom(configFile: string): SegmentationPlan | undefined {
  let config: EdgeConfig;
  try {
    config = loadConfig(configFile).config;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`edgectl: ${err.code}: nothing rendered, nothing loaded`);
    for (const issue of err.issues.length > 0 ? err.issues.filter((i) => i.severity === 'error') : []) console.error(formatIssue(issue));
    if (err.issues.length === 0) console.error(err.message);
    return undefined;
  }
  const result = buildSegmentationPlan(withoutQuarantined(config));
  if (!result.ok) {
    console.error('edgectl: EDGE_FIREWALL_PLAN_INVALID: nothing rendered, nothing loaded');
    for (const p of result.problems) console.error(`error ${p.field}: ${p.message}`);
    return undefined;
  }
  return result.plan;
}

async function verify(plan: SegmentationPlan, resultFile: string | undefined): Promise<SegmentationDrift> {
  const drift = compareTables(renderTable(plan), await listTable());
  if (resultFile !== undefined) {
    const result: VerifyResult = { at: new Date().toISOString(), table: 'inet imaging_edge', ...drift };
    const temp = join(dirname(resultFile), `.segmentation-verify-${process.pid}.tmp`);
    await writeFile(temp, `${JSON.stringify(result)}\n`, { mode: 0o644 });
    await rename(temp, resultFile);
  }
  return drift;
}

function printDrift(drift: SegmentationDrift): void {
  console.log(
    drift.absent ? 'DRIFT: table inet imaging_edge is not loaded' : 'DRIFT: the loaded table inet imaging_edge differs from the plan',
  );
  if (!drift.absent) {
    for (const l of drift.missing) console.log(`  - planned, not loaded: ${l}`);
    for (const l of drift.unexpected) console.log(`  + loaded, not planned: ${l}`);
  }
}
