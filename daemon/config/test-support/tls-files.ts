// Real TLS material for the config checks' unit tests (the checks parse it): one self-signed
// certificate with its key, and a second key that belongs to no certificate. Made once per process.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TlsFiles {
  readonly certificate: Buffer;
  readonly key: Buffer;
  readonly otherKey: Buffer;
}

let made: TlsFiles | undefined;

export function tlsFiles(): TlsFiles {
  if (made !== undefined) return made;
  const dir = mkdtempSync(join(tmpdir(), 'edge-tls-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  execFileSync('openssl', ['req', '-x509', ...ec, '-subj', '/CN=edge-test', '-days', '2', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem')], { stdio: 'ignore' });
  execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', join(dir, 'o.pem')], { stdio: 'ignore' });
  made = { certificate: readFileSync(join(dir, 'c.pem')), key: readFileSync(join(dir, 'k.pem')), otherKey: readFileSync(join(dir, 'o.pem')) };
  return made;
}
