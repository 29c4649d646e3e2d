// The admin page's overview (`GET /v1/overview`): whether the box serves, its keys backend, each
// listener and upstream destination, the alarms a person should act on, and the host's health from the
// background sampler (observability/system-health.ts). Everything here is an in-memory read, so the
// page's refresh every few seconds costs the clinical path nothing.
import { join } from 'node:path';
import type { ControlRoute } from '../core/control-route.ts';
import type { DestinationStatus } from '../core/outbox.ts';
import type { Service, ServiceStatus } from '../core/service.ts';
import { SystemHealthSampler } from '../observability/system-health.ts';
import type { FlowContext } from './flow-context.ts';

/** How often the host's health is sampled (systeminformation takes ~0.5 s of one core per sample). */
const SYSTEM_SAMPLE_INTERVAL_MS = 15_000;
/** Certificates are flagged this long before they expire. */
export const CERTIFICATE_WARNING_MS = 30 * 24 * 3_600_000;

export interface Alarm {
  readonly severity: 'warning' | 'critical';
  /** A stable key: `service:<name>`, `destination:<name>`, `spool`, `keys`, `certificate:<name>`, … */
  readonly key: string;
  readonly text: string;
}

export interface OverviewParts {
  readonly services: () => readonly ServiceStatus[];
  readonly destinations: () => readonly DestinationStatus[];
  readonly ports: () => Readonly<Record<string, number | undefined>>;
  readonly spool: () => { readonly bytes: number; readonly highWaterBytes: number; readonly aboveHighWater: boolean } | undefined;
  readonly certificates: () => readonly { readonly certificate: string; readonly notAfterMs: number }[];
  readonly startedAt: number;
}

export interface OverviewFlow extends Service {
  readonly routes: readonly ControlRoute[];
}

const LISTENERS: readonly { readonly service: string; readonly name: string; readonly port: string }[] = [
  { service: 'hl7-listener', name: 'HL7 from the RIS (MLLP/TLS)', port: 'hl7' },
  { service: 'dicom-tls-listener', name: 'DICOM from modalities (TLS)', port: 'dicomTls' },
  { service: 'dicom-plain-listener', name: 'DICOM from allowlisted modalities (plain)', port: 'dicomPlain' },
];

export function overviewFlow(ctx: FlowContext, parts: OverviewParts): OverviewFlow {
  const { config, keySource, logger } = ctx;
  const spoolDir = config.dicom.storage.spool.directory ?? join(config.dataDir, 'spool');
  const sampler = new SystemHealthSampler({
    folders: [
      { name: 'data', path: config.dataDir },
      { name: 'spool', path: spoolDir },
    ],
    intervalMs: SYSTEM_SAMPLE_INTERVAL_MS,
    logger: logger.child({ component: 'health' }),
  });
  // Read if another part of the config declares it (production, test, training, …).
  const environment = (config as unknown as { environment?: unknown }).environment;

  const overview = (): Record<string, unknown> => {
    const services = parts.services();
    const ports = parts.ports();
    const destinations = parts.destinations();
    const now = Date.now();
    const alarms: Alarm[] = [];
    if (keySource.backend === 'file')
      alarms.push({ severity: 'critical', key: 'keys', text: 'keys.backend is file: development only, the keys are not sealed by a TPM' });
    for (const s of services)
      if (s.status !== 'ok')
        alarms.push({
          severity: s.status === 'down' ? 'critical' : 'warning',
          key: `service:${s.name}`,
          text: `${s.name} ${s.status}${s.detail === undefined ? '' : `: ${s.detail}`}`,
        });
    for (const d of destinations) {
      if (d.state !== 'up')
        alarms.push({
          severity: d.state === 'down' ? 'critical' : 'warning',
          key: `destination:${d.destination}`,
          text: `${d.destination} is ${d.state}; ${d.queued} waiting`,
        });
      if (d.deadLetters > 0)
        alarms.push({
          severity: 'warning',
          key: `dead-letters:${d.destination}`,
          text: `${d.deadLetters} dead letter(s) for ${d.destination} wait for a person`,
        });
    }
    const spool = parts.spool();
    if (spool?.aboveHighWater === true)
      alarms.push({
        severity: 'critical',
        key: 'spool',
        text: `spool above its high-water mark (${spool.bytes} of ${spool.highWaterBytes} bytes): new images are refused`,
      });
    for (const c of parts.certificates())
      if (c.notAfterMs - now < CERTIFICATE_WARNING_MS)
        alarms.push({
          severity: c.notAfterMs < now ? 'critical' : 'warning',
          key: `certificate:${c.certificate}`,
          text: `certificate ${c.certificate} ${c.notAfterMs < now ? 'expired' : 'expires'} ${new Date(c.notAfterMs).toISOString().slice(0, 10)}`,
        });
    const system = sampler.last;
    if (system?.ntpSynchronized === false) alarms.push({ severity: 'warning', key: 'ntp', text: 'the clock is not NTP-synchronised' });
    return {
      site: config.site.name,
      serving: true,
      safeMode: false,
      ...(typeof environment === 'string' ? { environment } : {}),
      keysBackend: keySource.backend,
      uptimeMs: now - parts.startedAt,
      listeners: LISTENERS.flatMap((l) => {
        const s = services.find((x) => x.name === l.service);
        return s === undefined
          ? []
          : [{ name: l.name, service: l.service, up: s.state === 'running' && s.status !== 'down', port: ports[l.port] }];
      }),
      destinations: destinations.map((d) => ({ destination: d.destination, state: d.state, queued: d.queued, deadLetters: d.deadLetters })),
      services: services.map((s) => ({
        name: s.name,
        state: s.state,
        status: s.status,
        ...(s.detail === undefined ? {} : { detail: s.detail }),
      })),
      alarms,
      system: system ?? null,
    };
  };

  return {
    name: 'overview',
    routes: [{ method: 'GET', path: '/v1/overview', permission: 'viewer', handle: () => ({ status: 200, body: overview() }) }],
    start: async () => sampler.start(),
    stop: () => sampler.stop(),
    health: () => ({ status: 'ok' }),
  };
}
