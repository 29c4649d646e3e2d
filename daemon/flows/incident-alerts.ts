// Incident support, detection side: the alert rules (audit/alert-rules.ts) run over every audit record
// as it is recorded, off the clinical path (the audit log's tap only queues the record); an alert is a
// Security Alert in the chain, so it goes out on the syslog stream at once, and waits on the alert list
// until a person acknowledges it. Also the breach-scope report (audit/breach-scope.ts), signed with the
// device key like the audit bundles.
import type { AuditParticipant } from '../core/audit.ts';
import { securityAlert } from '../core/audit-event-builders.ts';
import { type ControlRoute, actorOf } from '../core/control-route.ts';
import { EdgeError, isEdgeError } from '../core/errors.ts';
import type { Alert } from '../core/incident.ts';
import type { Service } from '../core/service.ts';
import { WorkingHours } from '../core/working-hours.ts';
import type { EdgeConfig } from '../config/index.ts';
import { AlertEngine } from '../audit/alert-engine.ts';
import { type Baseline, type ObservedRecord, alertRules, emptyBaseline } from '../audit/alert-rules.ts';
import { breachScopeHtml } from '../audit/breach-scope-html.ts';
import { type BreachScopeRequest, type TouchKind, breachScope } from '../audit/breach-scope.ts';
import { keyMaterialSigner, signDetached } from '../audit/index.ts';
import type { FlowContext } from './flow-context.ts';

const SAVE_EVERY_MS = 2000;
const BASELINE_EVERY_MS = 600_000;

export interface IncidentAlerts extends Service {
  readonly routes: readonly ControlRoute[];
  status(): { open: number; raisedByRule: Record<string, number> };
}

function subjectParticipant(a: Alert): AuditParticipant {
  return a.subject.kind === 'address'
    ? { kind: 'system', id: 'unidentified', address: a.subject.id, requestor: false }
    : { kind: a.subject.kind, id: a.subject.id, requestor: false };
}

function describe(a: Alert): string {
  const more = a.evidenceOmitted > 0 ? ` (+${a.evidenceOmitted} more)` : '';
  return `${a.rule}: ${a.observed}; threshold: ${a.threshold}; subject ${a.subject.kind} ${a.subject.id}; evidence seq ${a.evidence.join(',')}${more}; alert ${a.id}`;
}

