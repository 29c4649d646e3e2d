// Renders the operator reference (docs/config.md) from the schema, so the two cannot drift apart.
// `edgectl config docs --write` regenerates it; a test fails when the checked-in file is stale.
import { edgeConfigSchema } from './edge-config-schema.ts';
import { IssueCode } from './schema-kit.ts';
import type { Presence, Schema } from './schema-kit.ts';

type AnySchema = Schema<unknown, Presence>;

function cell(text: string): string {
  return text.replaceAll('|', '\\|').replaceAll('\n', ' ');
}

function presenceOf(schema: AnySchema): string {
  if (schema.presence === 'required') return 'required';
  if (schema.presence === 'optional') return 'optional';
  if (schema.defaultText !== undefined) return schema.defaultText;
  const value = schema.defaultValue;
  if (typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 0) {
    return 'defaults below';
  }
  return `\`${JSON.stringify(value)}\``;
}

interface Row {
  readonly path: string;
  readonly type: string;
  readonly presence: string;
  readonly description: string;
  /** Variants the row applies to; empty = always. */
  readonly when: string[];
}

/** Fields shared by every variant of a union are shown once; the others say which variant they belong to. */
function addRow(rows: Row[], row: Row): void {
  const same = rows.find(
    (r) => r.path === row.path && r.type === row.type && r.presence === row.presence && r.description === row.description,
  );
  if (same === undefined) rows.push(row);
  else if (same.when.length > 0) same.when.push(...row.when);
}

function walk(schema: AnySchema, path: string, when: readonly string[], rows: Row[]): void {
  const doc = schema.doc;
  const item = doc.item;
  if (item?.doc.fields !== undefined || item?.doc.variants !== undefined) {
    walk(item, `${path}[]`, when, rows);
    return;
  }
  for (const { key, schema: child } of doc.fields ?? []) {
    const childPath = path === '' ? key : `${path}.${key}`;
    addRow(rows, {
      path: childPath,
      type: child.doc.type,
      presence: presenceOf(child),
      description: child.doc.description,
      when: [...when],
    });
    walk(child, childPath, when, rows);
  }
  if (doc.variants !== undefined) {
    const { key, map, defaultTag } = doc.variants;
    const names = Object.keys(map);
    const tagPath = path === '' ? key : `${path}.${key}`;
    const variantsDoc = names.map((n) => `${JSON.stringify(n)}: ${map[n]?.doc.description ?? ''}`).join('; ');
    addRow(rows, {
      path: tagPath,
      type: names.map((n) => JSON.stringify(n)).join(' | '),
      presence: defaultTag === undefined ? 'required' : `\`${JSON.stringify(defaultTag)}\``,
      description: `selects the variant (${variantsDoc}); the keys below say which variant they belong to`,
      when: [...when],
    });
    for (const name of names) {
      const variant = map[name];
      if (variant === undefined) continue;
      const only = [`${key} ${JSON.stringify(name)}`];
      walk(variant, path, only, rows);
      for (const [ignored, why] of Object.entries(variant.doc.ignoredKeys ?? {})) {
        rows.push({
          path: path === '' ? ignored : `${path}.${ignored}`,
          type: '—',
          presence: 'ignored (warning)',
          description: why,
          when: [...only],
        });
      }
    }
    // A field present in every variant applies always.
    for (const row of rows) {
      if (row.when.length === names.length && row.when.every((w) => w.startsWith(`${key} `))) row.when.length = 0;
    }
  }
}

function renderRow(row: Row): string {
  const when = row.when.length === 0 ? '' : ` (only with ${row.when.join(', ')})`;
  return `| \`${row.path}\` | ${cell(row.type)} | ${cell(row.presence)} | ${cell(row.description + when)} |`;
}

