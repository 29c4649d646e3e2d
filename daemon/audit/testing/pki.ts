// A throwaway PKI for the audit tests (openssl CLI): a site CA with the device certificate, a central CA
// with a central team's client certificate, and a rogue CA. ECDSA P-256 like the development site.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestPki {
  readonly dir: string;
  readonly siteCa: string;
  readonly device: { cert: string; key: string };
  readonly modality: { cert: string; key: string };
  readonly centralCa: string;
  readonly central: { cert: string; key: string };
  readonly rogueCa: string;
  readonly rogue: { cert: string; key: string };
  readonly collector: { cert: string; key: string };
  cleanup(): void;
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
}

export function makeTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'edge-audit-pki-'));
  const p = (n: string) => join(dir, n);
  const ca = (name: string) => {
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', p(`${name}.key`), '-out', p(`${name}.pem`),
      '-subj', `/O=Imaging Edge Test/CN=${name}`, '-days', '30', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    return p(`${name}.pem`);
  };
  const leaf = (name: string, caName: string, cn: string, eku: string) => {
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`), '-subj', `/O=Imaging Edge Test/CN=${cn}`]);
    writeFileSync(p(`${name}.ext`), `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=${eku}\nsubjectAltName=DNS:${cn},IP:127.0.0.1\n`);
    openssl(['x509', '-req', '-in', p(`${name}.csr`), '-CA', p(`${caName}.pem`), '-CAkey', p(`${caName}.key`), '-set_serial', `0x${Date.now().toString(16)}${Math.floor(Math.random() * 1e6).toString(16)}`,
      '-days', '30', '-sha256', '-extfile', p(`${name}.ext`), '-out', p(`${name}.pem`)]);
    return { cert: p(`${name}.pem`), key: p(`${name}.key`) };
  };
  const siteCa = ca('site-ca');
  const centralCa = ca('central-ca');
  const rogueCa = ca('rogue-ca');
  return {
    dir,
    siteCa,
    device: leaf('device', 'site-ca', 'localhost', 'serverAuth,clientAuth'),
    modality: leaf('modality', 'site-ca', 'CT01', 'clientAuth'),
    collector: leaf('collector', 'site-ca', 'localhost', 'serverAuth'),
    centralCa,
    central: leaf('central', 'central-ca', 'central-soc', 'clientAuth'),
    rogueCa,
    rogue: leaf('rogue', 'rogue-ca', 'central-soc', 'clientAuth'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
