// What every flow is built from: the config, the open store, the box's own audit identity, its TLS
// material and key source, a logger each flow hands its parts as a child, and the metrics counters.
import type { AuditParticipant, AuditSink } from '../core/audit.ts';
import type { KeySource } from '../core/keys.ts';
import type { Logger } from '../core/log.ts';
import type { EdgeMetrics } from '../core/metrics.ts';
import type { TlsMaterial } from '../core/tls-material.ts';
import type { EdgeConfig } from '../config/index.ts';
import type { Store } from '../store/index.ts';

export interface FlowContext {
  readonly config: EdgeConfig;
  readonly store: Store;
  /**
   * On a production box with an HL7 test channel: a store of its own for the test worklist (its own
   * database under `<dataDir>/test-channel`), so test orders and patient updates can never touch
   * production orders or patients. Only its orders are used; the audit trail stays the box's one.
   */
  readonly testChannelStore?: Store;
  /** The audit chain itself (the listeners get the coalescing sink of audit-guards.ts instead). */
  readonly audit: AuditSink;
  readonly box: AuditParticipant;
  readonly tls: TlsMaterial;
  readonly keySource: KeySource;
  readonly logger: Logger;
  /** Counters for the central monitor (core/metrics.ts): one increment per event, nothing more. */
  readonly metrics: EdgeMetrics;
}
