// The box's Prometheus metrics (prom-client, its own Registry, not the library's global one). The
// clinical path only increments counters (core/metrics.ts); everything else is read from cheap sources
// when the monitor scrapes. Base units, `_total` on counters, bounded labels only: peer names from the
// config, listener, destination, message type, ACK code, DIMSE status class. docs/admin-page.md lists
// every metric with its meaning.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { type DimseStatusClass, type EdgeMetrics, type MetricsListener, countedHl7MessageType } from '../core/metrics.ts';

/** What the scrape reads; each is an in-memory read (no disk, no network, no database scan). */
export interface MetricsSources {
  destinations(): readonly {
    readonly destination: string;
    readonly state: 'up' | 'degraded' | 'down';
    readonly queued: number;
    readonly deadLetters: number;
    /** Enqueue time (ms since epoch) of the oldest queued entry; undefined when none is queued. */
    readonly oldestEnqueuedAt: number | undefined;
  }[];
  connections(): readonly { readonly listener: MetricsListener; readonly count: number }[];
  spool(): { readonly bytes: number; readonly highWaterBytes: number; readonly instances: number } | undefined;
  /** Sequence number of the last audit record appended (records since the chain began). */
  auditRecords(): number;
  syslogCollectors(): readonly { readonly collector: string; readonly lagRecords: number; readonly connected: boolean }[];
  /** Expiry of each certificate the box holds, by a fixed name (device, site-ca, …). */
  certificates(): readonly { readonly certificate: string; readonly notAfterMs: number }[];
  safeMode(): boolean;
  /** Open alerts, and alerts raised per rule since start (incident support); the rules are a fixed set. */
  alerts(): { readonly open: number; readonly raisedByRule: Readonly<Record<string, number>> };
}

export interface BuildInfo {
  readonly version: string;
  readonly nodeVersion: string;
}

const CIRCUIT_STATES = ['up', 'degraded', 'down'] as const;

