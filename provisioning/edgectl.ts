// edgectl: the operator's CLI (run as bin/edgectl). The only place in the project that writes to the
// console. Exit status: 0 done, 1 the thing checked or attempted failed, 2 usage error.
import { writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';
import { ConfigError, IssueCode, bindCheck, checkConfigFile, errorsIn, formatIssue, renderConfigDocs } from '../daemon/config/index.ts';
import type { ConfigIssue } from '../daemon/config/index.ts';
import { isEdgeError } from '../daemon/core/errors.ts';
import { SiteExistsError, defaultBasePort, writeDevSite } from './dev-site.ts';
import { status, statusHelp } from './status-command.ts';
import { queueCommand } from './queue-command.ts';
import { userCommand } from './user-command.ts';
import { worklistCommand } from './worklist-command.ts';
import { orderCommand } from './order-command.ts';
import { certCommand, decommissionCommand, keysCommand, provisionCommand } from './field-commands.ts';
import { updateCommand } from './update-command.ts';
import { auditCommand } from './audit-command.ts';
import { siteInfo, siteInfoHelp } from './site-info-command.ts';
import { devAccountHelp, ensureDevAccount } from './dev-account.ts';
import { peerCommand } from './peer-command.ts';
import { alertCommand, reportCommand } from './incident-command.ts';
import { backupCommand, restoreCommand } from './backup-command.ts';
import { segmentationCommand } from './segmentation-command.ts';

export const docsPath = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'config.md');

const help = {
  main: `usage: edgectl <command> [options]

Commands:
  config check FILE [--bind] [--json]   check a configuration file, listing every issue
  config docs [--write]                 print the configuration reference (or write docs/config.md)
  dev-site --dir DIR [options]          write a complete development site (PKI, data key, config)
  site-info --dir DIR                   where peers connect to a development site
  dev-account --dir DIR                 the development site's admin page account (make run)
  status --config FILE [--json]         ask the running daemon for its status
  queue list|dead|retry|retry-all|discard --config FILE  the outbox: states, dead letters, operator actions
  user list|add|disable|enable|unlock|reset-mfa|set-role --config FILE  admin accounts (through the daemon)
  worklist import [--dry-run] | worklist status --config FILE  the upstream worklist cache (upstream.mwl)
  order add|list|reconciliation|resolve --config FILE  downtime orders and their reconciliation with the RIS
  provision --profile FILE --config FILE  factory state to serving: TPM keys, CSR, config, admin, self-test
  cert install CERT [CHAIN] | cert status --config FILE   install the device certificate / show expiries
  keys reseal | keys rotate-data-key --config FILE      recover after a boot change / rotate the data key
  decommission --config FILE --confirm ERASE            crypto-erase the box (and its data partition)
  update apply BUNDLE [--force] | update status         A/B update of the appliance from a signed bundle
  peer list|add|remove KIND --config FILE  RIS, modalities, PACS, audit collectors; edged reloads live
  peer quarantine|release NAME --reason TEXT --config FILE  contain a peer at once (incident response)
  alert list|ack --config FILE          alerts the box raised from its audit trail; acknowledge one
  report breach-scope --from T --to T --out DIR --config FILE  who and what a window touched, signed
  backup --config FILE --out FILE       encrypted, integrity-checked snapshot of the store and config
  restore --config FILE --in FILE       restore a backup (edged stopped), verified before use
  audit verify BUNDLE --ca CA (--device-cert CERT | --after PREV)  verify a signed audit bundle (no box needed)
  segmentation plan|apply|verify|status --config FILE  the box's own firewall from its peer policy
  help [COMMAND]                        show help for a command

Run 'edgectl COMMAND --help' for a command's options.`,
  'config check': `usage: edgectl config check FILE [--bind] [--json]

Checks FILE against the schema and prints every issue (severity, path, message, code).
Relative paths in FILE are resolved against FILE's folder.

  --bind   also test-bind every listener address (fails if a port is taken)
  --json   print {"ok": boolean, "issues": [...]} instead of text

Exit status: 0 no errors (warnings allowed), 1 errors or unreadable file, 2 usage error.`,
  'config docs': `usage: edgectl config docs [--write]

Prints the configuration reference generated from the schema (Markdown).

  --write  write it to docs/config.md instead of printing it`,
  'dev-site': `usage: edgectl dev-site --dir DIR [--base-port N] [--ris HOST:PORT] [--pacs HOST:PORT:AET] [--force]

Writes a development site into DIR, for tests and people, on 127.0.0.1:
  DIR/pki/        development CA, box certificate (localhost, 127.0.0.1), RIS and CT01 client
                  certificates, a stranger (site CA, unknown CN) and a rogue CA + client; keys 0600
  DIR/keys/       data.key, 32 random bytes (0600; kept if present, so DIR/data stays readable)
  DIR/edge.json   the box's configuration (keys.backend "file": development only)
  DIR/site.json   every port, AE title, HL7 application/facility and certificate path a peer needs

  --dir DIR          where to write (created if missing)
  --base-port N      HL7 listens on N, DICOM TLS on N+1, DICOM plain on N+2 (default ${defaultBasePort})
  --ris HOST:PORT    the RIS status receiver (upstream.ris, MLLP over TLS)
  --pacs HOST:PORT:AET  the PACS images go to (upstream.pacs, plain DICOM)
  --force            replace an existing site in DIR

Needs the openssl command.`,
  status: statusHelp,
  'site-info': siteInfoHelp,
  'dev-account': devAccountHelp,
} as const;
type HelpTopic = keyof typeof help;

