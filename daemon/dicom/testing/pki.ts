// Test support: a throwaway PKI per test run (ECDSA P-256), following test/peers/dicom/make-pki.sh.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runPeer } from './run-peer.ts';

export interface TestPki {
  readonly dir: string;
  readonly caCert: string;
  readonly serverKey: string;
  readonly serverCert: string;
  readonly clientKey: string;
  readonly clientCert: string;
  readonly rogueKey: string;
  readonly rogueCert: string;
}

async function openssl(args: string[]): Promise<void> {
  const r = await runPeer('openssl', args);
  if (r.code !== 0) throw new Error(`openssl ${args[0] ?? ''} failed: ${r.stderr}`);
}

async function key(path: string): Promise<void> {
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-pkeyopt', 'ec_param_enc:named_curve', '-out', path]);
}

async function ca(dir: string, name: string): Promise<void> {
  await key(join(dir, `${name}.key`));
  await openssl([
    'req', '-x509', '-new', '-key', join(dir, `${name}.key`), '-sha256', '-days', '2', '-subj', `/O=Edge Test/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    '-addext', 'subjectKeyIdentifier=hash', '-out', join(dir, `${name}.crt`),
  ]);
}

async function leaf(dir: string, name: string, caName: string, cn: string, eku: string, san: string): Promise<void> {
  await key(join(dir, `${name}.key`));
  await openssl(['req', '-new', '-key', join(dir, `${name}.key`), '-subj', `/O=Edge Test/CN=${cn}`, '-out', join(dir, `${name}.csr`)]);
  const ext = [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    `extendedKeyUsage=${eku}`,
    'subjectKeyIdentifier=hash',
    'authorityKeyIdentifier=keyid',
    ...(san === '' ? [] : [`subjectAltName=${san}`]),
  ].join('\n');
  await writeFile(join(dir, `${name}.ext`), `${ext}\n`);
  await openssl([
    'x509', '-req', '-in', join(dir, `${name}.csr`), '-CA', join(dir, `${caName}.crt`), '-CAkey', join(dir, `${caName}.key`),
    '-CAcreateserial', '-sha256', '-days', '2', '-extfile', join(dir, `${name}.ext`), '-out', join(dir, `${name}.crt`),
  ]);
}

export async function makeTestPki(dir: string): Promise<TestPki> {
  await ca(dir, 'ca');
  await ca(dir, 'rogue-ca');
  // One at a time: leaves of one CA share its serial file.
  await leaf(dir, 'server', 'ca', 'edge.test', 'serverAuth', 'DNS:localhost,IP:127.0.0.1');
  await leaf(dir, 'client', 'ca', 'MODALITY1', 'clientAuth', '');
  await leaf(dir, 'rogue-client', 'rogue-ca', 'ROGUE', 'clientAuth', '');
  return {
    dir,
    caCert: join(dir, 'ca.crt'),
    serverKey: join(dir, 'server.key'),
    serverCert: join(dir, 'server.crt'),
    clientKey: join(dir, 'client.key'),
    clientCert: join(dir, 'client.crt'),
    rogueKey: join(dir, 'rogue-client.key'),
    rogueCert: join(dir, 'rogue-client.crt'),
  };
}
