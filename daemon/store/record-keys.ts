// Key layout. Keys never hold patient data in clear: patient ids, order numbers and control ids appear
// only as keyed hashes (HMAC-SHA-256 with the index key, 128 bits). The worklist index carries the
// scheduling facts a query narrows on (date, station AE title, modality, time), which identify no one.
import { type KeyObject, createHmac, createSecretKey } from 'node:crypto';

const SEP = '\u0000';

export const Prefix = {
  order: 'o',
  patientOrders: 'p',
  worklist: 'w',
  orderByAccession: 'k',
  orderByStudy: 'j',
  controlId: 'm',
  controlIdByTime: 'n',
  audit: 'a',
  /** Local user accounts (the admin page's users; seeded by `edgectl provision`). */
  user: 'u',
  /** Break-glass uses awaiting or past review. */
  breakGlass: 'b',
  outboxQueued: 'q',
  outboxDead: 'x',
  mpps: 'r',
  spool: 'i',
  meta: 'z',
} as const;

export class RecordKeys {
  // One KeyObject for the life of the store: building one from raw bytes on every HMAC was a fifth of
  // an HL7 message's CPU.
  readonly #indexKey: KeyObject;

  constructor(indexKey: Uint8Array) {
    this.#indexKey = createSecretKey(indexKey);
  }

  hash(purpose: string, ...parts: readonly string[]): string {
    return createHmac('sha256', this.#indexKey)
      .update(`${purpose}${SEP}${parts.join(SEP)}`)
      .digest('hex')
      .slice(0, 32);
  }

  order(orderHash: string): string {
    return `${Prefix.order}${SEP}${orderHash}`;
  }

  patientOrder(patientHash: string, orderHash: string): string {
    return `${Prefix.patientOrders}${SEP}${patientHash}${SEP}${orderHash}`;
  }

  patientOrdersRange(patientHash: string): { gte: string; lt: string } {
    return { gte: `${Prefix.patientOrders}${SEP}${patientHash}${SEP}`, lt: `${Prefix.patientOrders}${SEP}${patientHash}\u0001` };
  }

  worklist(date: string, station: string, modality: string, time: string, orderHash: string, step: number): string {
    return [Prefix.worklist, date || '00000000', station, modality, time, orderHash, String(step)].join(SEP);
  }

  /** Index entry: an order under a keyed hash of one of its references (family 'k' or 'j'). */
  reference(family: string, valueHash: string, orderHash: string): string {
    return `${family}${SEP}${valueHash}${SEP}${orderHash}`;
  }

  referenceRange(family: string, valueHash: string): { gte: string; lt: string } {
    return { gte: `${family}${SEP}${valueHash}${SEP}`, lt: `${family}${SEP}${valueHash}\u0001` };
  }

  controlId(hash: string): string {
    return `${Prefix.controlId}${SEP}${hash}`;
  }

  controlIdByTime(receivedAt: number, hash: string): string {
    return `${Prefix.controlIdByTime}${SEP}${String(receivedAt).padStart(15, '0')}${SEP}${hash}`;
  }
}

export interface WorklistKeyParts {
  readonly date: string;
  readonly station: string;
  readonly modality: string;
}

export function parseWorklistKey(key: string): WorklistKeyParts | undefined {
  const parts = key.split(SEP);
  if (parts.length !== 7) return undefined;
  return { date: parts[1] ?? '', station: parts[2] ?? '', modality: parts[3] ?? '' };
}

export function worklistRange(from: string | undefined, to: string | undefined, station?: string): { gte: string; lt: string } {
  const p = `${Prefix.worklist}${SEP}`;
  if (from !== undefined && from === to && station !== undefined) {
    return { gte: `${p}${from}${SEP}${station}${SEP}`, lt: `${p}${from}${SEP}${station}\u0001` };
  }
  return { gte: from === undefined ? p : `${p}${from}${SEP}`, lt: to === undefined ? `${Prefix.worklist}\u0001` : `${p}${to}\u0001` };
}

export function rangeOf(prefix: string): { gte: string; lt: string } {
  return { gte: `${prefix}${SEP}`, lt: `${prefix}\u0001` };
}
