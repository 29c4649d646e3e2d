// `edgectl worklist import|status --config FILE`: the upstream worklist cache (upstream.mwl) through the
// running daemon's control socket. `import` queries the provider now and prints what the merge created,
// updated and removed; `--dry-run` prints the same counts and changes nothing.
import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { daemonCall } from './daemon-call.ts';

export const worklistHelp = `usage: edgectl worklist <action> --config FILE [options]

The upstream worklist cache: items pulled from the RIS's own Modality Worklist SCP (upstream.mwl) and
merged under the orders the RIS sent over HL7; see docs/downtime.md.

  import [--dry-run] [--json]   query the provider now and merge its answer; prints created, updated,
                                removed (and pending removal, shadowed by HL7, skipped with the reason);
                                --dry-run changes nothing
  status [--json]               the cache's age, the last answer and the last error

Exit status: 0 done, 1 the daemon refused, the provider failed or the daemon is not running, 2 usage error.`;

function usage(message: string): number {
  console.error(`edgectl: ${message}`);
  console.error("Run 'edgectl worklist --help' for usage.");
  return 2;
}

interface Counts {
  created: number;
  updated: number;
  removed: number;
  unchanged: number;
  pendingRemoval: number;
  shadowed: number;
  skipped: number;
}

export async function worklistCommand(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        config: { type: 'string' },
        'dry-run': { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    return usage((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    console.log(worklistHelp);
    return 0;
  }
  const action = positionals[0];
  if (action === undefined) return usage('worklist needs an action: import or status');
  if (values.config === undefined) return usage(`worklist ${action} needs --config FILE`);
  // A provider with many items may take a while to answer; the daemon has its own timeouts.
  const call = daemonCall(values.config, 600_000);
  switch (action) {
    case 'import': {
      const dryRun = values['dry-run'] === true;
      const r = await call('POST', '/v1/worklist/import', { dryRun, user: userInfo().username });
      if (r.status !== 200) return 1;
      if (values.json === true) {
        console.log(JSON.stringify(r.body, null, 2));
        return 0;
      }
      const c = r.body.counts as Counts;
      console.log(
        `${dryRun ? 'dry run (nothing changed): would have ' : ''}created ${c.created}, updated ${c.updated}, removed ${c.removed}`,
      );
      console.log(
        `  unchanged ${c.unchanged}, pending removal ${c.pendingRemoval}, shadowed by HL7 orders ${c.shadowed}, skipped ${c.skipped}; ${r.body.answered} item(s) answered`,
      );
      if (r.body.complete !== true) console.log(`  the answer was incomplete (${r.body.incompleteBecause}): nothing was removed`);
      for (const s of r.body.skipped as Array<{ problem: string; attribute: string; accessionNumber: string; spsId: string }>) {
        console.log(`  skipped: accession ${s.accessionNumber || '-'} step ${s.spsId || '-'}: ${s.attribute} ${s.problem}`);
      }
      return 0;
    }
    case 'status': {
      const r = await call('GET', '/v1/worklist/upstream');
      if (r.status !== 200) return 1;
      if (values.json === true) {
        console.log(JSON.stringify(r.body, null, 2));
        return 0;
      }
      const s = r.body;
      if (s.configured !== true) {
        console.log('no upstream worklist provider (upstream.mwl is not configured)');
        return 0;
      }
      console.log(`provider ${s.provider}, every ${Math.round(s.intervalMs / 1000)} s`);
      console.log(
        `cache age ${Math.round(s.cacheAgeMs / 1000)} s${s.stale ? ' — STALE (over twice the interval)' : ''}; last complete answer ${s.lastCompleteAt === undefined ? 'never' : new Date(s.lastCompleteAt).toISOString()}`,
      );
      if (s.lastError !== undefined) console.log(`last error ${s.lastError.code}: ${s.lastError.message}`);
      return 0;
    }
    default:
      return usage(`unknown worklist action "${action}"`);
  }
}
