// `edgectl peer add|remove|list`: the peers of the box (RIS senders, modalities, the PACS, audit
// collectors) edited in the config file. The edited document is checked against the schema before
// anything is written; it replaces the file atomically (temp file, fsync, rename; the previous version
// kept as FILE.bak), and then the running edged is asked to reload (POST /v1/config/reload).
import { copyFile, open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, checkConfig, errorsIn, formatIssue, readConfigDocument, type ConfigIssue } from '../daemon/config/index.ts';
import { DaemonNotRunningError, controlRequest } from './control-client.ts';
import { controlSocketPath } from '../daemon/admin/control-socket.ts';
import { quarantineCommand } from './incident-command.ts';

export const peerHelp = `usage: edgectl peer list --config FILE [--json]
       edgectl peer add ris --config FILE --name NAME --cn CN --application MSH3 --facility MSH4 [--address A]...
       edgectl peer add modality --config FILE --name NAME --ae AET --transport tls|plain [--cn CN] [--address A]...
                                 [--station-ae AET]... [--modality CODE]... [--return-key KEYWORD]...
       edgectl peer add pacs --config FILE --host HOST --port PORT --ae AET [--plain] [--replace]
       edgectl peer add collector --config FILE --name NAME --host HOST --port PORT [--server-name NAME]
       edgectl peer remove ris|modality|collector NAME --config FILE
       edgectl peer remove pacs --config FILE
       edgectl peer quarantine|release NAME --reason TEXT --config FILE   (incident containment)
       edgectl peer quarantined --config FILE

ris        an HL7 sender (hl7.peers): known by its client certificate CN, MSH-3/MSH-4 and optionally addresses
modality   a modality (dicom.modalities): calling AE title, TLS (certificate CN) or plain (addresses required),
           optional worklist scope (--station-ae, --modality) and returned attributes (--return-key)
pacs       where images go (upstream.pacs; one at most: --replace to change it)
collector  a central syslog-TLS audit collector (audit.collectors)

The edited configuration is checked against the schema first; with any error nothing is written and
every issue is printed. Otherwise FILE is replaced atomically (the previous version kept as FILE.bak)
and the running edged reloads it: added peers are admitted at once, removed or changed peers lose
their open connections, unchanged peers keep theirs. Changes to the PACS and collectors take effect
at the next restart (reported as 'restart-required').

  --no-reload   only write the file
  --json        (list) print JSON

Exit status: 0 done, 1 invalid or refused (nothing changed), 2 usage error.`;

type Doc = Record<string, unknown>;
type Kind = 'ris' | 'modality' | 'pacs' | 'collector';
const kinds: readonly Kind[] = ['ris', 'modality', 'pacs', 'collector'];

class Usage extends Error {}

const options = {
  config: { type: 'string' },
  json: { type: 'boolean' },
  'no-reload': { type: 'boolean' },
  name: { type: 'string' },
  cn: { type: 'string' },
  application: { type: 'string' },
  facility: { type: 'string' },
  address: { type: 'string', multiple: true },
  ae: { type: 'string' },
  transport: { type: 'string' },
  'station-ae': { type: 'string', multiple: true },
  modality: { type: 'string', multiple: true },
  'return-key': { type: 'string', multiple: true },
  host: { type: 'string' },
  port: { type: 'string' },
  plain: { type: 'boolean' },
  replace: { type: 'boolean' },
  'server-name': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: true; strict: true }>>['values'];

