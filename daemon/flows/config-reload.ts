// Live config reload, asked for by `POST /v1/config/reload` (edgectl peer add/remove) or SIGHUP.
//
// What a reload changes: the inbound peer lists (hl7.peers, dicom.modalities). The listeners consult
// the current PeerPolicies on every new connection or association, so an added peer is admitted at
// once and unchanged peers keep their open connections. A peer that was removed or whose rule changed
// loses its open connections and associations (deny by default: a revoked modality must not keep
// querying on an association opened before). Everything else (listener addresses, TLS material,
// upstream PACS/RIS, audit collectors, limits) is reported as a warning `restart-required` and keeps
// its running value. A reload with any error changes nothing and reports every issue.
import { resolve } from 'node:path';
import type { AuditParticipant, AuditSink } from '../core/audit.ts';
import type { ControlRoute } from '../core/control-route.ts';
import { EdgeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import {
  ConfigError,
  checkConfigFile,
  diffBy,
  errorsIn,
  restartRequired,
  type ConfigIssue,
  type DicomModalityConfig,
  type EdgeConfig,
  type PeerChanges,
} from '../config/index.ts';
import type { BoxPeerPolicies } from './orders-worklist.ts';

export interface ReloadResult {
  readonly applied: boolean;
  readonly issues: readonly ConfigIssue[];
  readonly hl7: PeerChanges;
  readonly modalities: PeerChanges;
  /** Connections and associations closed because their peer was removed or changed. */
  readonly closed: number;
}

export interface ConfigReloaderOptions {
  readonly configFile: string;
  readonly running: EdgeConfig;
  readonly policies: BoxPeerPolicies;
  /** Close HL7 connections of the peers (by name) `drop` selects; returns how many. */
  readonly closeHl7: (drop: (peerName: string) => boolean, reason: string) => number;
  /** Abort associations of the modalities (by their rule) `drop` selects; returns how many. */
  readonly closeModalities: (drop: (rule: DicomModalityConfig) => boolean, reason: string) => number;
  readonly audit: AuditSink;
  readonly box: AuditParticipant;
  readonly logger: Logger;
}

const noChanges: PeerChanges = { added: [], removed: [], changed: [] };

/** Reloads are serialised: a second request waits for the first. */
export class ConfigReloader {
  readonly #o: ConfigReloaderOptions;
  #running: EdgeConfig;
  #last: Promise<unknown> = Promise.resolve();

  constructor(options: ConfigReloaderOptions) {
    this.#o = options;
    this.#running = options.running;
  }

  reload(): Promise<ReloadResult> {
    const next = this.#last.then(
      () => this.#reload(),
      () => this.#reload(),
    );
    this.#last = next.catch(() => undefined);
    return next;
  }

  #reload(): ReloadResult {
    const o = this.#o;
    const path = resolve(o.configFile);
    let issues: ConfigIssue[];
    let next: EdgeConfig | undefined;
    try {
      const result = checkConfigFile(path);
      issues = [...result.issues];
      next = result.config;
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      issues = [{ severity: 'error', code: 'unreadable', path: '', message: err.message }];
    }
    if (next === undefined || errorsIn(issues).length > 0) return this.#refused(issues);

    issues.push(...restartRequired(this.#running, next));
    const hl7 = diffBy(this.#o.policies.hl7Peers, next.hl7.peers, (p) => p.name);
    const modalities = diffBy(this.#o.policies.modalities, next.dicom.modalities, (m) => m.aeTitle.trim());
    try {
      o.policies.replace(next.hl7.peers, next.dicom.modalities);
    } catch (err) {
      // A schema-valid rule the policy still cannot build (should not happen): keep the old policies.
      issues.push({ severity: 'error', code: 'invalid-value', path: '', message: `peer policy: ${(err as Error).message}` });
      return this.#refused(issues);
    }
    this.#running = {
      ...this.#running,
      hl7: { ...this.#running.hl7, peers: next.hl7.peers },
      dicom: { ...this.#running.dicom, modalities: next.dicom.modalities },
    };

    // After the swap: new connections already meet the new policy while the old ones are closed.
    const goneHl7 = new Set([...hl7.removed, ...hl7.changed]);
    const goneAe = new Set([...modalities.removed, ...modalities.changed]);
    let closed = 0;
    if (goneHl7.size > 0) closed += o.closeHl7((name) => goneHl7.has(name), 'peer removed or changed by a config reload');
    if (goneAe.size > 0)
      closed += o.closeModalities((rule) => goneAe.has(rule.aeTitle.trim()), 'modality removed or changed by a config reload');

    const summary = `hl7 +${hl7.added.length} -${hl7.removed.length} ~${hl7.changed.length}; modalities +${modalities.added.length} -${modalities.removed.length} ~${modalities.changed.length}`;
    const named = [
      ...hl7.added.map((n) => `+hl7 ${n}`),
      ...hl7.removed.map((n) => `-hl7 ${n}`),
      ...hl7.changed.map((n) => `~hl7 ${n}`),
      ...modalities.added.map((n) => `+ae ${n}`),
      ...modalities.removed.map((n) => `-ae ${n}`),
      ...modalities.changed.map((n) => `~ae ${n}`),
    ];
    const restart = issues.filter((i) => i.code === 'restart-required').map((i) => i.path);
    o.audit.record({
      eventId: 'SecurityAlert',
      type: 'config.reloaded',
      action: 'E',
      outcome: 0,
      at: Date.now(),
      participants: [o.box],
      detail: `${summary}${named.length > 0 ? ` (${named.join(', ')})` : ''}; ${closed} connection(s) closed${restart.length > 0 ? `; restart required for ${restart.join(', ')}` : ''}`,
    });
    o.logger.info('config.reloaded', {
      hl7Added: hl7.added.length,
      hl7Removed: hl7.removed.length,
      hl7Changed: hl7.changed.length,
      modalitiesAdded: modalities.added.length,
      modalitiesRemoved: modalities.removed.length,
      modalitiesChanged: modalities.changed.length,
      closed,
      restartRequired: restart.length,
    });
    return { applied: true, issues, hl7, modalities, closed };
  }

  #refused(issues: readonly ConfigIssue[]): ReloadResult {
    const errors = errorsIn(issues);
    this.#o.audit.record({
      eventId: 'SecurityAlert',
      type: 'config.reload-refused',
      action: 'E',
      outcome: 4,
      at: Date.now(),
      participants: [this.#o.box],
      detail: `${errors.length} error(s): ${errors
        .slice(0, 5)
        .map((i) => `${i.path || '(document)'} [${i.code}]`)
        .join(', ')}`,
    });
    this.#o.logger.warn('config.reload-refused', { errors: errors.length });
    return { applied: false, issues, hl7: noChanges, modalities: noChanges, closed: 0 };
  }
}

/** `POST /v1/config/reload`: 200 with what changed, 422 with every issue when nothing was applied. */
export function reloadRoute(reload: () => Promise<ReloadResult>): ControlRoute {
  return {
    method: 'POST',
    path: '/v1/config/reload',
    permission: 'admin',
    stepUp: true,
    handle: async () => {
      const result = await reload();
      return { status: result.applied ? 200 : 422, body: result };
    },
  };
}

/** A reload when edged was started without a config file is a caller mistake, reported by code. */
export function noConfigFile(): Promise<ReloadResult> {
  return Promise.reject(new EdgeError('EDGE_CONFIG_UNREADABLE', 'edged was started without a config file to reload'));
}