class UsageError extends Error {
  readonly topic: HelpTopic;
  constructor(message: string, topic: HelpTopic) {
    super(message);
    this.name = 'UsageError';
    this.topic = topic;
  }
}

function parse<O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O, topic: HelpTopic) {
  try {
    return parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err), topic);
  }
}

function printIssues(issues: readonly ConfigIssue[]): void {
  for (const issue of issues) console.log(formatIssue(issue));
  const errors = errorsIn(issues).length;
  const warnings = issues.length - errors;
  console.log(errors === 0 && warnings === 0 ? 'ok: no issues' : `${errors} error(s), ${warnings} warning(s)`);
}

async function configCheck(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { bind: { type: 'boolean' }, json: { type: 'boolean' } }, 'config check');
  if (values.help === true) return showHelp('config check');
  const [file, ...extra] = positionals;
  if (file === undefined) throw new UsageError('config check needs a FILE', 'config check');
  if (extra.length > 0) throw new UsageError(`unexpected argument: ${extra[0] ?? ''}`, 'config check');
  const path = resolve(file);
  let issues: ConfigIssue[];
  try {
    const result = checkConfigFile(path);
    issues = [...result.issues];
    if (values.bind === true && result.config !== undefined) issues.push(...(await bindCheck(result.config)));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    issues = [{ severity: 'error', code: IssueCode.Unreadable, path: '', message: err.message }];
  }
  const ok = errorsIn(issues).length === 0;
  if (values.json === true) console.log(JSON.stringify({ ok, issues }, null, 2));
  else printIssues(issues);
  return ok ? 0 : 1;
}

function configDocs(args: string[]): number {
  const { values, positionals } = parse(args, { write: { type: 'boolean' } }, 'config docs');
  if (values.help === true) return showHelp('config docs');
  if (positionals.length > 0) throw new UsageError(`unexpected argument: ${positionals[0] ?? ''}`, 'config docs');
  const text = renderConfigDocs();
  if (values.write === true) {
    writeFileSync(docsPath, text);
    console.log(`wrote ${docsPath}`);
  } else {
    process.stdout.write(text);
  }
  return 0;
}

function parsePort(text: string, what: string, min = 1, max = 65535): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new UsageError(`${what}: expected a port ${min}–${max}, got "${text}"`, 'dev-site');
  }
  return Number(text);
}

/** HOST:PORT[:AET]; the host may be a bracketed IPv6 literal. */
function splitEndpoint(text: string, option: string, parts: 2 | 3): string[] {
  const match = parts === 2 ? /^(\[[^\]]+\]|[^:]+):([^:]+)$/.exec(text) : /^(\[[^\]]+\]|[^:]+):([^:]+):(.+)$/.exec(text);
  if (match === null) throw new UsageError(`${option}: expected ${parts === 2 ? 'HOST:PORT' : 'HOST:PORT:AET'}, got "${text}"`, 'dev-site');
  return match.slice(1).map((p, i) => (i === 0 ? p.replace(/^\[(.*)\]$/, '$1') : p));
}