export async function peerCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    console.log(peerHelp);
    return sub === undefined ? 2 : 0;
  }
  if (sub === 'quarantine' || sub === 'release' || sub === 'quarantined') return quarantineCommand(sub, rest);
  try {
    const { values, positionals } = parseArgs({ args: rest, options, allowPositionals: true, strict: true });
    if (values.help === true) return (console.log(peerHelp), 0);
    if (values.config === undefined) throw new Usage('peer needs --config FILE');
    const file = resolve(values.config);
    if (sub === 'list') return list(file, values.json === true);
    const [kindText, ...names] = positionals;
    if (!kinds.includes(kindText as Kind)) throw new Usage(`peer ${sub} needs a kind: ${kinds.join(', ')}`);
    const kind = kindText as Kind;
    let doc: Doc;
    try {
      doc = asObject(readConfigDocument(file));
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      console.error(`edgectl: ${err.message}`);
      return 1;
    }
    let what: string;
    if (sub === 'add') {
      if (names.length > 0) throw new Usage(`unexpected argument: ${names[0] ?? ''}`);
      what = add(doc, kind, values);
    } else if (sub === 'remove') {
      const name = names[0];
      if (kind !== 'pacs' && (name === undefined || names.length > 1)) throw new Usage(`peer remove ${kind} needs one NAME`);
      if (kind === 'pacs' && names.length > 0) throw new Usage('peer remove pacs takes no NAME');
      const removed = remove(doc, kind, name ?? '');
      if (removed === undefined) {
        console.error(`edgectl: no ${kind} ${name ?? ''} in ${file}; nothing changed`);
        return 1;
      }
      what = removed;
    } else {
      throw new Usage(`unknown peer command "${sub}"`);
    }
    return await apply(file, doc, what, values['no-reload'] !== true);
  } catch (err) {
    if (err instanceof Usage || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true) {
      console.error(`edgectl: ${(err as Error).message}\nRun 'edgectl peer --help' for usage.`);
      return 2;
    }
    throw err;
  }
}

function asObject(v: unknown): Doc {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new ConfigError('EDGE_CONFIG_INVALID', 'the configuration is not a JSON object', []);
  return v as Doc;
}

/** The object at `path`, created (as {}) when missing; a non-object there is left to the schema check. */
function section(doc: Doc, ...path: string[]): Doc {
  let at = doc;
  for (const key of path) {
    const next = at[key];
    if (next === undefined) at[key] = {};
    else if (typeof next !== 'object' || next === null || Array.isArray(next))
      throw new Usage(`${path.join('.')} in the config is not an object`);
    at = at[key] as Doc;
  }
  return at;
}

function listAt(doc: Doc, path: string[], key: string): unknown[] {
  const parent = section(doc, ...path);
  const list = parent[key] ?? [];
  if (!Array.isArray(list)) throw new Usage(`${[...path, key].join('.')} in the config is not a list`);
  parent[key] = list;
  return list;
}

function need(values: Values, key: 'name' | 'cn' | 'application' | 'facility' | 'ae' | 'transport' | 'host' | 'port', kind: Kind): string {
  const v = values[key];
  if (v === undefined || v === '') throw new Usage(`peer add ${kind} needs --${key}`);
  return v;
}

function portOf(text: string): number {
  // Passed through as a number when it looks like one, so the schema reports the range.
  return /^\d+$/.test(text) ? Number(text) : (text as unknown as number);
}

