// The segmentation plan: who may reach which listener of the box, and what the box itself may reach,
// derived from the peer policy in the configuration. Pure: the ruleset (segmentation-ruleset.ts), the
// readable table and the drift check are all rendered from this one model, so they cannot disagree.
import { isIP } from 'node:net';

/** The part of the configuration the plan reads (structurally the EdgeConfig; security/ imports only core). */
export interface SegmentationInput {
  readonly hl7: {
    readonly listen: ListenInput;
    readonly peers: ReadonlyArray<{ readonly name: string; readonly addresses?: readonly string[] | undefined }>;
  };
  readonly dicom: {
    readonly tls?: ListenInput | undefined;
    readonly plain?: ListenInput | undefined;
    readonly modalities: ReadonlyArray<{
      readonly name: string;
      readonly transport: 'tls' | 'plain';
      readonly addresses?: readonly string[] | undefined;
    }>;
  };
  readonly upstream: {
    readonly ris?: { readonly host: string; readonly port: number } | undefined;
    readonly pacs?:
      | { readonly protocol: 'dimse'; readonly host: string; readonly port: number }
      | { readonly protocol: 'stow'; readonly stowUrl: string }
      | undefined;
  };
  readonly audit: {
    readonly collectors: ReadonlyArray<{ readonly name: string; readonly host: string; readonly port: number }>;
    readonly pull?: { readonly listen: ListenInput } | undefined;
  };
  readonly admin?: { readonly listen: ListenInput } | undefined;
  readonly network: {
    readonly ntpServers: readonly string[];
    readonly dnsServers: readonly string[];
    readonly hostAddresses: ReadonlyArray<{ readonly host: string; readonly addresses: readonly string[] }>;
    readonly auditPullClients?: readonly string[] | undefined;
    readonly adminClients?: readonly string[] | undefined;
    readonly interfaces: {
      readonly hl7?: string | undefined;
      readonly dicomTls?: string | undefined;
      readonly dicomPlain?: string | undefined;
      readonly auditPull?: string | undefined;
      readonly admin?: string | undefined;
    };
    readonly dropLogPerMinute: number;
  };
}

interface ListenInput {
  readonly host: string;
  readonly port: number;
}

/** Addresses and CIDR blocks by family, overlaps removed, sorted. */
export interface AddressSet {
  readonly v4: readonly string[];
  readonly v6: readonly string[];
}

/** One listener port and who may open connections to it. */
export interface IngressRule {
  /** Stable id: names the rule's sets and its nft comment, so counters and drift map back to it. */
  readonly id: string;
  readonly service: string;
  /** The config field the listener comes from. */
  readonly field: string;
  readonly port: number;
  readonly iface?: string;
  /** `any`: some peer of this listener has no address restriction, so only the daemon decides. */
  readonly sources: AddressSet | 'any';
  /** For the readable table: who the sources are. */
  readonly peers: ReadonlyArray<{ readonly name: string; readonly addresses: readonly string[] | 'any' }>;
}

/** One destination the box may open connections to. */
export interface EgressRule {
  readonly id: string;
  readonly purpose: string;
  readonly field: string;
  readonly protocols: ReadonlyArray<'tcp' | 'udp'>;
  readonly port: number;
  readonly destinations: AddressSet;
}

export interface SegmentationPlan {
  readonly table: typeof segmentationTable;
  readonly ingress: readonly IngressRule[];
  readonly egress: readonly EgressRule[];
  readonly dropLogPerMinute: number;
  /** Things that weaken segmentation but are not errors (a listener open to any source). */
  readonly warnings: readonly string[];
}

export const segmentationTable = { family: 'inet', name: 'imaging_edge' } as const;

export interface PlanProblem {
  readonly field: string;
  readonly message: string;
}

export type PlanResult =
  { readonly ok: true; readonly plan: SegmentationPlan } | { readonly ok: false; readonly problems: readonly PlanProblem[] };

/**
 * Builds the plan, or every problem found (a malformed address names its config field). Nothing is
 * rendered from a configuration with problems.
 */