export function incidentAlerts(ctx: FlowContext): IncidentAlerts {
  const { config, store, box } = ctx;
  const log = ctx.logger.child({ component: 'incidents' });
  const audit = store.audit;
  const c = config.incidents;
  const reporter: AuditParticipant = { ...box, requestor: true };
  let baseline: Baseline = emptyBaseline();
  let engine: AlertEngine | undefined;
  let untap: (() => void) | undefined;
  const pending: ObservedRecord[] = [];
  let scheduled = false;
  let saveTimer: NodeJS.Timeout | undefined;
  let baselineTimer: NodeJS.Timeout | undefined;
  let saving: Promise<void> = Promise.resolve();

  const evaluate = (): void => {
    scheduled = false;
    const batch = pending.splice(0, pending.length);
    for (const r of batch) engine?.observe(r);
  };

  const save = (): Promise<void> =>
    (saving = saving.then(async () => {
      const dirty = engine?.takeDirty() ?? [];
      try {
        for (const a of dirty) await store.incidents.saveAlert(a);
      } catch (err) {
        log.error('incidents.save-failed', { code: isEdgeError(err) ? err.code : 'unexpected' });
      }
    }));
  const saveBaseline = (): Promise<void> =>
    (saving = saving.then(() =>
      store.incidents.saveBaseline(baseline).catch((err: unknown) => {
        log.error('incidents.save-failed', { code: isEdgeError(err) ? err.code : 'unexpected' });
      }),
    ));

  const routes: ControlRoute[] = [
    {
      method: 'GET',
      path: '/v1/alerts',
      // No patient data: every signed-in role sees the alerts, the auditor acknowledges them.
      permission: 'signed-in',
      background: true,
      handle: () => ({
        status: 200,
        body: {
          open: engine?.openCount ?? 0,
          alerts: (engine?.list() ?? []).slice(0, 500),
          raisedByRule: Object.fromEntries(engine?.raisedByRule() ?? []),
        },
      }),
    },
    {
      method: 'POST',
      path: '/v1/alerts/acknowledge',
      permission: 'auditor',
      handle: async (req) => {
        const b = (req.body ?? {}) as { id?: unknown; note?: unknown; by?: unknown };
        if (typeof b.id !== 'string' || b.id === '')
          throw new EdgeError('EDGE_CONTROL_BAD_REQUEST', 'id: the alert to acknowledge is required');
        if (typeof b.note !== 'string' || b.note.trim() === '')
          throw new EdgeError('EDGE_CONTROL_BAD_REQUEST', 'note: say what was found and done (required)');
        const by = actorOf(req, b.by);
        const before = engine?.get(b.id);
        if (before === undefined) throw new EdgeError('EDGE_CONTROL_NOT_FOUND', `no alert ${b.id}`);
        const acked = engine!.acknowledge(b.id, by, b.note.slice(0, 1000));
        await save();
        if (before.state === 'open')
          audit.record(
            securityAlert(
              'alert.acknowledged',
              [{ kind: 'user', id: by, requestor: true }, subjectParticipant(before)],
              `alert ${before.id} (${before.rule}) acknowledged: ${b.note.slice(0, 500)}`,
            ),
          );
        return { status: 200, body: acked };
      },
    },
    {
      method: 'POST',
      path: '/v1/reports/breach-scope',
      permission: 'auditor',
      stepUp: true,
      handle: async (req) => {
        const b = (req.body ?? {}) as Record<string, unknown>;
        const time = (name: string): number => {
          const v = b[name];
          const ms = typeof v === 'number' ? v : typeof v === 'string' ? Date.parse(v) : NaN;
          if (!Number.isFinite(ms))
            throw new EdgeError('EDGE_CONTROL_BAD_REQUEST', `${name}: a time is required (ISO 8601, e.g. 2026-12-07T08:00:00Z)`);
          return ms;
        };
        const text = (name: string): string | undefined =>
          typeof b[name] === 'string' && b[name] !== '' ? String(b[name]).slice(0, 64) : undefined;
        const request: BreachScopeRequest = {
          from: time('from'),
          to: time('to'),
          peer: text('peer'),
          user: text('user'),
          patient: text('patient'),
          accession: text('accession'),
        };
        const by = actorOf(req, b['by']);
        await store.flush();
        const report = await breachScope(audit, await audit.checkpoints(), request, {
          site: config.site.name,
          transportOf: (p) => transportOf(config, p),
          dataElementsOf: (how, p) => dataElementsOf(config, how, p),
        });
        const json = `${JSON.stringify(report, null, 2)}\n`;
        const signature = await signDetached(keyMaterialSigner(ctx.tls.cert, ctx.tls.key), Buffer.from(json, 'utf8'));
        audit.record({
          eventId: 'AuditLogUsed',
          type: 'report.breach-scope',
          action: 'R',
          outcome: 0,
          at: Date.now(),
          participants: [{ kind: 'user', id: by, requestor: true }, box],
          detail: `window ${report.window.from}..${report.window.to}; ${report.totals.patients} patient(s); seq ${report.chain.fromSeq ?? '-'}..${report.chain.toSeq ?? '-'}; links ${report.chain.linksVerified ? 'verified' : 'NOT verified'}`,
        });
        return { status: 200, body: { json, signature: signature.toString('base64'), html: breachScopeHtml(report) } };
      },
    },
  ];

  return {
    name: 'incident-alerts',
    routes,
    status: () => ({ open: engine?.openCount ?? 0, raisedByRule: Object.fromEntries(engine?.raisedByRule() ?? []) }),
    async start() {
      if (!c.alerts) return;
      const saved = await store.incidents.baseline();
      if (saved !== undefined && (saved as Baseline).version === 1) baseline = saved as Baseline;
      const hours =
        c.afterHours.workingHours === undefined ? undefined : WorkingHours.parse(c.afterHours.workingHours, c.afterHours.timeZone);
      engine = new AlertEngine({
        rules: alertRules(
          {
            massAccess: c.massAccess,
            afterHours: { workingHours: hours, normalDays: c.afterHours.normalDays },
            knocking: c.knocking,
            refusalBurst: c.refusalBurst,
            newMessageType: c.newMessageType,
            securityEvents: c.securityEvents,
            learningDays: c.learningDays,
          },
          baseline,
        ),
        groupMs: c.groupMinutes * 60_000,
        raised: (a) => {
          audit.record(securityAlert('alert.raised', [reporter, subjectParticipant(a)], describe(a), a.firstAt));
          log.warn('incidents.alert', { rule: a.rule, subject: `${a.subject.kind}:${a.subject.id}`, alert: a.id });
          return audit.lastSeq;
        },
        repeated: (a) =>
          audit.record(securityAlert('alert.repeated', [reporter, subjectParticipant(a)], `${a.count} time(s) so far; ${describe(a)}`)),
      });
      engine.load(await store.incidents.alerts());
      untap = audit.onRecorded((seq, event) => {
        pending.push({ seq, event });
        if (!scheduled) {
          scheduled = true;
          setImmediate(evaluate);
        }
      });
      saveTimer = setInterval(() => void save(), SAVE_EVERY_MS);
      saveTimer.unref();
      baselineTimer = setInterval(() => void saveBaseline(), BASELINE_EVERY_MS);
      baselineTimer.unref();
    },
    async stop() {
      untap?.();
      clearInterval(saveTimer);
      clearInterval(baselineTimer);
      evaluate();
      if (engine !== undefined) {
        await save();
        await saveBaseline();
      }
      await saving;
    },
    health: () =>
      engine === undefined
        ? { status: 'ok', detail: c.alerts ? 'starting' : 'alert rules off' }
        : engine.openCount > 0
          ? { status: 'degraded', detail: `${engine.openCount} open alert(s)` }
          : { status: 'ok' },
  };
}

