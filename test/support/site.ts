// A development site in a temp dir (written by the real `edgectl dev-site`) and the daemon started on it.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Supervised, run } from './processes.ts';

export const repoRoot = resolve(import.meta.dirname, '../..');

export interface SiteInfo {
  readonly dir: string;
  readonly configFile: string;
  readonly pki: { caCert: string; serverCert: string; serverKey: string };
  readonly ris: { certFile: string; keyFile: string; sendingApplication: string; sendingFacility: string };
  readonly modalities: ReadonlyArray<{ aeTitle: string; transport: 'tls' | 'plain'; certFile?: string; keyFile?: string }>;
  readonly stranger: { certFile: string; keyFile: string };
  readonly rogue: { caCert: string; certFile: string; keyFile: string };
}

/**
 * Write a site with `edgectl dev-site`, then let the test adjust the config (ports become 0 so parallel
 * test files never collide; the daemon reports what it bound).
 */
export async function createSite(adjust?: (config: Record<string, any>) => void): Promise<SiteInfo & { cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'edge-site-'));
  const r = await run(join(repoRoot, 'bin/edgectl'), ['dev-site', '--dir', dir, '--force'], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`dev-site failed: ${r.stderr}${r.stdout}`);
  const configFile = join(dir, 'edge.json');
  const config = JSON.parse(await readFile(configFile, 'utf8')) as Record<string, any>;
  config['hl7'].listen.port = 0;
  config['dicom'].tls.port = 0;
  config['dicom'].plain.port = 0;
  if (config['admin'] !== undefined) config['admin'].listen.port = 0;
  config['shutdown'] = { drainTimeoutMs: 3000 };
  adjust?.(config);
  await writeFile(configFile, JSON.stringify(config, null, 2));
  const site = JSON.parse(await readFile(join(dir, 'site.json'), 'utf8')) as SiteInfo;
  return { ...site, dir, configFile, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface Ports {
  readonly hl7: number;
  readonly dicomTls: number;
  readonly dicomPlain: number;
  /** The admin listener's port (0 when the site has none). */
  readonly admin: number;
}

export interface Launch {
  readonly cmd: string;
  readonly args: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
}

export interface StartHow {
  readonly env?: NodeJS.ProcessEnv;
  readonly launch?: Launch;
  /** Called as soon as the process is spawned, before it is ready (to act on its start-up lines). */
  readonly onSpawn?: (process: Supervised) => void;
}

export class Daemon {
  readonly process: Supervised;
  ports!: Ports;

  private constructor(configFile: string, how: StartHow) {
    const env = { ...process.env, ...how.env, ...how.launch?.env };
    this.process =
      how.launch === undefined
        ? new Supervised(join(repoRoot, 'bin/edged'), ['--config', configFile], { env })
        : new Supervised(how.launch.cmd, [...how.launch.args, '--config', configFile], { env });
  }

  /**
   * `how.env` adds to the test's own environment (e.g. NOTIFY_SOCKET and WATCHDOG_USEC as systemd sets
   * them); `how.launch` starts it some other way than bin/edged (the config arguments are appended).
   */
  static async start(configFile: string, how: StartHow = {}): Promise<Daemon> {
    const d = new Daemon(configFile, how);
    how.onSpawn?.(d.process);
    const ready = await d.process.waitForEvent('edged.ready', 30_000);
    d.ports = {
      hl7: Number(ready['hl7']),
      dicomTls: Number(ready['dicomTls']),
      dicomPlain: Number(ready['dicomPlain']),
      admin: Number(ready['admin'] ?? 0),
    };
    return d;
  }

  get pid(): number {
    return this.process.child.pid!;
  }

  /**
   * SIGTERM, then the exit status — but only when the shutdown really completed (`edged.stopped` logged):
   * a process whose event loop ran dry halfway through its shutdown also exits 0, with the store unclosed.
   */
  async stop(): Promise<number | null | 'exited without completing its shutdown'> {
    const code = await this.process.stop('SIGTERM');
    if (code === 0 && this.process.events('edged.stopped').length === 0) return 'exited without completing its shutdown';
    return code;
  }

  kill9(): Promise<number | null> {
    return this.process.stop('SIGKILL');
  }
}