export function buildSegmentationPlan(input: SegmentationInput): PlanResult {
  const problems: PlanProblem[] = [];
  const warnings: string[] = [];
  const ingress: IngressRule[] = [];
  const egress: EgressRule[] = [];
  const ifaces = input.network.interfaces;

  const listenerPort = (field: string, l: ListenInput): number | undefined => {
    if (!Number.isInteger(l.port) || l.port < 1 || l.port > 65535) {
      problems.push({ field: `${field}.port`, message: `is ${l.port}: the firewall needs a fixed port (1–65535)` });
      return undefined;
    }
    return l.port;
  };

  const addIngress = (
    id: string,
    service: string,
    field: string,
    listen: ListenInput,
    iface: string | undefined,
    peers: ReadonlyArray<{ name: string; field: string; addresses?: readonly string[] | undefined }>,
  ): void => {
    const port = listenerPort(field, listen);
    if (port === undefined) return;
    const blocks: string[] = [];
    const open = peers.filter((p) => p.addresses === undefined).map((p) => p.name);
    for (const p of peers) {
      p.addresses?.forEach((a, i) => {
        const problem = cidrSyntaxProblem(a);
        if (problem === undefined) blocks.push(a);
        else problems.push({ field: `${p.field}.addresses[${i}]`, message: `"${a}" ${problem}` });
      });
    }
    if (open.length > 0) {
      warnings.push(
        `${service} (${field}, port ${port}) is open to any source: ${open.join(', ')} ${open.length === 1 ? 'has' : 'have'} no addresses`,
      );
    }
    ingress.push({
      id,
      service,
      field,
      port,
      ...(iface === undefined ? {} : { iface }),
      sources: open.length > 0 ? 'any' : addressSet(blocks),
      peers: peers.map((p) => ({ name: p.name, addresses: p.addresses ?? 'any' })),
    });
  };

  addIngress(
    'hl7',
    'HL7 MLLP/TLS (RIS)',
    'hl7.listen',
    input.hl7.listen,
    ifaces.hl7,
    input.hl7.peers.map((p, i) => ({ name: p.name, field: `hl7.peers[${i}]`, addresses: p.addresses })),
  );
  const modalities = input.dicom.modalities.map((m, i) => ({ ...m, field: `dicom.modalities[${i}]` }));
  if (input.dicom.tls !== undefined) {
    addIngress(
      'dicom_tls',
      'DICOM TLS (modalities)',
      'dicom.tls',
      input.dicom.tls,
      ifaces.dicomTls,
      modalities.filter((m) => m.transport === 'tls'),
    );
  }
  if (input.dicom.plain !== undefined) {
    addIngress(
      'dicom_plain',
      'DICOM plain (legacy modalities)',
      'dicom.plain',
      input.dicom.plain,
      ifaces.dicomPlain,
      modalities.filter((m) => m.transport === 'plain'),
    );
  }
  if (input.audit.pull !== undefined) {
    addIngress('audit_pull', 'audit pull API (central security team)', 'audit.pull.listen', input.audit.pull.listen, ifaces.auditPull, [
      { name: 'central security team', field: 'network.auditPullClients', addresses: input.network.auditPullClients },
    ]);
  }
  if (input.admin !== undefined) {
    addIngress('admin', 'admin listener (hospital IT, the admin page)', 'admin.listen', input.admin.listen, ifaces.admin, [
      { name: 'admin segment', field: 'network.adminClients', addresses: input.network.adminClients },
    ]);
  }

  const named = new Map(input.network.hostAddresses.map((h) => [h.host.toLowerCase(), h]));
  const resolve = (field: string, host: string): string[] | undefined => {
    if (isIP(host) !== 0) return [host];
    const entry = named.get(host.toLowerCase());
    if (entry === undefined) {
      problems.push({
        field,
        message: `"${host}" is a host name: list its addresses in network.hostAddresses (the firewall matches addresses)`,
      });
      return undefined;
    }
    const index = input.network.hostAddresses.indexOf(entry);
    const good: string[] = [];
    entry.addresses.forEach((a, i) => {
      const problem = cidrSyntaxProblem(a);
      if (problem === undefined) good.push(a);
      else problems.push({ field: `network.hostAddresses[${index}].addresses[${i}]`, message: `"${a}" ${problem}` });
    });
    return good;
  };
  const addEgress = (
    id: string,
    purpose: string,
    field: string,
    host: string,
    port: number,
    protocols: ReadonlyArray<'tcp' | 'udp'>,
  ): void => {
    const addresses = resolve(field, host);
    if (addresses !== undefined) egress.push({ id, purpose, field, protocols, port, destinations: addressSet(addresses) });
  };

  const { ris, pacs } = input.upstream;
  if (ris !== undefined) addEgress('ris', 'RIS procedure status (MLLP)', 'upstream.ris.host', ris.host, ris.port, ['tcp']);
  if (pacs !== undefined && pacs.protocol === 'dimse')
    addEgress('pacs', 'PACS C-STORE', 'upstream.pacs.host', pacs.host, pacs.port, ['tcp']);
  if (pacs !== undefined && pacs.protocol === 'stow') {
    const target = stowTarget(pacs.stowUrl);
    if (target === undefined) problems.push({ field: 'upstream.pacs.stowUrl', message: 'must be an http(s) URL for protocol "stow"' });
    else addEgress('stow', 'PACS STOW-RS (HTTPS)', 'upstream.pacs.stowUrl', target.host, target.port, ['tcp']);
  }
  input.audit.collectors.forEach((c, i) => {
    addEgress(`syslog_${i}`, `audit stream to ${c.name} (syslog-TLS)`, `audit.collectors[${i}].host`, c.host, c.port, ['tcp']);
  });
  const infrastructure = (
    id: string,
    purpose: string,
    field: string,
    list: readonly string[],
    port: number,
    protocols: ReadonlyArray<'tcp' | 'udp'>,
  ) => {
    const good: string[] = [];
    list.forEach((a, i) => {
      if (isIP(a) === 0) problems.push({ field: `${field}[${i}]`, message: `"${a}" must be an IPv4 or IPv6 address literal` });
      else good.push(a);
    });
    if (good.length > 0) egress.push({ id, purpose, field, protocols, port, destinations: addressSet(good) });
  };
  infrastructure('ntp', 'time (NTP)', 'network.ntpServers', input.network.ntpServers, 123, ['udp']);
  infrastructure('dns', 'name resolution (DNS)', 'network.dnsServers', input.network.dnsServers, 53, ['udp', 'tcp']);

  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, plan: { table: segmentationTable, ingress, egress, dropLogPerMinute: input.network.dropLogPerMinute, warnings } };
}