function add(doc: Doc, kind: Kind, v: Values): string {
  const addresses = v.address !== undefined && v.address.length > 0 ? { addresses: v.address } : {};
  switch (kind) {
    case 'ris': {
      const peer = {
        name: need(v, 'name', kind),
        certificateCn: need(v, 'cn', kind),
        sendingApplication: need(v, 'application', kind),
        sendingFacility: need(v, 'facility', kind),
        ...addresses,
      };
      listAt(doc, ['hl7'], 'peers').push(peer);
      return `added HL7 peer ${peer.name}`;
    }
    case 'modality': {
      const transport = need(v, 'transport', kind);
      const scope = {
        ...(v['station-ae'] !== undefined ? { stationAeTitles: v['station-ae'] } : {}),
        ...(v.modality !== undefined ? { modalities: v.modality } : {}),
      };
      const peer = {
        name: need(v, 'name', kind),
        aeTitle: need(v, 'ae', kind),
        transport,
        ...(v.cn !== undefined ? { certificateCn: v.cn } : {}),
        ...addresses,
        ...(Object.keys(scope).length > 0 ? { worklistScope: scope } : {}),
        ...(v['return-key'] !== undefined ? { returnKeys: v['return-key'] } : {}),
      };
      listAt(doc, ['dicom'], 'modalities').push(peer);
      return `added modality ${peer.name} (${peer.aeTitle}, ${transport})`;
    }
    case 'pacs': {
      const upstream = section(doc, 'upstream');
      if (upstream['pacs'] !== undefined && v.replace !== true) throw new Usage('upstream.pacs is already set: use --replace to change it');
      // A DIMSE route: the STOW-RS fields of a route it replaces would only draw warnings.
      const { protocol: _protocol, stowUrl: _stowUrl, bearerTokenFile: _token, ...old } = (upstream['pacs'] ?? {}) as Doc;
      upstream['pacs'] = {
        ...old,
        host: need(v, 'host', kind),
        port: portOf(need(v, 'port', kind)),
        aeTitle: need(v, 'ae', kind),
        tls: v.plain !== true,
      };
      return `set PACS ${need(v, 'ae', kind)}@${need(v, 'host', kind)}:${need(v, 'port', kind)}`;
    }
    case 'collector': {
      const c = {
        name: need(v, 'name', kind),
        host: need(v, 'host', kind),
        port: portOf(need(v, 'port', kind)),
        ...(v['server-name'] !== undefined ? { serverName: v['server-name'] } : {}),
      };
      listAt(doc, ['audit'], 'collectors').push(c);
      return `added audit collector ${c.name}`;
    }
  }
}

function remove(doc: Doc, kind: Kind, name: string): string | undefined {
  const drop = (path: string[], key: string, match: (p: Doc) => boolean, label: string): string | undefined => {
    const list = listAt(doc, path, key);
    const i = list.findIndex((p) => typeof p === 'object' && p !== null && match(p as Doc));
    if (i < 0) return undefined;
    list.splice(i, 1);
    return `removed ${label} ${name}`;
  };
  switch (kind) {
    case 'ris':
      return drop(['hl7'], 'peers', (p) => p['name'] === name, 'HL7 peer');
    case 'modality':
      return drop(
        ['dicom'],
        'modalities',
        (p) => p['name'] === name || (typeof p['aeTitle'] === 'string' && p['aeTitle'].trim() === name.trim()),
        'modality',
      );
    case 'collector':
      return drop(['audit'], 'collectors', (p) => p['name'] === name, 'audit collector');
    case 'pacs': {
      const upstream = section(doc, 'upstream');
      if (upstream['pacs'] === undefined) return undefined;
      delete upstream['pacs'];
      return 'removed the PACS (upstream.pacs)';
    }
  }
}

function printIssues(issues: readonly ConfigIssue[], stream: 'out' | 'err'): void {
  for (const issue of issues) (stream === 'out' ? console.log : console.error)(`  ${formatIssue(issue)}`);
}

async function apply(file: string, doc: Doc, what: string, reload: boolean): Promise<number> {
  const { config, issues } = checkConfig(doc, { baseDir: dirname(file) });
  if (config === undefined) {
    console.error(`edgectl: the change is invalid; ${file} is unchanged:`);
    printIssues(errorsIn(issues), 'err');
    return 1;
  }
  await writeAtomically(file, `${JSON.stringify(doc, null, 2)}\n`);
  console.log(`${what}; wrote ${file} (previous version in ${basename(file)}.bak)`);
  if (!reload) return 0;
  let reply;
  try {
    reply = await controlRequest(controlSocketPath(config.dataDir), 'POST', '/v1/config/reload', {}, 30_000);
  } catch (err) {
    if (!(err instanceof DaemonNotRunningError)) throw err;
    console.log('edged is not running: the change takes effect when it starts');
    return 0;
  }
  const body = reply.body as
    { applied?: boolean; issues?: ConfigIssue[]; closed?: number; error?: { code: string; message: string } } | undefined;
  if (reply.status === 200 && body?.applied === true) {
    console.log(`edged reloaded the configuration; ${body.closed ?? 0} connection(s) of removed or changed peers closed`);
    const warnings = (body.issues ?? []).filter((i) => i.code === 'restart-required');
    if (warnings.length > 0) {
      console.log('needs a restart of edged to take effect:');
      printIssues(warnings, 'out');
    }
    return 0;
  }
  console.error(`edgectl: edged refused the reload (it keeps running with its previous configuration):`);
  if (body?.issues !== undefined) printIssues(errorsIn(body.issues), 'err');
  else if (body?.error !== undefined) console.error(`  ${body.error.code}: ${body.error.message}`);
  return 1;
}

