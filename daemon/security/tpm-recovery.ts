// Key escrow for recovery. At provisioning a recovery secret is made and printed once; the box keeps
// only the X25519 public key derived from it (scrypt), and every key it seals is also encrypted to that
// public key (ephemeral-static X25519 + HKDF + AES-256-GCM). So the daemon can escrow a new data key
// during rotation without knowing the secret, and only someone holding the secret can reseal the keys
// after the boot state changed (`edgectl keys reseal`).
import {
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  scryptSync,
  type KeyObject,
} from 'node:crypto';
import { EdgeError } from '../core/errors.ts';

export interface RecoveryPublic {
  /** X25519 public key, SubjectPublicKeyInfo DER, base64 */
  readonly publicKey: string;
  /** scrypt salt, base64 */
  readonly salt: string;
  readonly scrypt: { readonly N: number; readonly r: number; readonly p: number };
}

export interface Envelope {
  /** ephemeral X25519 public key, SPKI DER base64 */
  readonly epk: string;
  readonly nonce: string;
  readonly ciphertext: string;
  readonly tag: string;
}

const pkcs8X25519Prefix = Buffer.from('302e020100300506032b656e04220420', 'hex');
const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
const scryptParams = { N: 32_768, r: 8, p: 1 } as const;

/** 30 random characters in groups of five (150 bits), e.g. `K7MQ2-...`. */
export function newRecoverySecret(): string {
  const bytes = randomBytes(30);
  const chars = [...bytes].map((b) => alphabet[b % alphabet.length] ?? 'A').join('');
  bytes.fill(0);
  return chars.match(/.{5}/g)!.join('-');
}

function normalise(secret: string): Buffer {
  return Buffer.from(secret.toUpperCase().replace(/[^A-Z0-9]/g, ''), 'utf8');
}

function privateKeyFrom(secret: string, pub: Pick<RecoveryPublic, 'salt' | 'scrypt'>): KeyObject {
  const input = normalise(secret);
  const d = scryptSync(input, Buffer.from(pub.salt, 'base64'), 32, { ...pub.scrypt, maxmem: 256 * pub.scrypt.N * pub.scrypt.r });
  input.fill(0);
  const der = Buffer.concat([pkcs8X25519Prefix, d]);
  d.fill(0);
  const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  der.fill(0);
  return key;
}

export function recoveryPublicFor(secret: string): RecoveryPublic {
  const salt = randomBytes(16).toString('base64');
  const key = privateKeyFrom(secret, { salt, scrypt: scryptParams });
  return { publicKey: createPublicKey(key).export({ type: 'spki', format: 'der' }).toString('base64'), salt, scrypt: scryptParams };
}

function envelopeKey(shared: Buffer, epk: Buffer, recipient: Buffer, label: string): Buffer {
  return Buffer.from(hkdfSync('sha256', shared, Buffer.concat([epk, recipient]), `imaging-edge escrow ${label}`, 32));
}

export function escrow(pub: RecoveryPublic, label: string, secret: Uint8Array): Envelope {
  const recipientDer = Buffer.from(pub.publicKey, 'base64');
  const recipient = createPublicKey({ key: recipientDer, format: 'der', type: 'spki' });
  const eph = generateKeyPairSync('x25519');
  const epk = eph.publicKey.export({ type: 'spki', format: 'der' });
  const shared = diffieHellman({ privateKey: eph.privateKey, publicKey: recipient });
  const key = envelopeKey(shared, epk, recipientDer, label);
  shared.fill(0);
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(Buffer.from(label, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(secret), cipher.final()]);
  key.fill(0);
  return {
    epk: epk.toString('base64'),
    nonce: nonce.toString('base64'),
    ciphertext: ciphertext.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
  };
}

/** Opens escrowed secrets with the recovery secret; throws EDGE_KEYS_RECOVERY_FAILED on a wrong one. */
export class RecoveryOpener {
  readonly #key: KeyObject;
  readonly #recipient: Buffer;

  constructor(secret: string, pub: RecoveryPublic) {
    this.#key = privateKeyFrom(secret, pub);
    this.#recipient = Buffer.from(pub.publicKey, 'base64');
    const derived = createPublicKey(this.#key).export({ type: 'spki', format: 'der' });
    if (!derived.equals(this.#recipient))
      throw new EdgeError('EDGE_KEYS_RECOVERY_FAILED', 'the recovery secret does not belong to this box');
  }

  open(label: string, env: Envelope): Buffer {
    const epk = Buffer.from(env.epk, 'base64');
    const shared = diffieHellman({ privateKey: this.#key, publicKey: createPublicKey({ key: epk, format: 'der', type: 'spki' }) });
    const key = envelopeKey(shared, epk, this.#recipient, label);
    shared.fill(0);
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(env.nonce, 'base64'));
    decipher.setAAD(Buffer.from(label, 'utf8'));
    decipher.setAuthTag(Buffer.from(env.tag, 'base64'));
    try {
      return Buffer.concat([decipher.update(Buffer.from(env.ciphertext, 'base64')), decipher.final()]);
    } catch (cause) {
      throw new EdgeError('EDGE_KEYS_RECOVERY_FAILED', `escrowed ${label} does not open`, { cause });
    } finally {
      key.fill(0);
    }
  }
}
