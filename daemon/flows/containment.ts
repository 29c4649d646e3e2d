// Incident support, containment side: quarantining a peer. Its rule stays in the config but leaves the
// policies in force at once (security/peer-policies.ts), its open connections and associations are
// closed, and the list of quarantined peers is written beside the data (`quarantine.json`) for the
// root firewall unit, which drops the peer's addresses from the ruleset when segmentation is on. The
// quarantine is kept in the store (it survives restarts) and is lifted with a release; both audited.
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { AuditParticipant } from '../core/audit.ts';
import { securityAlert } from '../core/audit-event-builders.ts';
import { type ControlRequest, type ControlRoute, actorOf } from '../core/control-route.ts';
import { EdgeError } from '../core/errors.ts';
import { QUARANTINE_FILE, type Quarantine } from '../core/incident.ts';
import type { Service } from '../core/service.ts';
import type { DicomModalityConfig } from '../config/index.ts';
import type { FlowContext } from './flow-context.ts';
import type { BoxPeerPolicies } from './orders-worklist.ts';

export interface ContainmentOptions {
  readonly policies: BoxPeerPolicies;
  readonly closeHl7: (drop: (peerName: string) => boolean, reason: string) => number;
  readonly closeModalities: (drop: (rule: DicomModalityConfig) => boolean, reason: string) => number;
}

export interface Containment extends Service {
  readonly routes: readonly ControlRoute[];
  quarantined(): readonly Quarantine[];
}

export function containment(ctx: FlowContext, o: ContainmentOptions): Containment {
  const { config, store, audit } = ctx;
  const log = ctx.logger.child({ component: 'containment' });
  let list: Quarantine[] = [];
  let serial: Promise<unknown> = Promise.resolve();

  /** The peer a name stands for: an HL7 sender by name, a modality by name or AE title. */
  const resolve = (name: string): { kind: Quarantine['kind']; name: string; participant: AuditParticipant } => {
    const hl7 = o.policies.hl7Peers.find((p) => p.name === name);
    if (hl7 !== undefined) return { kind: 'hl7', name: hl7.name, participant: { kind: 'hl7', id: hl7.name, requestor: false } };
    const m = o.policies.modalities.find((x) => x.name === name || x.aeTitle.trim() === name);
    if (m !== undefined)
      return { kind: 'modality', name: m.aeTitle.trim(), participant: { kind: 'dicom', id: m.aeTitle.trim(), requestor: false } };
    throw new EdgeError('EDGE_PEER_NOT_FOUND', `name: no HL7 peer or modality is called "${name}" (see edgectl peer list)`);
  };

  const writeFile = async (): Promise<void> => {
    // Peer kinds and names only (no reasons): the firewall needs nothing else.
    const text = `${JSON.stringify({ peers: list.map((q) => ({ kind: q.kind, name: q.name })) }, null, 2)}\n`;
    const path = join(config.dataDir, QUARANTINE_FILE);
    const tmp = `${path}.tmp`;
    const fh = await open(tmp, 'w', 0o644);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  };

  const apply = async (): Promise<void> => {
    o.policies.quarantine(list);
    await writeFile().catch((err: unknown) => log.error('containment.file-failed', { error: (err as Error).message }));
  };

  const bodyOf = (req: ControlRequest): { name: string; reason: string; by: string } => {
    const b = (req.body ?? {}) as { name?: unknown; reason?: unknown; by?: unknown };
    if (typeof b.name !== 'string' || b.name === '')
      throw new EdgeError('EDGE_CONTROL_BAD_REQUEST', 'name: the peer to quarantine or release is required');
    if (typeof b.reason !== 'string' || b.reason.trim() === '')
      throw new EdgeError('EDGE_CONTROL_BAD_REQUEST', 'reason: say why (required, kept in the audit trail)');
    return {
      name: b.name,
      reason: b.reason.trim().slice(0, 500),
      by: actorOf(req, b.by),
    };
  };

  const routes: ControlRoute[] = [
    {
      method: 'GET',
      path: '/v1/peers/quarantine',
      permission: 'signed-in',
      background: true,
      handle: () => ({ status: 200, body: { quarantined: list } }),
    },
    {
      method: 'POST',
      path: '/v1/peers/quarantine',
      permission: 'admin',
      stepUp: true,
      handle: (req) =>
        (serial = serial.then(async () => {
          const { name, reason, by } = bodyOf(req);
          const peer = resolve(name);
          const existing = list.find((q) => q.kind === peer.kind && q.name === peer.name);
          if (existing !== undefined) return { status: 200, body: { quarantine: existing, closed: 0, already: true } };
          const q: Quarantine = { kind: peer.kind, name: peer.name, reason, by, at: Date.now() };
          // Committed before anything answers: a restart keeps the peer out.
          await store.incidents.saveQuarantine(q);
          list = [...list, q];
          await apply();
          const why = `quarantined: ${reason}`;
          const closed =
            peer.kind === 'hl7'
              ? o.closeHl7((n) => n === peer.name, why)
              : o.closeModalities((rule) => rule.aeTitle.trim() === peer.name, why);
          audit.record(
            securityAlert(
              'peer.quarantined',
              [{ kind: 'user', id: by, requestor: true }, peer.participant],
              `${reason}; ${closed} connection(s) closed`,
            ),
          );
          log.warn('containment.quarantined', { kind: peer.kind, peer: peer.name, closed });
          return { status: 200, body: { quarantine: q, closed } };
        })) as Promise<{ status: number; body: unknown }>,
    },
    {
      method: 'POST',
      path: '/v1/peers/release',
      permission: 'admin',
      stepUp: true,
      handle: (req) =>
        (serial = serial.then(async () => {
          const { name, reason, by } = bodyOf(req);
          const peer = resolve(name);
          const existing = list.find((q) => q.kind === peer.kind && q.name === peer.name);
          if (existing === undefined) throw new EdgeError('EDGE_PEER_NOT_FOUND', `name: "${name}" is not quarantined`);
          await store.incidents.removeQuarantine(peer.kind, peer.name);
          list = list.filter((q) => q !== existing);
          await apply();
          audit.record(
            securityAlert(
              'peer.released',
              [{ kind: 'user', id: by, requestor: true }, peer.participant],
              `${reason}; quarantined since ${new Date(existing.at).toISOString()} by ${existing.by}`,
            ),
          );
          log.info('containment.released', { kind: peer.kind, peer: peer.name });
          return { status: 200, body: { released: existing } };
        })) as Promise<{ status: number; body: unknown }>,
    },
  ];

  return {
    name: 'containment',
    routes,
    quarantined: () => list,
    async start() {
      list = await store.incidents.quarantines();
      await apply();
      if (list.length > 0) log.warn('containment.quarantined-at-start', { peers: list.map((q) => `${q.kind}:${q.name}`).join(',') });
    },
    stop: () => Promise.resolve(),
    health: () => (list.length === 0 ? { status: 'ok' } : { status: 'degraded', detail: `${list.length} peer(s) quarantined` }),
  };
}