async function devSite(args: string[]): Promise<number> {
  const { values, positionals } = parse(
    args,
    {
      dir: { type: 'string' },
      'base-port': { type: 'string' },
      ris: { type: 'string' },
      pacs: { type: 'string' },
      force: { type: 'boolean' },
    },
    'dev-site',
  );
  if (values.help === true) return showHelp('dev-site');
  if (positionals.length > 0) throw new UsageError(`unexpected argument: ${positionals[0] ?? ''}`, 'dev-site');
  if (values.dir === undefined || values.dir === '') throw new UsageError('dev-site needs --dir DIR', 'dev-site');
  const basePort = values['base-port'] === undefined ? defaultBasePort : parsePort(values['base-port'], '--base-port', 1, 65533);
  let ris: { host: string; port: number } | undefined;
  if (values.ris !== undefined) {
    const [h = '', p = ''] = splitEndpoint(values.ris, '--ris', 2);
    ris = { host: h, port: parsePort(p, '--ris') };
  }
  let pacs: { host: string; port: number; aeTitle: string } | undefined;
  if (values.pacs !== undefined) {
    const [h = '', p = '', aet = ''] = splitEndpoint(values.pacs, '--pacs', 3);
    pacs = { host: h, port: parsePort(p, '--pacs'), aeTitle: aet };
  }
  try {
    const site = await writeDevSite({
      dir: values.dir,
      basePort,
      force: values.force === true,
      ...(ris === undefined ? {} : { ris }),
      ...(pacs === undefined ? {} : { pacs }),
    });
    console.log(`wrote a development site to ${dirname(site.configFile)}`);
    console.log(`  config  ${site.configFile}`);
    console.log(`  peers   ${resolve(dirname(site.configFile), 'site.json')}`);
    console.log(
      `  hl7 ${site.box.host}:${site.box.hl7Port}  dicom tls ${site.box.dicomTlsPort}  plain ${site.box.dicomPlainPort}  AE ${site.box.aeTitle}`,
    );
    console.log('  keys.backend is "file": for development only');
    return 0;
  } catch (err) {
    if (err instanceof SiteExistsError) {
      console.error(`edgectl: ${err.message}`);
      return 1;
    }
    // Values in the user's input (an invalid AE title for --pacs) surface as config errors.
    if (isEdgeError(err, 'EDGE_CONFIG_INVALID')) {
      console.error(`edgectl: ${err.message}`);
      return 2;
    }
    throw err;
  }
}

function showHelp(topic: HelpTopic): number {
  console.log(help[topic]);
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [command, sub, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
        console.error(help.main);
        return 2;
      case '-h':
      case '--help':
        return showHelp('main');
      case 'help': {
        const topic = [sub, ...rest].filter((s) => s !== undefined).join(' ');
        if (topic === '') return showHelp('main');
        if (Object.hasOwn(help, topic)) return showHelp(topic as HelpTopic);
        throw new UsageError(`no help for "${topic}"`, 'main');
      }
      case 'config':
        if (sub === 'check') return await configCheck(rest);
        if (sub === 'docs') return configDocs(rest);
        if (sub === '-h' || sub === '--help') return showHelp('main');
        if (sub === undefined) throw new UsageError('config needs a command: check or docs', 'main');
        throw new UsageError(`unknown config command "${sub}"`, 'main');
      case 'dev-site':
        return await devSite(argv.slice(1));
      case 'dev-account': {
        const { values } = parse(argv.slice(1), { dir: { type: 'string' } }, 'dev-account');
        if (values.help === true) return showHelp('dev-account');
        if (values.dir === undefined) throw new UsageError('dev-account needs --dir DIR', 'dev-account');
        const r = await ensureDevAccount(values.dir);
        if (r.created) console.log(`created the admin page account "dev"; its password is in ${r.passwordFile}`);
        return 0;
      }
      case 'site-info': {
        const { values } = parse(argv.slice(1), { dir: { type: 'string' } }, 'site-info');
        if (values.help === true) return showHelp('site-info');
        if (values.dir === undefined) throw new UsageError('site-info needs --dir DIR', 'site-info');
        return siteInfo(values.dir);
      }
      case 'audit':
        return await auditCommand(argv.slice(1));
      case 'queue':
        return await queueCommand(argv.slice(1));
      case 'user':
        return await userCommand(argv.slice(1));
      case 'worklist':
        return await worklistCommand(argv.slice(1));
      case 'order':
        return await orderCommand(argv.slice(1));
      case 'provision':
        return await provisionCommand(argv.slice(1));
      case 'cert':
        return await certCommand(argv.slice(1));
      case 'keys':
        return await keysCommand(argv.slice(1));
      case 'decommission':
        return await decommissionCommand(argv.slice(1));
      case 'update':
        return await updateCommand(argv.slice(1));
      case 'peer':
        return await peerCommand(argv.slice(1));
      case 'alert':
        return await alertCommand(argv.slice(1));
      case 'report':
        return await reportCommand(argv.slice(1));
      case 'backup':
        return await backupCommand(argv.slice(1));
      case 'restore':
        return await restoreCommand(argv.slice(1));
      case 'segmentation':
        return await segmentationCommand(argv.slice(1));
      case 'status': {
        const { values } = parse(argv.slice(1), { config: { type: 'string' }, json: { type: 'boolean' } }, 'status');
        if (values.help === true) return showHelp('status');
        if (values.config === undefined) throw new UsageError('status needs --config FILE', 'status');
        return await status(values.config, values.json === true);
      }
      default:
        throw new UsageError(`unknown command "${command}"`, 'main');
    }
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`edgectl: ${err.message}`);
      console.error(`Run 'edgectl ${err.topic === 'main' ? '' : `${err.topic} `}--help' for usage.`);
      return 2;
    }
    throw err;
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      console.error(`edgectl: ${err instanceof Error ? err.message : String(err)}`);
      process.exitCode = 1;
    },
  );
}