export function renderConfigDocs(): string {
  const top = edgeConfigSchema.doc.fields ?? [];
  const out: string[] = [
    '# Configuration reference',
    '',
    '<!-- Generated from daemon/config/edge-config-schema.ts by `bin/edgectl config docs --write`. Do not edit. -->',
    '',
    'The box reads one JSON file (`bin/edged --config FILE`). Check it with `bin/edgectl config check FILE [--bind]`:',
    'every issue is listed at once with its path (e.g. `dicom.modalities[1].aeTitle`); the exit status is 0 when',
    'there is no error (warnings allowed), 1 otherwise.',
    '',
    'Rules that hold everywhere:',
    '',
    '- Unknown keys are errors, so a misspelt key never silently falls back to a default.',
    '- Durations end in `Ms` (milliseconds) or `Hours`, sizes in `Bytes` (`maxPduLength` is in bytes, as PS3.8 names it).',
    '- Relative paths are resolved against the folder of the config file. Secrets (private keys, the data key)',
    '  are referenced by path only, never written into the config; they should be mode 0600 (a warning otherwise).',
    '- Referenced files must exist and be readable by the user the check runs as (an error otherwise; run the',
    '  check as the user edged runs as). Certificates and keys are parsed as PEM, `tls.keyFile` must be the key of',
    '  the first certificate in `tls.certFile`, and the file data key must hold at least 32 bytes.',
    '  `dataDir` (and `dicom.storage.spool.directory`) is created by the daemon and may not be under /proc, /sys',
    '  or /dev; it, or the nearest part of its path that exists, must be a folder that user may write into.',
    '- `upstream.pacs` is one of two routes (`protocol` `"dimse"`, the default, or `"stow"`); each takes only its',
    '  own keys, so a route that could not work is reported here with its path, not found when edged starts.',
    '- A key that appears twice in one JSON object is an error (JSON would silently keep the last one).',
    '- Listeners bind one address: a wildcard host needs `allowAllInterfaces: true`. A plain modality allowed',
    '  from a block wider than /24 (IPv4) or /64 (IPv6) draws a warning.',
    '- AE titles: 1–16 printable ASCII characters, no backslash, not only spaces; leading and trailing spaces',
    '  are not significant. Addresses are `address/prefix` (CIDR) or a single address.',
    '- Listener ports may be 0 (any free port) for tests; outbound ports are 1–65535.',
    '',
    '## Issue codes',
    '',
    '| code | meaning |',
    '| --- | --- |',
    ...Object.values(IssueCode).map((code) => `| \`${code}\` | ${issueMeaning[code]} |`),
    '',
  ];
  for (const { key, schema } of top) {
    const about = schema.doc.description.charAt(0).toUpperCase() + schema.doc.description.slice(1);
    out.push(`## \`${key}\``, '', cell(about) + (schema.presence === 'required' ? ' (required).' : '.'), '');
    out.push('| key | type | default | meaning |', '| --- | --- | --- | --- |');
    const rows: Row[] = [{ path: key, type: schema.doc.type, presence: presenceOf(schema), description: schema.doc.description, when: [] }];
    walk(schema, key, [], rows);
    out.push(...rows.map(renderRow));
    out.push('');
  }
  return out.join('\n');
}

const issueMeaning: Record<(typeof IssueCode)[keyof typeof IssueCode], string> = {
  'unknown-key': 'a key the schema does not know (error)',
  required: 'a required key is missing (error)',
  'wrong-type': 'the value has the wrong JSON type (error)',
  'out-of-range': 'a number, length or item count is outside its range (error)',
  'invalid-value': 'the value has the wrong syntax: AE title, address, UID, keyword… (error)',
  duplicate: 'a name, AE title, certificate CN, sender or port is used twice (error)',
  inconsistent: 'settings contradict each other (error or warning, as stated)',
  'file-not-found': 'a referenced file or folder does not exist or is of the wrong kind (error)',
  'permission-denied': 'a referenced file exists but this user cannot read it; the message names the user (error)',
  'invalid-file-content':
    'a certificate, key or data key file does not hold what it should: no PEM, unparsable, encrypted, too short (error)',
  'key-mismatch': '`tls.keyFile` is not the private key of the certificate in `tls.certFile` (error)',
  'all-interfaces': 'a listener on a wildcard address (`0.0.0.0`, `::`) without `allowAllInterfaces: true` (error)',
  'unsafe-location': '`dataDir` or the spool folder is under /proc, /sys or /dev, also through a symbolic link (error)',
  'file-permissions': 'a private key file is readable by group or others (warning)',
  'development-only': 'a setting meant for development only, e.g. `keys.backend: "file"` (warning)',
  insecure: 'an outbound leg without TLS, or a plain modality allowed from a block wider than /24 (IPv4) or /64 (IPv6) (warning)',
  'no-peers': 'no HL7 peer is configured, so every connection is refused (warning)',
  'overlapping-rules':
    'two station assignment rules of equal priority can match the same order with different stations, so only their order in the file decides (warning)',
  'bind-failed': '`--bind` only: a listener address cannot be bound (error)',
  'ignored-key':
    'a key the chosen variant does not read, accepted from configs written before the variant existed; its value is ignored (warning)',
  unreadable: 'the file cannot be read or is not valid JSON (error)',
};