/** Temp file beside, fsynced, renamed over; the old file copied to FILE.bak first; mode kept. */
export async function writeAtomically(file: string, text: string): Promise<void> {
  const mode = await stat(file).then(
    (s) => s.mode & 0o777,
    () => 0o600,
  );
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  const fh = await open(tmp, 'w', mode);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  await copyFile(file, `${file}.bak`).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
  await rename(tmp, file);
  const dir = await open(dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

async function list(file: string, json: boolean): Promise<number> {
  let doc: Doc;
  try {
    doc = asObject(readConfigDocument(file));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`edgectl: ${err.message}`);
    return 1;
  }
  const get = (path: string[]): unknown =>
    path.reduce<unknown>((at, k) => (typeof at === 'object' && at !== null ? (at as Doc)[k] : undefined), doc);
  const arr = (path: string[]): Doc[] => (Array.isArray(get(path)) ? (get(path) as Doc[]) : []);
  const peers = {
    ris: arr(['hl7', 'peers']),
    modalities: arr(['dicom', 'modalities']),
    pacs: (get(['upstream', 'pacs']) as Doc | undefined) ?? null,
    collectors: arr(['audit', 'collectors']),
  };
  if (json) {
    console.log(JSON.stringify(peers, null, 2));
    return 0;
  }
  const s = (v: unknown): string => (Array.isArray(v) ? v.join(',') : typeof v === 'string' || typeof v === 'number' ? String(v) : '-');
  console.log(`RIS / HL7 senders (${peers.ris.length})`);
  for (const p of peers.ris)
    console.log(
      `  ${s(p['name'])}  cn=${s(p['certificateCn'])}  msh3/4=${s(p['sendingApplication'])}^${s(p['sendingFacility'])}  addresses=${s(p['addresses'])}`,
    );
  console.log(`Modalities (${peers.modalities.length})`);
  for (const p of peers.modalities) {
    const scope = (p['worklistScope'] ?? {}) as Doc;
    console.log(
      `  ${s(p['name'])}  ae=${s(p['aeTitle'])}  ${s(p['transport'])}  cn=${s(p['certificateCn'])}  addresses=${s(p['addresses'])}  scope: stations=${s(scope['stationAeTitles'])} modalities=${s(scope['modalities'])}`,
    );
  }
  const pacs = peers.pacs;
  const route =
    pacs === null
      ? '(none)'
      : pacs['protocol'] === 'stow'
        ? `STOW-RS ${s(pacs['stowUrl'])}`
        : `${s(pacs['aeTitle'])}@${s(pacs['host'])}:${s(pacs['port'])} ${pacs['tls'] === false ? 'plain' : 'tls'}`;
  console.log(`PACS: ${route}`);
  console.log(`Audit collectors (${peers.collectors.length})`);
  for (const c of peers.collectors)
    console.log(
      `  ${s(c['name'])}  ${s(c['host'])}:${s(c['port'])}${c['serverName'] === undefined ? '' : `  serverName=${s(c['serverName'])}`}`,
    );
  return 0;
}