/** Seconds buckets for a Modality Worklist query: 1 ms to 5 s (the box answers in a few ms). */
const WORKLIST_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export class PrometheusMetrics implements EdgeMetrics {
  readonly registry = new Registry();
  readonly #hl7: Counter<'peer' | 'message_type' | 'ack_code'>;
  readonly #refusals: Counter<'listener' | 'reason'>;
  readonly #worklistQueries: Counter<'peer'>;
  readonly #worklistSeconds: Histogram<'peer'>;
  readonly #mpps: Counter<'peer' | 'operation' | 'status_class'>;
  readonly #cStore: Counter<'peer' | 'status_class'>;
  readonly #cStoreBytes: Counter<'peer'>;
  #sources: MetricsSources | undefined;

  constructor(build: BuildInfo) {
    const registers = [this.registry];
    this.#hl7 = new Counter({
      name: 'edge_hl7_messages_total',
      help: 'HL7 v2 messages answered, by peer, message type (MSH-9) and ACK code (MSA-1).',
      labelNames: ['peer', 'message_type', 'ack_code'],
      registers,
    });
    this.#refusals = new Counter({
      name: 'edge_refusals_total',
      help: 'Connections, associations and requests refused, by listener and reason.',
      labelNames: ['listener', 'reason'],
      registers,
    });
    this.#worklistQueries = new Counter({
      name: 'edge_mwl_queries_total',
      help: 'Modality Worklist C-FIND queries answered, by modality AE title.',
      labelNames: ['peer'],
      registers,
    });
    this.#worklistSeconds = new Histogram({
      name: 'edge_mwl_query_duration_seconds',
      help: 'Time from a Modality Worklist C-FIND request to its last response, by modality AE title.',
      labelNames: ['peer'],
      buckets: WORKLIST_BUCKETS,
      registers,
    });
    this.#mpps = new Counter({
      name: 'edge_mpps_requests_total',
      help: 'MPPS N-CREATE and N-SET requests answered, by modality AE title, operation and DIMSE status class.',
      labelNames: ['peer', 'operation', 'status_class'],
      registers,
    });
    this.#cStore = new Counter({
      name: 'edge_cstore_instances_total',
      help: 'C-STORE requests answered, by modality AE title and DIMSE status class.',
      labelNames: ['peer', 'status_class'],
      registers,
    });
    this.#cStoreBytes = new Counter({
      name: 'edge_cstore_bytes_total',
      help: 'Bytes of the instances stored (durably spooled), by modality AE title.',
      labelNames: ['peer'],
      registers,
    });
    new Gauge({
      name: 'edge_build_info',
      help: 'Always 1; the labels name the running build.',
      labelNames: ['version', 'node_version'],
      registers,
    }).set({ version: build.version, node_version: build.nodeVersion }, 1);
    this.#scrapeTimeMetrics();
  }

  /** Where the scrape-time values come from, once the box is composed; until then they are absent. */
  setSources(sources: MetricsSources): void {
    this.#sources = sources;
  }

  /** The exposition text and its content type, for the `/metrics` route. */
  async exposition(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  hl7Message(peer: string, messageType: string, ackCode: string): void {
    this.#hl7.inc({ peer, message_type: countedHl7MessageType(messageType), ack_code: ackCode });
  }

  refusal(listener: MetricsListener, reason: string): void {
    this.#refusals.inc({ listener, reason });
  }

  worklistQuery(aeTitle: string, seconds: number): void {
    this.#worklistQueries.inc({ peer: aeTitle });
    this.#worklistSeconds.observe({ peer: aeTitle }, seconds);
  }

  mpps(aeTitle: string, operation: 'n-create' | 'n-set', statusClass: DimseStatusClass): void {
    this.#mpps.inc({ peer: aeTitle, operation, status_class: statusClass });
  }

  cStore(aeTitle: string, statusClass: DimseStatusClass, bytes: number): void {
    this.#cStore.inc({ peer: aeTitle, status_class: statusClass });
    if (bytes > 0) this.#cStoreBytes.inc({ peer: aeTitle }, bytes);
  }

  #scrapeTimeMetrics(): void {
    const registers = [this.registry];
    const sources = (): MetricsSources | undefined => this.#sources;
    new Gauge({
      name: 'edge_outbox_queue_depth',
      help: 'Entries waiting in the outbox for their upstream destination.',
      labelNames: ['destination'],
      registers,
      collect() {
        this.reset();
        for (const d of sources()?.destinations() ?? []) this.set({ destination: d.destination }, d.queued);
      },
    });
    new Gauge({
      name: 'edge_outbox_oldest_age_seconds',
      help: 'Age of the oldest entry waiting for the destination (0 when none waits).',
      labelNames: ['destination'],
      registers,
      collect() {
        this.reset();
        const now = Date.now();
        for (const d of sources()?.destinations() ?? [])
          this.set({ destination: d.destination }, d.oldestEnqueuedAt === undefined ? 0 : Math.max(0, now - d.oldestEnqueuedAt) / 1000);
      },
    });
    new Gauge({
      name: 'edge_outbox_dead_letters',
      help: 'Entries the destination refused for good, waiting for a person to retry or discard them.',
      labelNames: ['destination'],
      registers,
      collect() {
        this.reset();
        for (const d of sources()?.destinations() ?? []) this.set({ destination: d.destination }, d.deadLetters);
      },
    });
    new Gauge({
      name: 'edge_outbox_circuit_state',
      help: '1 for the state the destination is in (up, degraded, down), 0 for the others.',
      labelNames: ['destination', 'state'],
      registers,
      collect() {
        this.reset();
        for (const d of sources()?.destinations() ?? [])
          for (const state of CIRCUIT_STATES) this.set({ destination: d.destination, state }, d.state === state ? 1 : 0);
      },
    });
    new Gauge({
      name: 'edge_connections',
      help: 'Open authenticated connections (HL7) and associations (DICOM), by listener.',
      labelNames: ['listener'],
      registers,
      collect() {
        this.reset();
        for (const c of sources()?.connections() ?? []) this.set({ listener: c.listener }, c.count);
      },
    });
    new Gauge({
      name: 'edge_spool_bytes',
      help: 'Bytes of images in the encrypted spool waiting for the PACS.',
      registers,
      collect() {
        this.reset();
        const s = sources()?.spool();
        if (s !== undefined) this.set(s.bytes);
      },
    });
    new Gauge({
      name: 'edge_spool_high_water_bytes',
      help: 'The spool high-water mark: above it new images are refused (0xA700).',
      registers,
      collect() {
        this.reset();
        const s = sources()?.spool();
        if (s !== undefined) this.set(s.highWaterBytes);
      },
    });
    new Gauge({
      name: 'edge_spool_instances',
      help: 'Images in the encrypted spool waiting for the PACS.',
      registers,
      collect() {
        this.reset();
        const s = sources()?.spool();
        if (s !== undefined) this.set(s.instances);
      },
    });
    new Gauge({
      name: 'edge_alerts_open',
      help: 'Alerts raised from the audit trail and not yet acknowledged.',
      registers,
      collect() {
        this.set(sources()?.alerts().open ?? 0);
      },
    });
    const alertsCounted = new Map<string, number>();
    new Counter({
      name: 'edge_alerts_raised_total',
      help: 'Alerts raised by the alert rules, per rule (repeats of an open alert are not counted again).',
      labelNames: ['rule'],
      registers,
      collect() {
        for (const [rule, n] of Object.entries(sources()?.alerts().raisedByRule ?? {})) {
          const before = alertsCounted.get(rule) ?? 0;
          if (n > before) {
            this.inc({ rule }, n - before);
            alertsCounted.set(rule, n);
          }
        }
      },
    });
    let auditCounted = 0;
    new Counter({
      name: 'edge_audit_records_total',
      help: 'Audit records appended to the hash-linked chain since it began.',
      registers,
      collect() {
        const n = sources()?.auditRecords() ?? 0;
        if (n > auditCounted) {
          this.inc(n - auditCounted);
          auditCounted = n;
        }
      },
    });
    new Gauge({
      name: 'edge_syslog_cursor_lag_records',
      help: 'Audit records the syslog collector has still to confirm.',
      labelNames: ['collector'],
      registers,
      collect() {
        this.reset();
        for (const c of sources()?.syslogCollectors() ?? []) this.set({ collector: c.collector }, c.lagRecords);
      },
    });
    new Gauge({
      name: 'edge_syslog_connected',
      help: '1 while the box is connected to the syslog collector, 0 otherwise.',
      labelNames: ['collector'],
      registers,
      collect() {
        this.reset();
        for (const c of sources()?.syslogCollectors() ?? []) this.set({ collector: c.collector }, c.connected ? 1 : 0);
      },
    });
    new Gauge({
      name: 'edge_certificate_expiry_timestamp_seconds',
      help: 'When each certificate the box holds expires (notAfter), seconds since the epoch.',
      labelNames: ['certificate'],
      registers,
      collect() {
        this.reset();
        for (const c of sources()?.certificates() ?? []) this.set({ certificate: c.certificate }, Math.floor(c.notAfterMs / 1000));
      },
    });
    // prom-client's default metrics are left out: three of them (nodejs_active_*_total) break the
    // naming rules promtool checks. These two are the standard process metrics a monitor alerts on.
    const startSeconds = Math.floor((Date.now() - performance.now()) / 1000);
    new Gauge({ name: 'process_start_time_seconds', help: 'Start time of the process since the epoch, in seconds.', registers }).set(
      startSeconds,
    );
    new Gauge({
      name: 'process_resident_memory_bytes',
      help: 'Resident memory size of the process in bytes.',
      registers,
      collect() {
        this.set(process.memoryUsage.rss());
      },
    });
    new Gauge({
      name: 'edge_safe_mode',
      help: '1 while the box is in safe mode (keys not unsealed, no listener serving), 0 while it serves.',
      registers,
      collect() {
        this.set(sources()?.safeMode() === true ? 1 : 0);
      },
    });
  }
}
