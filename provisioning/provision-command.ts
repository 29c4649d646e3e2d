// `edgectl provision`: factory state → serving, from a site profile (non-interactive) or from prompts.
// Steps: hardware check → TPM keys sealed (index key, data key, device TLS key) → CSR + temporary
// self-signed certificate → config written and checked → first admin account → self-test (store
// write/read through the unsealed keys, then edged started and each listener answering on loopback).
// Every step is audited; the recovery secret and the admin's one-time password are printed once.
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import type { AuditEvent } from '../daemon/core/audit.ts';
import { appActivity, auditEvent } from '../daemon/core/audit-event-builders.ts';
import { Environments, type Environment } from '../daemon/core/environment.ts';
import { silentLogger } from '../daemon/core/log.ts';
import { checkConfig, errorsIn, formatIssue } from '../daemon/config/index.ts';
import { TpmClient } from '../daemon/security/tpm-client.ts';
import { TpmKeySource, sealNewKeyring } from '../daemon/security/tpm-key-source.ts';
import { openStore } from '../daemon/store/index.ts';
import { createAdminAccount } from './admin-account.ts';
import { ApplianceLayout } from './appliance-layout.ts';
import { makeDeviceIdentity, type Subject } from './device-identity.ts';
import { checkHardware, type HardwareCheck } from './hardware-check.ts';

export const provisionHelp = `usage: edgectl provision --profile FILE --config FILE [--json]
       edgectl provision --config FILE            (interactive: prompts for the profile's fields)

Takes the box from factory state to serving:
  1. checks the hardware (CPU, memory, disks, network links, TPM present and not locked out)
  2. seals a new index key, data key and device TLS key (ECDSA P-256) in the TPM under the PCR policy
  3. writes a PKCS#10 CSR (pki/device.csr) for the site CA and a 30-day self-signed certificate
  4. writes the configuration FILE (keys.backend "tpm", no private key on disk)
  5. creates the first admin account with a one-time password (must be changed at first login)
  6. self-test: store write/read, then edged starts and every listener answers on loopback
Prints the RECOVERY SECRET once: keep it off the box; it is the only way back after a firmware change.

Site profile (JSON; relative paths against its folder):
  { "site": {"name": "RAD-EAST", "environment": "production"}, "dataDir": "${ApplianceLayout.dataDir}", "caFile": "site-ca.pem",
    "tpm": {"tcti": "device:/dev/tpmrm0", "pcrs": "sha256:7"},
    "device": {"hostname": "edge1.example", "addresses": ["10.0.0.5"], "subject": {"O": "Hospital", "C": "DE"}},
    "admin": {"username": "admin"},
    "config": { "hl7": {...}, "dicom": {...}, "upstream": {...} } }

site.environment (required): production, test or training (docs/environments.md).

Exit status: 0 provisioned and self-test passed, 1 a step failed (what was done is reported), 2 usage.`;

export interface SiteProfile {
  readonly site: { readonly name: string; readonly environment: Environment };
  readonly dataDir: string;
  readonly caFile: string;
  readonly tpm?: { readonly tcti?: string; readonly pcrs?: string; readonly commandTimeoutMs?: number };
  readonly device: { readonly hostname: string; readonly addresses?: readonly string[]; readonly subject?: Omit<Subject, 'CN'> };
  readonly admin?: { readonly username?: string };
  readonly config?: Record<string, unknown>;
}

export interface ProvisionStep {
  readonly step: string;
  readonly ok: boolean;
  readonly ms: number;
  readonly detail: string;
}

export interface ProvisionReport {
  readonly ok: boolean;
  readonly configFile: string;
  readonly csrFile?: string;
  readonly steps: ProvisionStep[];
  readonly hardware: HardwareCheck[];
  readonly recoverySecret?: string;
  readonly admin?: { readonly username: string; readonly oneTimePassword: string };
  readonly ports?: Record<string, number>;
}

const edgedBin = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'edged');

export async function readProfile(file: string): Promise<{ profile: SiteProfile; baseDir: string }> {
  const path = resolve(file);
  const profile = JSON.parse(await readFile(path, 'utf8')) as SiteProfile;
  for (const [k, v] of [
    ['site.name', profile.site?.name],
    ['dataDir', profile.dataDir],
    ['caFile', profile.caFile],
    ['device.hostname', profile.device?.hostname],
  ] as const) {
    if (typeof v !== 'string' || v === '') throw new Error(`the profile lacks ${k}`);
  }
  // Nothing may guess whether a box serves real patients: the field engineer says so.
  const environment = environmentProblem(profile.site.environment);
  if (environment !== undefined) throw new Error(`the profile's site.environment ${environment}`);
  return { profile, baseDir: dirname(path) };
}

