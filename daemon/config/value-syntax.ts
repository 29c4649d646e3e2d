// Syntax checks for config values. Each returns why a value is unacceptable, or undefined.
import { isIP } from 'node:net';
import { SUPPORTED_CHARACTER_SET_TERMS } from '../core/dicom-character-sets.ts';
import { RETURN_KEY_KEYWORDS } from '../core/worklist-attributes.ts';

/** PS3.5 6.2 AE: 1–16 characters of the default repertoire, no backslash, not only spaces. */
export function aeTitleProblem(value: string): string | undefined {
  if (value.length < 1 || value.length > 16) return 'an AE title has 1 to 16 characters';
  if (!/^[\x20-\x7e]*$/.test(value)) return 'an AE title may only hold printable ASCII characters (no control characters)';
  if (value.includes('\\')) return 'an AE title cannot contain a backslash';
  if (value.trim() === '') return 'an AE title cannot be only spaces';
  return undefined;
}

/** AE titles compare without their insignificant leading and trailing spaces. */
export function normalizeAeTitle(value: string): string {
  return value.trim();
}

export function ipAddressProblem(value: string): string | undefined {
  return isIP(value) === 0 ? 'must be an IPv4 or IPv6 address literal' : undefined;
}

/** A Linux interface name (IFNAMSIZ 16 with the NUL): no slash, space or quote, which nft would misread. */
export function interfaceNameProblem(value: string): string | undefined {
  return /^[A-Za-z0-9][A-Za-z0-9._-]{0,14}$/.test(value)
    ? undefined
    : 'must be an interface name (letters, digits, ".", "_", "-"; at most 15)';
}

const hostLabel = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;

/** An IP address literal or an RFC 1123 host name. */
export function hostProblem(value: string): string | undefined {
  if (isIP(value) !== 0) return undefined;
  if (value.length > 253 || !value.split('.').every((label) => hostLabel.test(label))) {
    return 'must be an IP address or a host name';
  }
  return undefined;
}

/** `address/prefix` (a bare address means the single host). Host bits set below the prefix are refused. */
export function cidrProblem(value: string): string | undefined {
  const slash = value.indexOf('/');
  const address = slash === -1 ? value : value.slice(0, slash);
  const family = isIP(address);
  if (family === 0) return 'must be an address or address/prefix (CIDR), e.g. 10.1.2.0/24';
  if (slash === -1) return undefined;
  const prefixText = value.slice(slash + 1);
  const max = family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) return `the prefix length must be 0 to ${max}`;
  if (family === 4) {
    const prefix = Number(prefixText);
    const n = address.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
    const hostBits = prefix === 32 ? 0 : n % 2 ** (32 - prefix);
    if (hostBits !== 0) return `host bits are set below /${prefix}; did you mean a network address?`;
  }
  return undefined;
}

/** PS3.5 9.1: digits and dots, components without leading zeros, at most 64 characters. */
export function uidProblem(value: string): string | undefined {
  if (value.length > 64 || !/^(0|[1-9]\d*)(\.(0|[1-9]\d*))+$/.test(value)) return 'must be a DICOM UID (digits and dots, at most 64)';
  return undefined;
}

/** An attribute keyword a worklist return key may name (PS3.6 keyword). */
export function keywordProblem(value: string): string | undefined {
  return (RETURN_KEY_KEYWORDS as ReadonlySet<string>).has(value) ? undefined : 'is not an attribute keyword the worklist supports';
}

/** A DICOM CS modality code such as CT or MR (PS3.3 C.7.3.1.1.1). */
export function modalityCodeProblem(value: string): string | undefined {
  return /^[A-Z0-9_]{1,16}$/.test(value) ? undefined : 'must be a modality code (upper case, e.g. CT, MR, US)';
}

/** A Specific Character Set defined term the box can write (PS3.3 C.12.1.1.2). */
export function characterSetTermProblem(value: string): string | undefined {
  return SUPPORTED_CHARACTER_SET_TERMS.includes(value)
    ? undefined
    : `is not a character set the box writes (${SUPPORTED_CHARACTER_SET_TERMS.join(', ')})`;
}

/** HL7 HD namespace id: no delimiters and no control characters. */
export function hl7IdentifierProblem(value: string): string | undefined {
  if (/[|^~\\&\x00-\x1f\x7f]/.test(value)) return 'cannot contain HL7 delimiters (| ^ ~ \\ &) or control characters';
  return undefined;
}

/** Names of peers and modalities, used in logs and the admin page. */
export function peerNameProblem(value: string): string | undefined {
  return /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(value)
    ? undefined
    : 'must start with a letter or digit and use only letters, digits, ".", "_" and "-"';
}

/** X.509 common names as configured; compared exactly with the presented certificate. */
export function commonNameProblem(value: string): string | undefined {
  return /[\x00-\x1f\x7f]/.test(value) ? 'cannot contain control characters' : undefined;
}

/** The "any address" of IPv4 or IPv6 in any spelling (`0.0.0.0`, `::`, `0:0::0`, `::ffff:0.0.0.0`), or empty. */
export function isWildcardAddress(host: string): boolean {
  if (host === '') return true;
  const family = isIP(host);
  if (family === 4) return host === '0.0.0.0';
  if (family === 6) return /^[0:]*(ffff:)?(0\.0\.0\.0|[0:]*)$/i.test(host);
  return false;
}

/** Prefix length of `address/prefix`, or the full length for a bare address; undefined when not an address. */
export function prefixLengthOf(cidr: string): { family: 4 | 6; prefix: number } | undefined {
  const slash = cidr.indexOf('/');
  const family = isIP(slash === -1 ? cidr : cidr.slice(0, slash));
  if (family !== 4 && family !== 6) return undefined;
  return { family, prefix: slash === -1 ? (family === 4 ? 32 : 128) : Number(cidr.slice(slash + 1)) };
}