/** How a peer of the report is reached, from the running config. */
function transportOf(config: EdgeConfig, p: AuditParticipant): 'TLS' | 'plain' | 'unknown' {
  if (p.kind === 'hl7') return 'TLS';
  if (p.kind === 'dicom') {
    const m = config.dicom.modalities.find((x) => x.aeTitle.trim() === p.id);
    if (m !== undefined) return m.transport === 'tls' ? 'TLS' : 'plain';
    const pacs = config.upstream.pacs;
    if (pacs !== undefined && 'aeTitle' in pacs && pacs.aeTitle === p.id) return pacs.tls === false ? 'plain' : 'TLS';
  }
  return 'unknown';
}

function dataElementsOf(config: EdgeConfig, how: TouchKind, p: AuditParticipant): string {
  switch (how) {
    case 'queried': {
      const m = config.dicom.modalities.find((x) => x.aeTitle.trim() === p.id);
      return m?.returnKeys === undefined
        ? 'worklist attributes the box returns by default (patient name, ID, birth date, sex, accession, procedure, scheduled step)'
        : `worklist return keys ${m.returnKeys.join(', ')}`;
    }
    case 'received':
      return p.kind === 'hl7'
        ? 'HL7 orders and patient updates (PID, PV1, ORC, OBR)'
        : 'DICOM images and procedure steps (all header attributes, pixel data)';
    case 'forwarded':
      return p.kind === 'hl7' ? 'HL7 procedure status (PID, ORC, OBR)' : 'DICOM images (all header attributes, pixel data)';
    case 'updated':
      return 'demographics corrected in forwarded images (patient name, ID, accession)';
    case 'viewed':
      return 'patient data shown on the admin page';
    case 'exported':
      return 'audit records or a backup: every patient the exported range names';
  }
}