export async function promptProfile(): Promise<{ profile: SiteProfile; baseDir: string }> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const ask = async (q: string, def?: string): Promise<string> => {
      const a = (await rl.question(`${q}${def === undefined ? '' : ` [${def}]`}: `)).trim();
      return a === '' ? (def ?? '') : a;
    };
    const name = await ask('site name (e.g. RAD-EAST)');
    const environment = await ask(`environment (${Environments.join(', ')})`);
    const wrongEnvironment = environmentProblem(environment);
    if (wrongEnvironment !== undefined) throw new Error(`the environment ${wrongEnvironment}`);
    const hostname = await ask('host name of the box (certificate SAN)');
    const addresses = (await ask('its IP addresses, comma-separated', ''))
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    const caFile = await ask('site CA bundle (PEM file)');
    const dataDir = await ask('data directory', ApplianceLayout.dataDir);
    const tcti = await ask('TPM TCTI', 'device:/dev/tpmrm0');
    const org = await ask('organisation (certificate O)', '');
    return {
      profile: {
        site: { name, environment: environment as Environment },
        dataDir,
        caFile,
        tpm: { tcti },
        device: { hostname, addresses, ...(org === '' ? {} : { subject: { O: org } }) },
      },
      baseDir: process.cwd(),
    };
  } finally {
    rl.close();
  }
}

function environmentProblem(value: unknown): string | undefined {
  if (value === undefined || value === '') return `is missing: say ${Environments.map((e) => `"${e}"`).join(', or ')}`;
  return typeof value === 'string' && (Environments as readonly string[]).includes(value)
    ? undefined
    : `must be one of ${Environments.map((e) => `"${e}"`).join(', ')}`;
}

/** The steps of provisioning, in order; each but the store step is recorded as `provision.<step>`. */
type ProvisionStepName =
  'hardware-check' | 'device-key' | 'keys-sealed' | 'certificate-files' | 'config-written' | 'store-and-admin' | 'self-test';