function stowTarget(url: string | undefined): { host: string; port: number } | undefined {
  if (url === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return undefined;
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = parsed.port === '' ? (parsed.protocol === 'https:' ? 443 : 80) : Number(parsed.port);
  return { host, port };
}

/** Why `value` is not an address or a network address/prefix, or undefined. */
export function cidrSyntaxProblem(value: string): string | undefined {
  const parsed = parseCidr(value);
  return typeof parsed === 'string' ? parsed : undefined;
}

interface Block {
  readonly family: 4 | 6;
  readonly first: bigint;
  readonly last: bigint;
  readonly text: string;
}

function parseCidr(value: string): Block | string {
  const slash = value.indexOf('/');
  const address = slash === -1 ? value : value.slice(0, slash);
  const family = isIP(address);
  if (family !== 4 && family !== 6) return 'is not an IP address or address/prefix (CIDR)';
  const bits = family === 4 ? 32 : 128;
  const prefixText = slash === -1 ? String(bits) : value.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > bits) return `has a prefix length outside 0–${bits}`;
  const prefix = BigInt(prefixText);
  const n = family === 4 ? ipv4Number(address) : ipv6Number(address);
  const size = 1n << (BigInt(bits) - prefix);
  if (n % size !== 0n) return `has host bits set below /${prefixText}`;
  const canonical = family === 4 ? ipv4Text(n) : ipv6Text(n);
  return { family, first: n, last: n + size - 1n, text: prefix === BigInt(bits) ? canonical : `${canonical}/${prefixText}` };
}

/** Deduplicates and drops blocks inside other blocks (nft refuses overlapping intervals), sorted by address. */
export function addressSet(values: readonly string[]): AddressSet {
  const blocks = values.map(parseCidr).filter((b): b is Block => typeof b !== 'string');
  const pick = (family: 4 | 6): string[] => {
    const sorted = blocks
      .filter((b) => b.family === family)
      .sort((a, b) => (a.first === b.first ? (a.last > b.last ? -1 : a.last < b.last ? 1 : 0) : a.first < b.first ? -1 : 1));
    const kept: Block[] = [];
    for (const b of sorted) {
      const previous = kept.at(-1);
      if (previous !== undefined && b.last <= previous.last) continue;
      kept.push(b);
    }
    return kept.map((b) => b.text);
  };
  return { v4: pick(4), v6: pick(6) };
}

function ipv4Number(address: string): bigint {
  return address.split('.').reduce((acc, part) => acc * 256n + BigInt(Number(part)), 0n);
}

function ipv4Text(n: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => String((n >> shift) & 255n)).join('.');
}

function ipv6Number(address: string): bigint {
  let text = address.toLowerCase();
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (tail?.[1] !== undefined) {
    const v4 = ipv4Number(tail[1]);
    text = `${text.slice(0, -tail[1].length)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head = '', rest] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = rest === undefined || rest === '' ? [] : rest.split(':');
  const groups = rest === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return groups.reduce((acc, g) => (acc << 16n) + BigInt(parseInt(g, 16)), 0n);
}

/** RFC 5952 text, the form nft prints. */
function ipv6Text(n: bigint): string {
  const groups = Array.from({ length: 8 }, (_, i) => Number((n >> BigInt(112 - 16 * i)) & 0xffffn));
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart === -1) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}
