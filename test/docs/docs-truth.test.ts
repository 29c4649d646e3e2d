// The operator pages go stale in one direction: a feature lands and the page that said "not built yet"
// keeps saying it, so a field engineer skips the TPM backend or backups the box has. Each shipped
// feature below names how the docs refer to it and a symbol that proves it is in the code; any doc
// sentence, table row or list item that mentions it and says it is not built fails the test, as does
// every item of a "Still to build" / "Not done yet" section that names it.
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ApplianceLayout } from '../../provisioning/appliance-layout.ts';
import { REPO_ROOT } from '../support/paths.ts';

interface ShippedFeature {
  readonly feature: string;
  /** How the docs refer to it; specific enough that a true "not yet" about something next to it does not match. */
  readonly mentions: RegExp;
  /** An exported symbol that exists only because the feature is built: `[folder under the repo, name]`. */
  readonly proof: readonly [string, string];
}

const SHIPPED: readonly ShippedFeature[] = [
  { feature: 'TPM key backend', mentions: /\bTPM (key )?backend|\btpm key backend|keys\.backend:? ?"?tpm\b|\bsealed by the TPM\b/i, proof: ['daemon', 'TpmKeySource'] },
  { feature: 'safe mode', mentions: /\bsafe mode\b/i, proof: ['daemon', 'recordSafeModeEvent'] },
  { feature: 'data-key rotation', mentions: /\brotate-data-key\b|\b(data-)?key rotation\b/i, proof: ['daemon', 'rotateDataKey'] },
  { feature: 'backup and restore', mentions: /\bedgectl (backup|restore)\b|\bbackup\/restore\b|\bbackup(,| and) restore\b/i, proof: ['provisioning', 'restoreCommand'] },
  { feature: 'decommissioning', mentions: /\bdecommission/i, proof: ['provisioning', 'decommission'] },
  { feature: 'edgectl provision', mentions: /\bedgectl provision\b/, proof: ['provisioning', 'provision'] },
  { feature: 'edgectl config check', mentions: /\bconfig check\b/, proof: ['daemon', 'checkConfig'] },
  { feature: 'live peer reload', mentions: /\bedgectl peer\b|\bsystemctl reload edged\b/, proof: ['provisioning', 'peerCommand'] },
  { feature: 'MPPS', mentions: /\bMPPS\b(?! Notification| Retrieve)/, proof: ['daemon', 'mppsServices'] },
  { feature: 'Storage SCP', mentions: /\bC-STORE\b|\bStorage SCP\b|\bStorage\b(?! Commitment)/, proof: ['daemon', 'storageServices'] },
  { feature: 'status to the RIS', mentions: /\boutbound HL7\b|\bHL7 status\b|\bstatus (messages )?to the RIS\b/i, proof: ['daemon', 'MllpStatusSender'] },
  { feature: 'forwarding to the PACS', mentions: /\bSTOW-RS\b|\bC-STORE SCU\b|\boutbound (HL7\/)?DICOM\b|\bforward(ing|s)? (instances |images )?to the PACS\b/i, proof: ['daemon', 'storeBatch'] },
  { feature: 'audit bundles and the pull API', mentions: /\baudit export\b|\bbundle export\b|\bpull API\b|\baudit bundles?\b|\bsigned bundles?\b/i, proof: ['daemon', 'exportBundle'] },
  { feature: 'syslog-TLS audit stream', mentions: /\bsyslog\b/i, proof: ['daemon', 'SyslogSender'] },
  { feature: 'audit chain head anchor', mentions: /\bhead anchor\b|\baudit\.integrity\b|\bchain-truncated\b/, proof: ['daemon', 'TpmAuditCounter'] },
  { feature: 'segmentation firewall', mentions: /\bsegmentation\b|\bedge-firewall\b/i, proof: ['daemon', 'renderLoadScript'] },
  { feature: 'systemd watchdog', mentions: /\bwatchdog\b/i, proof: ['daemon', 'SystemdWatchdog'] },
  { feature: 'environments and processing ids', mentions: /\bsite\.environment\b|\bprocessing ids?\b|\bMSH-11\b/i, proof: ['daemon', 'processingIdPolicy'] },
  { feature: 'full-disk recovery', mentions: /\bfull disk\b|\bstore\.recovered\b/i, proof: ['daemon', 'StoreRecovery'] },
];

/** Words that say a thing is not there, matched outside `code spans` (`- planned, not loaded` is nft output; "Planned Imaging Agent Administration SR" is a SOP class). */
const NOT_BUILT = /\bnot (yet )?built\b|\bnot (yet )?implemented\b|\bnot yet\b|\bplanned\b(?! lines?\b| rules?\b| table\b| imaging agent\b)|\bto come\b|\bnot started\b|\bto build\b|\bdoes not exist yet\b|\bnot done\b/i;

function files(dir: string, keep: (name: string) => boolean): string[] {
  return readdirSync(join(REPO_ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : files(path, keep);
    return keep(e.name) ? [path] : [];
  });
}

/** The operator-facing pages, and the appliance units whose comments are docs too. */
const DOCS = ['README.md', ...files('docs', (n) => n.endsWith('.md')), 'image/README.md', 'web-admin/README.md', ...files('image', (n) => /\.(service|path|timer)$/.test(n))];

interface Statement {
  readonly where: string;
  readonly text: string;
  /** The heading it sits under says its items are not built ("## Still to build"). */
  readonly inNotBuiltSection: boolean;
}

/**
 * A page as statements: a table row, a list item or a paragraph (lines joined), split into sentences;
 * fenced code is left out.
 */
function statements(file: string, text: string): Statement[] {
  const out: Statement[] = [];
  let heading = '';
  let block: { start: number; lines: string[] } | undefined;
  let fenced = false;
  const flush = (): void => {
    if (block === undefined) return;
    const joined = block.lines.join(' ').replace(/\s+/g, ' ').trim();
    for (const sentence of joined.split(/(?<=[.!?])\s+(?=[A-Z`(*])/)) {
      out.push({ where: `${file}:${block.start}`, text: sentence, inNotBuiltSection: NOT_BUILT.test(heading) });
    }
    block = undefined;
  };
  text.split('\n').forEach((raw, i) => {
    // In a unit file only the comments are prose; each block of them is one paragraph.
    if (!file.endsWith('.md') && !raw.startsWith('#')) {
      flush();
      return;
    }
    const line = (file.endsWith('.md') ? raw : raw.replace(/^#\s?/, '')).trimEnd();
    if (/^\s*```/.test(line)) {
      flush();
      fenced = !fenced;
      return;
    }
    if (fenced) return;
    if (file.endsWith('.md') && /^#{1,6} /.test(line)) {
      flush();
      heading = line;
      return;
    }
    const startsUnit = line.trim() === '' || /^\s*(\||[-*] |\d+\. )/.test(line) || /^\[/.test(line);
    if (startsUnit) flush();
    if (line.trim() === '' || /^\[/.test(line)) return;
    if (block === undefined) block = { start: i + 1, lines: [] };
    block.lines.push(line);
    if (line.startsWith('|')) flush();
  });
  flush();
  return out;
}

function withoutCode(s: string): string {
  return s.replace(/`[^`]*`/g, '``');
}

/** Statements that mention a shipped feature and say it is not built. */
function staleStatements(docs: readonly { file: string; text: string }[], shipped: readonly ShippedFeature[]): string[] {
  const found: string[] = [];
  for (const { file, text } of docs) {
    for (const s of statements(file, text)) {
      const denies = s.inNotBuiltSection || NOT_BUILT.test(withoutCode(s.text));
      if (!denies) continue;
      for (const f of shipped) {
        if (f.mentions.test(s.text)) found.push(`${s.where} (${f.feature}): ${s.text.slice(0, 160)}`);
      }
    }
  }
  return found;
}

const sources = [...files('daemon', (n) => n.endsWith('.ts') && !n.endsWith('.test.ts')), ...files('provisioning', (n) => n.endsWith('.ts') && !n.endsWith('.test.ts'))].map(
  (f) => ({ file: f, text: readFileSync(join(REPO_ROOT, f), 'utf8') }),
);

test('every feature in the table is in the code (its proof symbol is exported)', (t) => {
  for (const { feature, proof: [folder, name] } of SHIPPED) {
    const exported = new RegExp(`^export (async )?(function|class|const|interface|type) ${name}\\b`, 'm');
    const where = sources.filter((s) => s.file.startsWith(`${folder}/`) && exported.test(s.text)).map((s) => s.file);
    t.true(where.length > 0, `${feature}: no export named ${name} under ${folder}/; if the feature was removed, take it out of SHIPPED`);
  }
});

test('every feature in the table is mentioned somewhere in the docs (its pattern matches)', (t) => {
  const all = DOCS.map((f) => readFileSync(join(REPO_ROOT, f), 'utf8')).join('\n');
  for (const { feature, mentions } of SHIPPED) t.regex(all, mentions, `${feature}: the pattern matches no doc, so it guards nothing`);
});

test('the check finds a stale sentence across lines, in a table row and under a "Still to build" heading', (t) => {
  const page = [
    '# Page',
    '',
    'The TPM backend, key rotation and',
    'decommissioning commands are not built yet. Other things are fine.',
    '',
    '| part | status |',
    '| --- | --- |',
    '| data key sealed by the TPM | not built |',
    '| output of verify | `- planned, not loaded` |',
    '',
    '## Still to build',
    '',
    '1. `edgectl provision`: site config.',
    '',
    '## Done',
    '',
    'MPPS is served.',
  ].join('\n');
  const found = staleStatements([{ file: 'x.md', text: page }], SHIPPED);
  t.deepEqual(
    found.map((f) => f.replace(/\): .*/, ')')),
    ['x.md:3 (TPM key backend)', 'x.md:3 (data-key rotation)', 'x.md:3 (decommissioning)', 'x.md:8 (TPM key backend)', 'x.md:13 (edgectl provision)'],
  );
});

test('no doc says a shipped feature is not built, planned or to come', (t) => {
  const docs = DOCS.map((file) => ({ file, text: readFileSync(join(REPO_ROOT, file), 'utf8') }));
  t.true(docs.length >= 15, `only ${docs.length} docs read`);
  t.deepEqual(staleStatements(docs, SHIPPED), [], 'these statements say a shipped feature is missing: make them true');
});

test('docs, units and code name one appliance layout: prefix, configuration and data directory', (t) => {
  const { prefix, configFile, dataDir, dataVolume } = ApplianceLayout;
  const configDir = dirname(configFile);
  // Any /etc, /opt or /var/lib path of the box (its name has "edge" in it) must be the layout's.
  const boxPath = /(?<![\w.])\/(etc|opt|var\/lib)\/([\w.-]*edge[\w.-]*)/g;
  const allowed = new Set([configDir, prefix, dataDir, dataVolume]);
  const texts = [...DOCS.map((file) => ({ file, text: readFileSync(join(REPO_ROOT, file), 'utf8') })), ...sources];
  const other = texts.flatMap(({ file, text }) => [...text.matchAll(boxPath)].map((m) => m[0]).filter((p) => !allowed.has(p)).map((p) => `${file}: ${p}`));
  t.deepEqual(other, [], `the appliance keeps edged under ${prefix}, ${configDir}/ and ${dataDir}`);

  const unit = (name: string): string => readFileSync(join(REPO_ROOT, 'image', name), 'utf8');
  const edged = unit('edged.service');
  t.regex(edged, new RegExp(`^ExecStart=${prefix}/bin/edged --config ${configFile}$`, 'm'));
  t.regex(edged, new RegExp(`^ReadWritePaths=${dataDir}$`, 'm'));
  t.regex(edged, new RegExp(`^WorkingDirectory=${dataDir}$`, 'm'));
  t.regex(edged, new RegExp(`^StateDirectory=${basename(dataDir)}$`, 'm'), 'systemd creates /var/lib/<StateDirectory>');
  for (const name of ['edge-firewall.service', 'edge-firewall-reload.service', 'edge-firewall-verify.service']) {
    t.regex(unit(name), new RegExp(`^ExecStart=${prefix}/bin/edgectl segmentation \\w+ --config ${configFile} `, 'm'), name);
  }
  t.regex(unit('edge-firewall.path'), new RegExp(`^PathChanged=${configFile}$`, 'm'));
});
