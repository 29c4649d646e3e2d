// Deny by default: a peer is known by its certificate identity and/or source address and/or AE title
// or HL7 sending application+facility, as its rule says. Anything else is refused with a reason that
// goes to the audit trail (never to the peer beyond the protocol's status).
import { BlockList, isIPv4, isIPv6 } from 'node:net';

export interface Hl7PeerRule {
  readonly name: string;
  readonly certificateCn: string;
  readonly sendingApplication: string;
  readonly sendingFacility: string;
  /** Source addresses it may connect from; omitted = any (the certificate still decides). */
  readonly addresses?: readonly string[] | undefined;
  /** A production box's test channel (its orders go to the test worklist). */
  readonly testChannel?: boolean;
}

export interface ModalityRule {
  readonly name: string;
  readonly aeTitle: string;
  readonly transport: 'tls' | 'plain';
  readonly certificateCn?: string | undefined;
  readonly addresses?: readonly string[] | undefined;
}

export type Refusal = { readonly refused: true; readonly why: string; readonly reason: RefusalReason };
export type RefusalReason =
  'unknown-certificate' | 'address-not-allowed' | 'calling-ae-unknown' | 'transport-not-allowed' | 'no-certificate';

/** An allowlist of addresses and CIDR blocks, IPv4 and IPv6; `::ffff:a.b.c.d` is treated as a.b.c.d. */
export class AddressAllowlist {
  readonly #list = new BlockList();
  readonly empty: boolean;

  constructor(entries: readonly string[]) {
    for (const e of entries) {
      const [addr = '', bits] = e.split('/');
      const type = isIPv6(addr) ? 'ipv6' : 'ipv4';
      if (bits === undefined) this.#list.addAddress(addr, type);
      else this.#list.addSubnet(addr, Number(bits), type);
    }
    this.empty = entries.length === 0;
  }

  allows(address: string | undefined): boolean {
    if (address === undefined) return false;
    const a = normaliseAddress(address);
    return this.#list.check(a, isIPv4(a) ? 'ipv4' : 'ipv6');
  }
}

export function normaliseAddress(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m ? m[1]! : address;
}

/**
 * The source pre-filter of one listener, asked at TCP accept before any TLS work: an address no peer of
 * the listener may connect from is refused there. Only when EVERY peer declares its addresses — a peer
 * without them may come from anywhere (its certificate decides), so then every address may try. No
 * peers at all (a box just provisioned): no pre-filter either — the TLS handshake and the peer check
 * refuse everyone, and `edgectl provision`'s self-test needs the handshake to check the box's certificate.
 */
function admitsSource(allowlists: readonly AddressAllowlist[], remoteAddress: string): boolean {
  return allowlists.length === 0 || allowlists.some((a) => a.empty || a.allows(remoteAddress));
}

export class Hl7PeerPolicy {
  readonly #rules: ReadonlyArray<{ rule: Hl7PeerRule; addresses: AddressAllowlist }>;

  constructor(rules: readonly Hl7PeerRule[]) {
    this.#rules = rules.map((rule) => ({ rule, addresses: new AddressAllowlist(rule.addresses ?? []) }));
  }

  /** May a connection from this address start a TLS handshake on the HL7 port (see admitsSource). */
  admitsSource(remoteAddress: string): boolean {
    return admitsSource(
      this.#rules.map((r) => r.addresses),
      remoteAddress,
    );
  }

  /** Identify the peer of an authenticated TLS connection. */
  identify(certificateCn: string | undefined, remoteAddress: string | undefined): Hl7PeerRule | Refusal {
    if (certificateCn === undefined || certificateCn === '')
      return { refused: true, reason: 'no-certificate', why: 'no client certificate' };
    const byCert = this.#rules.filter((r) => r.rule.certificateCn === certificateCn);
    if (byCert.length === 0)
      return { refused: true, reason: 'unknown-certificate', why: `certificate CN ${certificateCn} is not a configured HL7 peer` };
    const match = byCert.find((r) => r.addresses.empty || r.addresses.allows(remoteAddress));
    if (match === undefined) {
      return {
        refused: true,
        reason: 'address-not-allowed',
        why: `HL7 peer ${byCert[0]!.rule.name} connected from ${remoteAddress ?? '?'}, not an allowed address`,
      };
    }
    return match.rule;
  }
}

export interface ModalityRequest {
  readonly callingAeTitle: string;
  readonly transport: 'tls' | 'plain';
  readonly certificateCn?: string | undefined;
  readonly remoteAddress?: string | undefined;
}

export class ModalityPolicy {
  readonly #byAe: ReadonlyMap<string, { rule: ModalityRule; addresses: AddressAllowlist }>;

  constructor(rules: readonly ModalityRule[]) {
    this.#byAe = new Map(rules.map((rule) => [rule.aeTitle, { rule, addresses: new AddressAllowlist(rule.addresses ?? []) }]));
  }

  /**
   * May a connection from this address reach the DICOM listener of `transport` (see admitsSource): only
   * that transport's modalities count. A plain modality always lists its addresses.
   */
  admitsSource(transport: 'tls' | 'plain', remoteAddress: string): boolean {
    const lists = [...this.#byAe.values()].filter((e) => e.rule.transport === transport).map((e) => e.addresses);
    return admitsSource(lists, remoteAddress);
  }

  /**
   * A TLS modality must present the certificate its rule names (and come from an allowed address when
   * the rule lists any); a plain modality must come from an allowed address and only on the plain port.
   */
  admit(req: ModalityRequest): ModalityRule | Refusal {
    const entry = this.#byAe.get(req.callingAeTitle.trim());
    if (entry === undefined)
      return { refused: true, reason: 'calling-ae-unknown', why: `calling AE title ${req.callingAeTitle.trim()} is not configured` };
    const { rule, addresses } = entry;
    if (rule.transport !== req.transport) {
      return {
        refused: true,
        reason: 'transport-not-allowed',
        why: `AE ${rule.aeTitle} is configured for ${rule.transport}, came over ${req.transport}`,
      };
    }
    if (req.transport === 'tls') {
      if (req.certificateCn !== rule.certificateCn) {
        return {
          refused: true,
          reason: 'unknown-certificate',
          why: `AE ${rule.aeTitle} presented certificate CN ${req.certificateCn ?? '(none)'}`,
        };
      }
      if (!addresses.empty && !addresses.allows(req.remoteAddress)) {
        return {
          refused: true,
          reason: 'address-not-allowed',
          why: `AE ${rule.aeTitle} from ${req.remoteAddress ?? '?'} is not an allowed address`,
        };
      }
      return rule;
    }
    if (!addresses.allows(req.remoteAddress)) {
      return {
        refused: true,
        reason: 'address-not-allowed',
        why: `AE ${rule.aeTitle} from ${req.remoteAddress ?? '?'} is not an allowed address`,
      };
    }
    return rule;
  }
}

export function isRefusal(x: object): x is Refusal {
  return 'refused' in x;
}
