// Incident response from the console, through the running daemon's control socket (docs/incident-response.md):
//   edgectl alert list|ack            the alerts the box raised from its audit trail
//   edgectl peer quarantine|release   contain a peer at once, reversibly
//   edgectl report breach-scope       who and what a time window touched, signed by the box
// Every action is audited by the daemon with the console user's name.
import { mkdir, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { daemonCall } from './daemon-call.ts';

export const alertHelp = `usage: edgectl alert list --config FILE [--all] [--json]
       edgectl alert ack ID --note TEXT --config FILE

list   the open alerts (--all: acknowledged ones too): rule, subject, what was observed, the threshold,
       the audit records that are the evidence (seq numbers: a bundle from the audit pull API holds them)
ack    acknowledge an alert, saying what was found and done (kept in the audit trail)

Exit status: 0 done, 1 refused or the daemon is not running, 2 usage error.`;

export const quarantineHelp = `usage: edgectl peer quarantine NAME --reason TEXT --config FILE
       edgectl peer release NAME --reason TEXT --config FILE
       edgectl peer quarantined --config FILE [--json]

quarantine  refuse the peer at once (an HL7 sender by name, a modality by name or AE title): its open
            connections are closed, new ones are refused like a stranger's, and the firewall drops its
            addresses when segmentation is on. Its configuration is kept; the quarantine survives restarts.
release     lift the quarantine.`;

export const reportHelp = `usage: edgectl report breach-scope --from TIME --to TIME --out DIR --config FILE
                                  [--peer NAME] [--user NAME] [--patient ID] [--accession NUMBER]

Every patient, order, study, peer and user the audit trail says the window touched, and how (queried,
received, forwarded, viewed, exported), built from the hash-linked chain and verified against it. Writes
DIR/breach-scope.json (signed by the box: DIR/breach-scope.json.p7s, CMS detached) and
DIR/breach-scope.html (printable). TIME is ISO 8601, e.g. 2026-12-07T08:00:00Z.

Check the signature: openssl cms -verify -binary -inform DER -in DIR/breach-scope.json.p7s \\
  -content DIR/breach-scope.json -CAfile SITE-CA.pem -purpose any`;

function usage(message: string, command: string): number {
  console.error(`edgectl: ${message}`);
  console.error(`Run 'edgectl ${command} --help' for usage.`);
  return 2;
}

function call(configFile: string, method: string, path: string, body?: unknown, timeoutMs?: number) {
  return daemonCall(configFile, timeoutMs ?? 30_000)(method, path, body);
}

const when = (ms: number): string => new Date(ms).toISOString();

export async function alertCommand(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        config: { type: 'string' },
        note: { type: 'string' },
        all: { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    return usage((err as Error).message, 'alert');
  }
  const { values, positionals } = parsed;
  if (values.help === true) return (console.log(alertHelp), 0);
  const [action, id] = positionals;
  if (action === undefined) return usage('alert needs an action: list or ack', 'alert');
  if (values.config === undefined) return usage(`alert ${action} needs --config FILE`, 'alert');
  if (action === 'list') {
    const r = await call(values.config, 'GET', '/v1/alerts');
    if (r.status !== 200) return 1;
    const alerts = (r.body.alerts as any[]).filter((a) => values.all === true || a.state === 'open');
    if (values.json === true) return (console.log(JSON.stringify(alerts, null, 2)), 0);
    if (alerts.length === 0) console.log(values.all === true ? 'no alerts' : 'no open alerts');
    for (const a of alerts) {
      console.log(`${a.id}  ${a.state.toUpperCase()}  ${a.rule}  ${a.subject.kind} ${a.subject.id}`);
      console.log(`  observed  ${a.observed} (${a.count} time(s), ${when(a.firstAt)} .. ${when(a.lastAt)})`);
      console.log(`  threshold ${a.threshold}`);
      console.log(`  evidence  audit seq ${a.evidence.join(', ')}${a.evidenceOmitted > 0 ? ` and ${a.evidenceOmitted} more` : ''}`);
      if (a.acknowledged !== undefined)
        console.log(`  acknowledged by ${a.acknowledged.by} at ${when(a.acknowledged.at)}: ${a.acknowledged.note}`);
    }
    return 0;
  }
  if (action === 'ack') {
    if (id === undefined) return usage('alert ack needs the alert ID (edgectl alert list shows it)', 'alert');
    if (values.note === undefined || values.note.trim() === '') return usage('alert ack needs --note: what was found and done', 'alert');
    const r = await call(values.config, 'POST', '/v1/alerts/acknowledge', { id, note: values.note, by: userInfo().username });
    if (r.status !== 200) return 1;
    console.log(`acknowledged ${id}`);
    return 0;
  }
  return usage(`unknown action "${action}"`, 'alert');
}

/** `edgectl peer quarantine|release|quarantined` (called from peer-command.ts). */
export async function quarantineCommand(action: string, args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { config: { type: 'string' }, reason: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    return usage((err as Error).message, 'peer');
  }
  const { values, positionals } = parsed;
  if (values.help === true) return (console.log(quarantineHelp), 0);
  if (values.config === undefined) return usage(`peer ${action} needs --config FILE`, 'peer');
  if (action === 'quarantined') {
    const r = await call(values.config, 'GET', '/v1/peers/quarantine');
    if (r.status !== 200) return 1;
    if (values.json === true) return (console.log(JSON.stringify(r.body.quarantined, null, 2)), 0);
    if (r.body.quarantined.length === 0) console.log('no peer is quarantined');
    for (const q of r.body.quarantined) console.log(`${q.kind} ${q.name}  since ${when(q.at)} by ${q.by}: ${q.reason}`);
    return 0;
  }
  const [name] = positionals;
  if (name === undefined) return usage(`peer ${action} needs the peer's NAME`, 'peer');
  if (values.reason === undefined || values.reason.trim() === '') return usage(`peer ${action} needs --reason TEXT`, 'peer');
  const r = await call(values.config, 'POST', action === 'quarantine' ? '/v1/peers/quarantine' : '/v1/peers/release', {
    name,
    reason: values.reason,
    by: userInfo().username,
  });
  if (r.status !== 200) return 1;
  if (action === 'quarantine')
    console.log(
      r.body.already === true
        ? `${name} was already quarantined`
        : `${r.body.quarantine.kind} ${r.body.quarantine.name} quarantined; ${r.body.closed} connection(s) closed. Release with: edgectl peer release ${name} --reason ...`,
    );
  else console.log(`${r.body.released.kind} ${r.body.released.name} released`);
  return 0;
}

export async function reportCommand(args: string[]): Promise<number> {
  const [kind, ...rest] = args;
  if (kind === undefined || kind === '--help' || kind === '-h') return (console.log(reportHelp), kind === undefined ? 2 : 0);
  if (kind !== 'breach-scope') return usage(`unknown report "${kind}" (breach-scope)`, 'report');
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      options: {
        config: { type: 'string' },
        from: { type: 'string' },
        to: { type: 'string' },
        out: { type: 'string' },
        peer: { type: 'string' },
        user: { type: 'string' },
        patient: { type: 'string' },
        accession: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    });
  } catch (err) {
    return usage((err as Error).message, 'report');
  }
  const v = parsed.values;
  if (v.help === true) return (console.log(reportHelp), 0);
  for (const need of ['config', 'from', 'to', 'out'] as const)
    if (v[need] === undefined) return usage(`report breach-scope needs --${need}`, 'report');
  for (const t of ['from', 'to'] as const)
    if (!Number.isFinite(Date.parse(v[t]!))) return usage(`--${t} "${v[t]}" is not an ISO 8601 time (e.g. 2026-12-07T08:00:00Z)`, 'report');
  console.error('building the report from the audit chain (verifying every link; about 30 s per million records)…');
  const r = await call(
    v.config!,
    'POST',
    '/v1/reports/breach-scope',
    { from: v.from, to: v.to, peer: v.peer, user: v.user, patient: v.patient, accession: v.accession, by: userInfo().username },
    600_000,
  );
  if (r.status !== 200) return 1;
  const dir = resolve(v.out!);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(join(dir, 'breach-scope.json'), r.body.json, { mode: 0o600 });
  await writeFile(join(dir, 'breach-scope.json.p7s'), Buffer.from(r.body.signature, 'base64'), { mode: 0o600 });
  await writeFile(join(dir, 'breach-scope.html'), r.body.html, { mode: 0o600 });
  const report = JSON.parse(r.body.json);
  console.log(
    `${report.totals.patients} patient(s), ${report.totals.orders} order(s), ${report.totals.studies} study(ies), ${report.parties.length} peer(s)/user(s); chain ${report.chain.linksVerified ? 'verified' : 'NOT VERIFIED'}`,
  );
  console.log(`written: ${join(dir, 'breach-scope.json')} (+ .p7s signature) and ${join(dir, 'breach-scope.html')}`);
  console.log('The files name patients: keep them as protected health information.');
  return report.chain.linksVerified === true ? 0 : 1;
}