export async function provision(profile: SiteProfile, baseDir: string, configFile: string): Promise<ProvisionReport> {
  const steps: ProvisionStep[] = [];
  const audits: AuditEvent[] = [];
  const box = { kind: 'system', id: profile.site.name, requestor: false } as const;
  const configPath = resolve(configFile);
  const configDir = dirname(configPath);
  const pkiDir = join(configDir, 'pki');
  const dataDir = resolve(baseDir, profile.dataDir);
  const keysDir = join(dataDir, 'keys');
  const tcti = profile.tpm?.tcti ?? 'device:/dev/tpmrm0';
  const pcrs = profile.tpm?.pcrs ?? 'sha256:7';
  const tpm = new TpmClient({ tcti, commandTimeoutMs: profile.tpm?.commandTimeoutMs ?? 30_000 });
  const report = (extra: Partial<ProvisionReport>): ProvisionReport => ({ ok: false, configFile: configPath, steps, hardware, ...extra });
  const step = async <T>(name: ProvisionStepName, fn: () => Promise<{ value: T; detail: string }>): Promise<T> => {
    const t0 = Date.now();
    try {
      const { value, detail } = await fn();
      steps.push({ step: name, ok: true, ms: Date.now() - t0, detail });
      // The store step records what it did as provision.admin-created, inside the store it opens.
      if (name !== 'store-and-admin') audits.push(appActivity(`provision.${name}`, [box], detail));
      return value;
    } catch (err) {
      steps.push({ step: name, ok: false, ms: Date.now() - t0, detail: (err as Error).message });
      throw err;
    }
  };
  let hardware: HardwareCheck[] = [];

  if (existsSync(configPath)) throw new Error(`${configPath} exists: this box looks provisioned (edgectl decommission first)`);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });

  try {
    hardware = await step('hardware-check', async () => {
      const checks = await checkHardware({ dataDir, tpm });
      const errors = checks.filter((c) => !c.ok && c.severity === 'error');
      if (errors.length > 0) throw new Error(`hardware check failed: ${errors.map((c) => `${c.name}: ${c.detail}`).join('; ')}`);
      // Warnings (few CPUs, no link yet) are reported but do not stop provisioning.
      return { value: checks, detail: checks.map((c) => `${c.name}: ${c.ok ? 'ok' : c.severity}`).join(', ') };
    });

    const identity = await step('device-key', async () => {
      const id = await makeDeviceIdentity({
        subject: { ...(profile.device.subject ?? {}), CN: profile.device.hostname },
        hostnames: [profile.device.hostname],
        addresses: profile.device.addresses ?? [],
      });
      return { value: id, detail: 'ECDSA P-256 key pair, CSR and 30-day self-signed certificate made' };
    });

    const sealed = await step('keys-sealed', async () => {
      try {
        const r = await sealNewKeyring({ tpm, keysDir, pcrs, tls: { d: identity.d, publicJwk: identity.publicJwk } });
        return {
          value: r,
          detail: `index key, data key 1 and TLS key sealed under ${pcrs} at ${[r.manifest.index.handle, ...r.manifest.data.map((d) => d.handle), r.manifest.tls?.handle ?? 0].map((h) => `0x${h.toString(16)}`).join(', ')}`,
        };
      } finally {
        identity.d.fill(0);
      }
    });

    const csrFile = join(pkiDir, 'device.csr');
    await step('certificate-files', async () => {
      await mkdir(pkiDir, { recursive: true, mode: 0o700 });
      await copyFile(resolve(baseDir, profile.caFile), join(pkiDir, 'ca.crt'));
      await writeFile(csrFile, identity.csr);
      await writeFile(join(pkiDir, 'device.crt'), identity.selfSigned);
      return { value: undefined, detail: 'pki/ca.crt, pki/device.csr, pki/device.crt (self-signed until edgectl cert install)' };
    });

    await step('config-written', async () => {
      const config = {
        ...(profile.config ?? {}),
        site: { name: profile.site.name, environment: profile.site.environment },
        dataDir,
        keys: {
          backend: 'tpm',
          tpm: { tcti, pcrs, ...(profile.tpm?.commandTimeoutMs === undefined ? {} : { commandTimeoutMs: profile.tpm.commandTimeoutMs }) },
        },
        tls: { caFile: './pki/ca.crt', certFile: './pki/device.crt', ...((profile.config?.['tls'] as object | undefined) ?? {}) },
      };
      const check = checkConfig(config, { baseDir: configDir });
      const errors = errorsIn(check.issues);
      if (errors.length > 0) throw new Error(`the resulting config is invalid:\n${errors.map(formatIssue).join('\n')}`);
      await writeFile(configPath, `${JSON.stringify(config, null, 2)}\n`, { flag: 'wx', mode: 0o640 });
      return { value: undefined, detail: `${configPath} (${check.issues.length} warning(s))` };
    });

    const username = profile.admin?.username ?? 'admin';
    const admin = await step('store-and-admin', async () => {
      const store = await openStore({
        dataDir,
        keySource: new TpmKeySource({ tpm, keysDir, logger: silentLogger }),
        replayWindowMs: 3_600_000,
        logger: silentLogger,
        environment: profile.site.environment,
      });
      try {
        await store.selfTest();
        const { password } = await createAdminAccount(store, username);
        for (const e of audits) store.audit.record(e);
        store.audit.record(
          auditEvent('provision.admin-created', {
            at: Date.now(),
            participants: [box, { kind: 'user', id: username, requestor: false }],
            detail: 'one-time password, must change at first login',
          }),
        );
        return {
          value: { username, oneTimePassword: password },
          detail: `sealed store write/read ok; admin account "${username}" created`,
        };
      } finally {
        await store.close();
      }
    });

    const ports = await step('self-test', async () => {
      const found = await selfTestDaemon(configPath, new X509Certificate(identity.selfSigned).fingerprint256);
      return {
        value: found,
        detail: `edged served: ${Object.entries(found)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')} answered on loopback`,
      };
    });

    await recordLater(dataDir, tpm, keysDir, appActivity('provision.self-test', [box], 'listeners answered'));
    return { ...report({ csrFile, recoverySecret: sealed.recoverySecret, admin, ports }), ok: true };
  } catch (err) {
    const r = report({});
    (r as { error?: string }).error = (err as Error).message;
    return r;
  }
}

