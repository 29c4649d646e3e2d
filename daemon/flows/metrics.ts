// The metrics flow: what the listeners' events count (one increment each, nothing else on the clinical
// path) and where the scrape reads everything else from: the outbox, the listeners, the spool, the audit
// chain and its syslog cursors, the certificates. The exposition itself is the admin adapter's
// (admin/prometheus-metrics.ts); the route that serves it is mounted on the admin listener.
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import type { EdgeMetrics, MetricsListener } from '../core/metrics.ts';
import type { TlsMaterial } from '../core/tls-material.ts';
import type { OutboxDispatcher } from '../core/outbox-dispatcher.ts';
import type { DicomEvent } from '../dicom/index.ts';
import type { Hl7ListenerEvent } from '../hl7/index.ts';
import { type MetricsSources, PrometheusMetrics } from '../admin/prometheus-metrics.ts';

/** The version in package.json, read once at start. */
function buildVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    // A box without its package.json still serves; the build label says so.
    return 'unknown';
  }
}

export function boxMetrics(): PrometheusMetrics {
  return new PrometheusMetrics({ version: buildVersion(), nodeVersion: process.versions.node });
}

/** A refusal reason as a label: a short code as it is, anything longer (a CN, an address) as its kind. */
function reasonLabel(reason: string, fallback: string): string {
  return /^[A-Za-z0-9_-]{1,40}$/.test(reason) ? reason : fallback;
}

/** What an HL7 listener event counts. */
export function countHl7(metrics: EdgeMetrics, e: Hl7ListenerEvent): void {
  switch (e.type) {
    case 'peer-refused':
      metrics.refusal('hl7', reasonLabel(e.reason, 'peer-not-identified'));
      return;
    case 'framing-error':
      metrics.refusal('hl7', 'framing-error');
      return;
    case 'connection-superseded':
    case 'connection-closed':
      return;
    default:
      if (e.ackCode !== undefined) metrics.hl7Message(e.peer, e.msh9 ?? 'other', e.ackCode);
  }
}

/** What a DICOM listener event counts. */
export function countDicom(metrics: EdgeMetrics, listener: MetricsListener, e: DicomEvent): void {
  switch (e.type) {
    case 'association-rejected':
    case 'tls-handshake-failed':
    case 'connection-refused':
      metrics.refusal(listener, e.type);
      return;
    case 'association-aborted':
      if (e.by === 'local') metrics.refusal(listener, e.type);
      return;
    case 'association-accepted':
    case 'association-released':
      return;
  }
}

/** The certificates the box holds, parsed once: the device certificate and each CA of the site bundle. */
export function certificateExpiries(tls: Pick<TlsMaterial, 'cert' | 'ca'>): { certificate: string; notAfterMs: number }[] {
  const out: { certificate: string; notAfterMs: number }[] = [];
  const add = (name: string, pem: string): void => {
    try {
      out.push({ certificate: name, notAfterMs: Date.parse(new X509Certificate(pem).validTo) });
    } catch {
      // A block that does not parse was refused when the TLS material loaded; nothing to report here.
    }
  };
  const blocks = (buf: Buffer): string[] =>
    buf.toString('utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  const [device] = blocks(tls.cert);
  if (device !== undefined) add('device', device);
  blocks(tls.ca).forEach((pem, i) => add(i === 0 ? 'site-ca' : `site-ca-${i + 1}`, pem));
  return out;
}

export interface MetricsSourceParts {
  readonly dispatcher: OutboxDispatcher;
  readonly connections: () => readonly { readonly listener: MetricsListener; readonly count: number }[];
  readonly spool: () => { readonly bytes: number; readonly highWaterBytes: number; readonly instances: number } | undefined;
  readonly auditLastSeq: () => number;
  readonly collectors: () => readonly { readonly collector: string; readonly confirmedSeq: number; readonly connected: boolean }[];
  readonly tls: Pick<TlsMaterial, 'cert' | 'ca'>;
  readonly alerts: () => { readonly open: number; readonly raisedByRule: Readonly<Record<string, number>> };
}

/** The scrape-time sources of a serving box (never in safe mode: then no listener serves). */
export function metricsSources(p: MetricsSourceParts): MetricsSources {
  const certificates = certificateExpiries(p.tls);
  return {
    destinations: () =>
      p.dispatcher.status().map((d) => ({
        destination: d.destination,
        state: d.state,
        queued: d.queued,
        deadLetters: d.deadLetters,
        oldestEnqueuedAt: d.queued === 0 ? undefined : p.dispatcher.list(d.destination, 1)[0]?.enqueuedAt,
      })),
    connections: p.connections,
    spool: p.spool,
    auditRecords: p.auditLastSeq,
    syslogCollectors: () => {
      const last = p.auditLastSeq();
      return p
        .collectors()
        .map((c) => ({ collector: c.collector, connected: c.connected, lagRecords: Math.max(0, last - c.confirmedSeq) }));
    },
    certificates: () => certificates,
    safeMode: () => false,
    alerts: p.alerts,
  };
}
