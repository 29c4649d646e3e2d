// A development PKI made with the openssl CLI (execFile, never a shell): ECDSA P-256 keys written
// 0600 by us (openssl prints them, so no key file ever exists with a wider mode), certificates
// signed from a CSR with an explicit extension file and a random serial.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const opensslTimeoutMs = 30_000;

export function openssl(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'openssl',
      args,
      { timeout: opensslTimeoutMs, maxBuffer: 1_048_576, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err !== null) {
          reject(new Error(`openssl ${args[0] ?? ''} failed: ${stderr.trim() || err.message}`, { cause: err }));
          return;
        }
        resolve(stdout);
      },
    );
    // Nothing is ever fed to openssl; a closed stdin makes a mistaken prompt fail instead of hang.
    child.stdin?.destroy();
  });
}

export interface KeyPair {
  readonly keyFile: string;
  readonly certFile: string;
}

export interface LeafOptions {
  readonly cn: string;
  readonly extendedKeyUsage: ReadonlyArray<'serverAuth' | 'clientAuth'>;
  /** e.g. ['DNS:localhost', 'IP:127.0.0.1'] */
  readonly subjectAltNames?: readonly string[];
}

const organisation = 'Imaging Edge Development';

async function writePrivateKey(path: string): Promise<void> {
  const pem = await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-pkeyopt', 'ec_param_enc:named_curve']);
  await writeFile(path, pem, { mode: 0o600, flag: 'wx' });
}

function serial(): string {
  // Positive 159-bit serial, as RFC 5280 4.1.2.2 asks for unpredictable serials.
  const bytes = randomBytes(20);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return `0x${bytes.toString('hex')}`;
}

async function withWorkDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'edgectl-pki-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A self-signed CA (keyCertSign, cRLSign), valid `days`. */
export async function makeCa(dir: string, name: string, cn: string, days: number): Promise<KeyPair> {
  const pair = { keyFile: join(dir, `${name}.key`), certFile: join(dir, `${name}.crt`) };
  await writePrivateKey(pair.keyFile);
  await withWorkDir(async (work) => {
    const cnf = join(work, 'ca.cnf');
    await writeFile(
      cnf,
      [
        '[req]',
        'distinguished_name = dn',
        'prompt = no',
        'x509_extensions = v3',
        '',
        '[dn]',
        `O = ${organisation}`,
        `CN = ${cn}`,
        '',
        '[v3]',
        'basicConstraints = critical,CA:TRUE',
        'keyUsage = critical,keyCertSign,cRLSign',
        'subjectKeyIdentifier = hash',
        '',
      ].join('\n'),
    );
    await openssl([
      'req',
      '-x509',
      '-new',
      '-config',
      cnf,
      '-key',
      pair.keyFile,
      '-sha256',
      '-days',
      String(days),
      '-set_serial',
      serial(),
      '-out',
      pair.certFile,
    ]);
  });
  return pair;
}

/** An end-entity certificate signed by `ca`. */
export async function makeLeaf(dir: string, name: string, ca: KeyPair, opts: LeafOptions, days: number): Promise<KeyPair> {
  const pair = { keyFile: join(dir, `${name}.key`), certFile: join(dir, `${name}.crt`) };
  await writePrivateKey(pair.keyFile);
  await withWorkDir(async (work) => {
    const csr = join(work, 'leaf.csr');
    const ext = join(work, 'leaf.ext');
    await openssl(['req', '-new', '-key', pair.keyFile, '-subj', `/O=${organisation}/CN=${opts.cn}`, '-out', csr]);
    const lines = [
      'basicConstraints = critical,CA:FALSE',
      'keyUsage = critical,digitalSignature',
      `extendedKeyUsage = ${opts.extendedKeyUsage.join(',')}`,
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid',
    ];
    if (opts.subjectAltNames !== undefined && opts.subjectAltNames.length > 0)
      lines.push(`subjectAltName = ${opts.subjectAltNames.join(',')}`);
    await writeFile(ext, `${lines.join('\n')}\n`);
    await openssl([
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      ca.certFile,
      '-CAkey',
      ca.keyFile,
      '-set_serial',
      serial(),
      '-sha256',
      '-days',
      String(days),
      '-extfile',
      ext,
      '-out',
      pair.certFile,
    ]);
  });
  return pair;
}

/** Resolves when every certificate chains to the CA; rejects with openssl's reason otherwise. */
export async function verifyChain(caFile: string, certFiles: readonly string[]): Promise<void> {
  await openssl(['verify', '-CAfile', caFile, ...certFiles]);
}
