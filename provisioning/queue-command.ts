// `edgectl queue list|dead|retry|retry-all|discard --config FILE`: the outbox through the running
// daemon's control socket (the CLI never opens the store itself). Shows identifiers, states and
// reasons, never payloads. Operator actions are audited by the daemon with the console user's name.
import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { daemonCall } from './daemon-call.ts';

export const queueHelp = `usage: edgectl queue <action> --config FILE [options]

The outbox of the running daemon (store-and-forward to the RIS and the PACS); see docs/outbox.md.

  list [--json]                         every destination: circuit state (up/degraded/down), queued,
                                        dead letters, last error; --destination D lists D's queued entries
  dead [--destination D] [--json]       the dead-letter list with each entry's reason
  retry --destination D                 retry now: make every queued entry of D due and lift its back-off
  retry --id ID                         put one dead letter back in its queue (same place in its order)
  retry-all --destination D             put every dead letter of D back in the queue
  discard --id ID                       delete one dead letter for good

Exit status: 0 done, 1 the daemon refused or is not running, 2 usage error.`;

function usage(message: string): number {
  console.error(`edgectl: ${message}`);
  console.error("Run 'edgectl queue --help' for usage.");
  return 2;
}

function when(ms: number | undefined): string {
  return ms === undefined ? '-' : new Date(ms).toISOString();
}

export async function queueCommand(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        config: { type: 'string' },
        destination: { type: 'string' },
        id: { type: 'string' },
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
    console.log(queueHelp);
    return 0;
  }
  const action = positionals[0];
  if (action === undefined) return usage('queue needs an action: list, dead, retry, retry-all or discard');
  if (values.config === undefined) return usage(`queue ${action} needs --config FILE`);
  const user = userInfo().username;
  const call = daemonCall(values.config, 30_000);
  const dest = values.destination;
  switch (action) {
    case 'list': {
      const r =
        dest === undefined
          ? await call('GET', '/v1/queues')
          : await call('GET', `/v1/queues/entries?destination=${encodeURIComponent(dest)}`);
      if (r.status !== 200) return 1;
      if (values.json === true) console.log(JSON.stringify(r.body, null, 2));
      else if (dest === undefined) {
        console.log(
          `${'destination'.padEnd(12)} ${'state'.padEnd(9)} ${'queued'.padStart(7)} ${'dead'.padStart(6)}  last delivered            last error`,
        );
        for (const d of r.body.destinations) {
          console.log(
            `${String(d.destination).padEnd(12)} ${String(d.state).padEnd(9)} ${String(d.queued).padStart(7)} ${String(d.deadLetters).padStart(6)}  ${when(d.lastDeliveredAt).padEnd(25)} ${d.lastError === undefined ? '-' : `${withPeer(d.lastError)}: ${d.lastError.message}`}`,
          );
        }
      } else {
        for (const e of r.body.entries)
          console.log(
            `${e.id}  ${e.kind}  attempts ${e.attempts}  next ${when(e.nextAttemptAt)}  ${e.lastError === undefined ? '' : `${withPeer(e.lastError)}: ${e.lastError.message}`}`,
          );
      }
      return 0;
    }
    case 'dead': {
      const r = await call('GET', `/v1/queues/dead${dest === undefined ? '' : `?destination=${encodeURIComponent(dest)}`}`);
      if (r.status !== 200) return 1;
      if (values.json === true) console.log(JSON.stringify(r.body, null, 2));
      else
        for (const d of r.body.deadLetters)
          console.log(`${d.id}  ${d.destination}  ${d.kind}  dead since ${when(d.deadAt)}  ${withPeer(d.reason)}: ${d.reason.message}`);
      return 0;
    }
    case 'retry': {
      if ((values.id === undefined) === (dest === undefined)) return usage('queue retry needs exactly one of --id ID or --destination D');
      const r =
        values.id !== undefined
          ? await call('POST', '/v1/queues/retry-one', { id: values.id, user })
          : await call('POST', '/v1/queues/retry-now', { destination: dest, user });
      if (r.status !== 200) return 1;
      console.log(
        values.id !== undefined
          ? `requeued ${values.id}`
          : `${r.body.due} queued entr${r.body.due === 1 ? 'y' : 'ies'} of ${dest} made due`,
      );
      return 0;
    }
    case 'retry-all': {
      if (dest === undefined) return usage('queue retry-all needs --destination D');
      const r = await call('POST', '/v1/queues/retry-all', { destination: dest, user });
      if (r.status !== 200) return 1;
      console.log(`requeued ${r.body.requeued} dead letter(s) of ${dest}`);
      return 0;
    }
    case 'discard': {
      if (values.id === undefined) return usage('queue discard needs --id ID');
      const r = await call('POST', '/v1/queues/discard', { id: values.id, user });
      if (r.status !== 200) return 1;
      console.log(`discarded ${values.id}`);
      return 0;
    }
    default:
      return usage(`unknown queue action "${action}"`);
  }
}

/** The registry code, with the peer's own answer (MSA-1, DIMSE or HTTP status) where it gave one. */
function withPeer(error: { readonly code: string; readonly peerStatus?: string }): string {
  return error.peerStatus === undefined ? error.code : `${error.code} [${error.peerStatus}]`;
}