async function recordLater(dataDir: string, tpm: TpmClient, keysDir: string, event: AuditEvent): Promise<void> {
  const store = await openStore({
    dataDir,
    keySource: new TpmKeySource({ tpm, keysDir, logger: silentLogger }),
    replayWindowMs: 3_600_000,
    logger: silentLogger,
  });
  try {
    store.audit.record(event);
  } finally {
    await store.close();
  }
}

/** Start edged on the new config, check that each listener answers (TLS ones with the device certificate), stop it. */
export async function selfTestDaemon(configFile: string, fingerprint256: string, timeoutMs = 30_000): Promise<Record<string, number>> {
  const child = spawn(edgedBin, ['--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const lines = createInterface({ input: child.stdout });
  try {
    const ready = await new Promise<Record<string, unknown>>((resolveReady, reject) => {
      const timer = setTimeout(() => reject(new Error('edged did not become ready in time')), timeoutMs);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`edged exited (${code}) during the self-test: ${stderr.slice(-500)}`));
      });
      lines.on('line', (line) => {
        if (line.includes('"event":"edged.safe-mode"') || line.includes('"event":"edged.start-failed"')) {
          clearTimeout(timer);
          reject(new Error(`edged did not start: ${line}`));
        }
        if (line.includes('"event":"edged.ready"')) {
          clearTimeout(timer);
          resolveReady(JSON.parse(line) as Record<string, unknown>);
        }
      });
    });
    const ports: Record<string, number> = {};
    for (const k of ['hl7', 'dicomTls', 'dicomPlain'] as const) {
      const port = ready[k];
      if (typeof port !== 'number') continue;
      if (k === 'dicomPlain') await tcpAnswers(port);
      else await tlsPresents(port, fingerprint256);
      ports[k] = port;
    }
    return ports;
  } finally {
    lines.close();
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
  }
}

function tcpAnswers(port: number): Promise<void> {
  return new Promise((res, rej) => {
    const s = netConnect({ host: '127.0.0.1', port, timeout: 5000 }, () => {
      s.destroy();
      res();
    });
    s.on('timeout', () => s.destroy(new Error(`port ${port} did not answer`)));
    s.on('error', rej);
  });
}

/** TLS 1.3 completes before the server judges the (absent) client certificate, so the server's certificate is seen. */
function tlsPresents(port: number, fingerprint256: string): Promise<void> {
  return new Promise((res, rej) => {
    const s = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, minVersion: 'TLSv1.3', timeout: 5000 }, () => {
      const fp = s.getPeerX509Certificate()?.fingerprint256;
      s.destroy();
      if (fp === fingerprint256) res();
      else rej(new Error(`port ${port} presents another certificate`));
    });
    s.on('timeout', () => s.destroy(new Error(`port ${port} did not answer`)));
    s.on('error', rej);
  });
}

export function printReport(r: ProvisionReport & { error?: string }): void {
  console.log(r.ok ? 'PROVISIONED' : 'PROVISIONING FAILED');
  for (const h of r.hardware)
    console.log(`  hw   ${h.ok ? 'ok  ' : h.severity === 'error' ? 'FAIL' : 'warn'} ${h.name.padEnd(8)} ${h.detail}`);
  for (const s of r.steps) console.log(`  step ${s.ok ? 'ok  ' : 'FAIL'} ${s.step.padEnd(18)} ${String(s.ms).padStart(6)} ms  ${s.detail}`);
  if (r.error !== undefined) console.log(`  error: ${r.error}`);
  console.log(`  config ${r.configFile}`);
  if (r.csrFile !== undefined)
    console.log(`  CSR    ${r.csrFile}  (have the site CA sign it, then: edgectl cert install CERT [CHAIN] --config ${r.configFile})`);
  if (r.admin !== undefined) {
    console.log(`  admin  ${r.admin.username}  one-time password: ${r.admin.oneTimePassword}  (must be changed at first login)`);
  }
  if (r.recoverySecret !== undefined) {
    console.log('');
    console.log(`  RECOVERY SECRET: ${r.recoverySecret}`);
    console.log('  Write it down and keep it OFF the box. It is shown once, never stored here, and is the only');
    console.log('  way to reseal the keys after a firmware or boot-chain change (edgectl keys reseal).');
  }
}
