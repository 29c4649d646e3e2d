// `edgectl cert install CERT [CHAIN]` and `edgectl cert status`. A certificate is installed only if it
// holds the box's own public key (the one sealed in the TPM, or tls.keyFile in development), chains to
// the configured site CA, is in date and allows TLS server and client use.
import { X509Certificate, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type EdgeConfig, loadConfig } from '../daemon/config/index.ts';
import { readManifest } from '../daemon/security/tpm-key-source.ts';
import { openssl } from './dev-pki.ts';

export const certHelp = `usage: edgectl cert install CERT [CHAIN] --config FILE
       edgectl cert status --config FILE [--json]

install  checks CERT (PEM) against the box: same public key as the sealed device key, chains to
         tls.caFile (through CHAIN, a PEM bundle of intermediates, if given), in date, key usage
         digitalSignature and extended key usages serverAuth + clientAuth; then writes CERT + CHAIN to
         tls.certFile. Restart edged to serve it.
status   shows subject, expiry and days left of every certificate the box holds (tls.certFile) or trusts
         (tls.caFile); warns from ${30} days before expiry.

Exit status: 0 installed / all valid, 1 refused / something expired or unreadable, 2 usage error.`;

export const warnDays = 30;
const serverAuth = '1.3.6.1.5.5.7.3.1';
const clientAuth = '1.3.6.1.5.5.7.3.2';

export function splitPem(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)?.map((p) => `${p}\n`) ?? [];
}

async function boxPublicKey(config: EdgeConfig): Promise<KeyObject> {
  if (config.keys.backend === 'tpm') {
    const m = await readManifest(join(config.dataDir, 'keys'));
    if (m.tls === undefined) throw new Error('no device key is sealed in the TPM');
    return createPublicKey({ format: 'jwk', key: { ...m.tls.publicJwk } });
  }
  if (config.tls.keyFile === undefined) throw new Error('tls.keyFile is not set');
  return createPublicKey(createPrivateKey(readFileSync(config.tls.keyFile)));
}

/** Every reason the certificate cannot be installed (empty: it can). */
export async function certificateProblems(
  config: EdgeConfig,
  certPem: string,
  chainPem: string | undefined,
  now = Date.now(),
): Promise<string[]> {
  const problems: string[] = [];
  const leafPem = splitPem(certPem)[0];
  if (leafPem === undefined) return ['CERT holds no PEM certificate'];
  const cert = new X509Certificate(leafPem);
  const mine = (await boxPublicKey(config)).export({ type: 'spki', format: 'der' });
  if (!cert.publicKey.export({ type: 'spki', format: 'der' }).equals(mine))
    problems.push('the certificate is for another key, not the device key sealed in this box');
  if (Date.parse(cert.validTo) < now) problems.push(`the certificate expired on ${cert.validTo}`);
  if (Date.parse(cert.validFrom) > now) problems.push(`the certificate is not valid before ${cert.validFrom}`);
  const eku = cert.keyUsage ?? [];
  if (!eku.includes(serverAuth) || !eku.includes(clientAuth)) problems.push('extended key usage must include serverAuth and clientAuth');
  const ku = await openssl(['x509', '-noout', '-ext', 'keyUsage', '-in', await tmpPem(leafPem)]).catch(() => '');
  if (!/Digital Signature/.test(ku)) problems.push('key usage must include digitalSignature');
  const args = ['verify', '-CAfile', config.tls.caFile, '-purpose', 'sslserver'];
  if (chainPem !== undefined) args.push('-untrusted', await tmpPem(chainPem));
  args.push(await tmpPem(leafPem));
  try {
    await openssl(args);
  } catch (err) {
    const why = (err as Error).message.split('\n').find((l) => /error \d+/.test(l)) ?? (err as Error).message;
    if (!problems.some((p) => p.includes('expired'))) problems.push(`does not chain to the configured CA (${config.tls.caFile}): ${why}`);
  }
  return problems;
}

let tmpCounter = 0;
const tmpFiles: string[] = [];
async function tmpPem(text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'edgectl-cert-'));
  const path = join(dir, `c${tmpCounter++}.pem`);
  await writeFile(path, text);
  tmpFiles.push(dir);
  return path;
}

async function cleanupTmp(): Promise<void> {
  for (const d of tmpFiles.splice(0)) await rm(d, { recursive: true, force: true });
}

export async function certInstall(configFile: string, certFile: string, chainFile: string | undefined): Promise<number> {
  const { config } = loadConfig(configFile);
  const certPem = await readFile(certFile, 'utf8');
  const chainPem = chainFile === undefined ? undefined : await readFile(chainFile, 'utf8');
  try {
    const problems = await certificateProblems(config, certPem, chainPem);
    if (problems.length > 0) {
      console.error('edgectl: certificate refused:');
      for (const p of problems) console.error(`  - ${p}`);
      return 1;
    }
  } finally {
    await cleanupTmp();
  }
  const bundle = [...splitPem(certPem).slice(0, 1), ...(chainPem === undefined ? [] : splitPem(chainPem))].join('');
  const tmp = `${config.tls.certFile}.new`;
  await writeFile(tmp, bundle, { mode: 0o644 });
  await rename(tmp, config.tls.certFile);
  const cert = new X509Certificate(bundle);
  console.log(`installed ${config.tls.certFile}: ${cert.subject.replace(/\n/g, ', ')}, valid until ${cert.validTo}`);
  console.log('restart edged to serve it');
  return 0;
}

export interface CertStatus {
  readonly file: string;
  readonly role: 'box' | 'trusted';
  readonly subject: string;
  readonly notAfter: string;
  readonly daysLeft: number;
  readonly state: 'ok' | 'expiring' | 'expired';
}

export function certificateStatus(config: EdgeConfig, now = Date.now()): CertStatus[] {
  const out: CertStatus[] = [];
  for (const [file, role] of [
    [config.tls.certFile, 'box'],
    [config.tls.caFile, 'trusted'],
  ] as const) {
    for (const pem of splitPem(readFileSync(file, 'utf8'))) {
      const c = new X509Certificate(pem);
      const daysLeft = Math.floor((Date.parse(c.validTo) - now) / 86_400_000);
      out.push({
        file,
        role,
        subject: c.subject.replace(/\n/g, ', '),
        notAfter: c.validTo,
        daysLeft,
        state: daysLeft < 0 ? 'expired' : daysLeft < warnDays ? 'expiring' : 'ok',
      });
    }
  }
  return out;
}

export function certStatus(configFile: string, json: boolean): number {
  const { config } = loadConfig(configFile);
  const list = certificateStatus(config);
  if (json) console.log(JSON.stringify(list, null, 2));
  else
    for (const c of list)
      console.log(
        `${c.state === 'ok' ? 'ok      ' : c.state === 'expiring' ? 'WARNING ' : 'EXPIRED '} ${c.role.padEnd(7)} ${String(c.daysLeft).padStart(5)} days  ${c.notAfter}  ${c.subject}`,
      );
  return list.some((c) => c.state === 'expired') ? 1 : 0;
}
