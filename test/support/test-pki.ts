// The tests' one throwaway PKI generator (openssl CLI, ECDSA P-256 like the development site): CAs and
// leaves issued by them in a temp folder, and the sets of them the unit and integration tests use.
// It lives here, not in a daemon/*/testing folder, because adapters may import only core (the import
// check), while every test file and the benchmarks may import test/support.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface KeyPair {
  readonly cert: string;
  readonly key: string;
}

function openssl(args: readonly string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
}

/** Issues certificates into `dir`: `<name>.pem` (or `.crt`, as the peers' scripts expect) and `<name>.key`. */
export class PkiBuilder {
  readonly dir: string;
  readonly #certSuffix: string;
  #serial = 0;

  constructor(dir: string, options: { certSuffix?: '.pem' | '.crt' } = {}) {
    this.dir = dir;
    this.#certSuffix = options.certSuffix ?? '.pem';
  }

  path(file: string): string {
    return join(this.dir, file);
  }

  /** A P-256 private key that belongs to no certificate. */
  key(name: string): string {
    openssl([
      'genpkey',
      '-algorithm',
      'EC',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-pkeyopt',
      'ec_param_enc:named_curve',
      '-out',
      this.path(`${name}.key`),
    ]);
    return this.path(`${name}.key`);
  }

  cert(name: string): string {
    return this.path(`${name}${this.#certSuffix}`);
  }

  /** A self-signed CA certificate; returns its path. */
  ca(name: string, options: { days?: number; subject?: string } = {}): string {
    openssl([
      'req',
      '-x509',
      '-new',
      '-key',
      this.key(name),
      '-sha256',
      '-days',
      String(options.days ?? 30),
      '-subj',
      options.subject ?? `/O=Imaging Edge Test/CN=${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-addext',
      'subjectKeyIdentifier=hash',
      '-out',
      this.cert(name),
    ]);
    return this.cert(name);
  }

  /** A leaf certificate from CA `caName`; `san` is an openssl subjectAltName value or '' for none. */
  leaf(name: string, caName: string, cn: string, eku: string, san: string, options: { days?: number } = {}): KeyPair {
    openssl(['req', '-new', '-key', this.key(name), '-subj', `/O=Imaging Edge Test/CN=${cn}`, '-out', this.path(`${name}.csr`)]);
    const ext = [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      `extendedKeyUsage=${eku}`,
      'subjectKeyIdentifier=hash',
      'authorityKeyIdentifier=keyid',
      ...(san === '' ? [] : [`subjectAltName=${san}`]),
    ];
    writeFileSync(this.path(`${name}.ext`), `${ext.join('\n')}\n`);
    // A serial unique across runs, so a client never meets two certificates with one issuer and serial.
    const serial = `0x${Date.now().toString(16)}${(++this.#serial).toString(16).padStart(4, '0')}${process.pid.toString(16)}`;
    openssl([
      'x509',
      '-req',
      '-in',
      this.path(`${name}.csr`),
      '-CA',
      this.cert(caName),
      '-CAkey',
      this.path(`${caName}.key`),
      '-set_serial',
      serial,
      '-days',
      String(options.days ?? 30),
      '-sha256',
      '-extfile',
      this.path(`${name}.ext`),
      '-out',
      this.cert(name),
    ]);
    return { cert: this.cert(name), key: this.path(`${name}.key`) };
  }
}

/** The audit tests' PKI: the site CA with the device, a modality and a collector, a central CA with the central team, a rogue CA. */
export interface AuditTestPki {
  readonly dir: string;
  readonly siteCa: string;
  readonly device: KeyPair;
  readonly modality: KeyPair;
  readonly collector: KeyPair;
  readonly centralCa: string;
  readonly central: KeyPair;
  readonly rogueCa: string;
  readonly rogue: KeyPair;
  cleanup(): void;
}

export function makeAuditTestPki(): AuditTestPki {
  const pki = new PkiBuilder(mkdtempSync(join(tmpdir(), 'edge-audit-pki-')));
  const siteCa = pki.ca('site-ca');
  const centralCa = pki.ca('central-ca');
  const rogueCa = pki.ca('rogue-ca');
  return {
    dir: pki.dir,
    siteCa,
    device: pki.leaf('device', 'site-ca', 'localhost', 'serverAuth,clientAuth', 'DNS:localhost,IP:127.0.0.1'),
    modality: pki.leaf('modality', 'site-ca', 'CT01', 'clientAuth', 'DNS:CT01,IP:127.0.0.1'),
    collector: pki.leaf('collector', 'site-ca', 'localhost', 'serverAuth', 'DNS:localhost,IP:127.0.0.1'),
    centralCa,
    central: pki.leaf('central', 'central-ca', 'central-soc', 'clientAuth', 'DNS:central-soc,IP:127.0.0.1'),
    rogueCa,
    rogue: pki.leaf('rogue', 'rogue-ca', 'central-soc', 'clientAuth', 'DNS:central-soc,IP:127.0.0.1'),
    cleanup: () => rmSync(pki.dir, { recursive: true, force: true }),
  };
}

/** The DICOM listener tests' PKI in `dir`: a site CA with a server and a modality client, and a rogue CA's client. */
export interface DicomTestPki {
  readonly dir: string;
  readonly caCert: string;
  readonly serverKey: string;
  readonly serverCert: string;
  readonly clientKey: string;
  readonly clientCert: string;
  readonly rogueKey: string;
  readonly rogueCert: string;
}

export function makeDicomTestPki(dir: string): DicomTestPki {
  // Named as test/peers' scripts (e.g. Orthanc's TLS front) expect them in `dir`.
  const pki = new PkiBuilder(dir, { certSuffix: '.crt' });
  const caCert = pki.ca('ca', { days: 2 });
  pki.ca('rogue-ca', { days: 2 });
  const server = pki.leaf('server', 'ca', 'edge.test', 'serverAuth', 'DNS:localhost,IP:127.0.0.1', { days: 2 });
  const client = pki.leaf('client', 'ca', 'MODALITY1', 'clientAuth', '', { days: 2 });
  const rogue = pki.leaf('rogue-client', 'rogue-ca', 'ROGUE', 'clientAuth', '', { days: 2 });
  return {
    dir,
    caCert,
    serverKey: server.key,
    serverCert: server.cert,
    clientKey: client.key,
    clientCert: client.cert,
    rogueKey: rogue.key,
    rogueCert: rogue.cert,
  };
}

/** For the config checks (they parse real material): a self-signed certificate with its key, and a key of no certificate. */
export interface TlsFiles {
  readonly certificate: Buffer;
  readonly key: Buffer;
  readonly otherKey: Buffer;
}

let tlsFilesMade: TlsFiles | undefined;

/** Made once per process. */
export function tlsFiles(): TlsFiles {
  if (tlsFilesMade !== undefined) return tlsFilesMade;
  const pki = new PkiBuilder(mkdtempSync(join(tmpdir(), 'edge-tls-')));
  const cert = pki.ca('edge-test', { days: 2, subject: '/CN=edge-test' });
  tlsFilesMade = {
    certificate: readFileSync(cert),
    key: readFileSync(pki.path('edge-test.key')),
    otherKey: readFileSync(pki.key('other')),
  };
  return tlsFilesMade;
}
