// The box put together: the store first (every flow builds on its repositories), then each flow's
// services in the order they start. ServiceSet stops them in reverse: the control API and the listeners
// stop taking work and drain, the outbox settles its last batch, the audit guards write their summaries,
import { join } from 'node:path';
// `application.stop` is recorded, the audit trail signs its head, and the store closes last.
import type { AuditParticipant } from '../core/audit.ts';
import type { Logger } from '../core/log.ts';
import { type Service, ServiceSet, stopOnly } from '../core/service.ts';
import { startStep } from '../core/start-step.ts';
import type { EdgeConfig } from '../config/index.ts';
import type { PrometheusMetrics } from '../admin/prometheus-metrics.ts';
import { ensureNoCoreDumps } from '../security/core-dumps.ts';
import { PeerPolicies } from '../security/peer-policies.ts';
import { loadTlsMaterial } from '../security/tls-material.ts';
import { openStore } from '../store/index.ts';
import { appActivity } from '../core/audit-event-builders.ts';
import { accessFlow } from './admin.ts';
import { mountAdminPage } from './admin-page.ts';
import { auditGuards } from './audit-guards.ts';
import { auditTrail } from './audit-trail.ts';
import { backupRoute, recordRestore } from './backup.ts';
import { ConfigReloader, noConfigFile, reloadRoute, type ReloadResult } from './config-reload.ts';
import { containment } from './containment.ts';
import { controlFlow } from './control.ts';
import type { FlowContext } from './flow-context.ts';
import { storeRecovery, watchdogService } from './health.ts';
import { imageFlow } from './images.ts';
import { incidentAlerts } from './incident-alerts.ts';
import { keyRotationRoute, keySourceFor, recordKeyAlarms } from './keys.ts';
import { boxMetrics, certificateExpiries, metricsSources } from './metrics.ts';
import { auditSearchRoutes } from './audit-search.ts';
import { certificatesRoute } from './certificates-view.ts';
import { configRoutes } from './config-view.ts';
import { overviewFlow } from './overview.ts';
import { PeerActivity, teeMetrics } from './peer-activity.ts';
import { peersRoute } from './peers-view.ts';
import { worklistRoute } from './worklist-view.ts';
import { type ControlRequest, callerMay } from '../core/control-route.ts';
import { modalityListeners } from './modality-associations.ts';
import { type ModalityPeer, controlIdPrune, hl7Intake, worklistService } from './orders-worklist.ts';
import { outbox } from './outbox.ts';
import { pacsEnvironmentAlarm } from './pacs-environment.ts';
import { procedureStatusFlow } from './procedure-status.ts';
import { segmentationWatch } from './segmentation.ts';
import { upstreamWorklist } from './upstream-worklist.ts';
import { downtimeOrderRoutes } from './downtime-orders.ts';
import { pacsCommitmentFlow } from './pacs-commitment.ts';
import { storageCommitmentFlow } from './storage-commitment.ts';

export interface RunningEdge {
  readonly ports: {
    readonly hl7: number;
    readonly dicomTls?: number;
    readonly dicomPlain?: number;
    readonly auditPull?: number;
    readonly admin?: number;
  };
  readonly keysBackend: string;
  /** The Prometheus metrics of the box (served at `/metrics` on the admin listener). */
  readonly metrics: PrometheusMetrics;
  stop(): Promise<void>;
  /** Re-read the config file and apply peer changes (config-reload.ts); needs `configFile`. */
  reload(): Promise<ReloadResult>;
}

export async function startEdge(config: EdgeConfig, logger: Logger, options: { configFile?: string } = {}): Promise<RunningEdge> {
  const startedAt = Date.now();
  const coreLimitBy = await ensureNoCoreDumps(logger);
  const keySource = keySourceFor(config, logger);
  const stepMs = config.startup.stepTimeoutMs;
  const store = await startStep('open the store', stepMs, logger, () =>
    openStore({
      dataDir: config.dataDir,
      keySource,
      replayWindowMs: config.hl7.replayWindowHours * 3_600_000,
      logger: logger.child({ component: 'store' }),
      environment: config.site.environment,
    }),
  );
  const audit = store.audit;
  const box: AuditParticipant = { kind: 'system', id: config.site.name, requestor: false };
  const testChannelStore = hasTestChannel(config)
    ? await startStep('open the test channel store', stepMs, logger, () =>
        openStore({
          dataDir: join(config.dataDir, 'test-channel'),
          keySource,
          replayWindowMs: config.hl7.replayWindowHours * 3_600_000,
          logger: logger.child({ component: 'store', partition: 'test-channel' }),
          environment: config.site.environment,
        }),
      ).catch(async (err: unknown) => {
        await store.close();
        throw err;
      })
    : undefined;
  const recovery = storeRecovery(config.dataDir, store, audit, box, logger);
  let services: ServiceSet;
  let ready = false;
  try {
    recordKeyAlarms(config.dataDir, keySource, coreLimitBy, audit, box);
    recordRestore(config.dataDir, audit, box, logger);
    const tls = await loadTlsMaterial(config.tls, keySource);
    const metrics = boxMetrics();
    const activity = new PeerActivity();
    const ctx: FlowContext = {
      config,
      store,
      ...(testChannelStore === undefined ? {} : { testChannelStore }),
      audit,
      box,
      tls,
      keySource,
      logger,
      metrics: teeMetrics(metrics, activity),
    };
    const policies = new PeerPolicies(config.hl7.peers, config.dicom.modalities);
    const guards = auditGuards(config.audit, store, box, logger);
    const trail = auditTrail(ctx);
    const images = await startStep('open the spool', stepMs, logger, () => imageFlow(ctx));
    const procedureStatus = procedureStatusFlow(ctx);
    const commitment = storageCommitmentFlow(ctx, images.spool, policies);
    images.onInstanceForwarded(commitment.instanceForwarded);
    const pacsCommitment = pacsCommitmentFlow(ctx, images.spool, commitment.instanceForwarded);
    if (pacsCommitment !== undefined) images.onInstanceForwarded(pacsCommitment.instanceForwarded);
    const queues = outbox(ctx, [...images.destinations, ...procedureStatus.destinations, ...commitment.destinations]);
    const hl7 = hl7Intake(ctx, policies, guards.sink);
    const dicom = modalityListeners(ctx, policies, guards.sink, {
      worklist: worklistService(ctx, guards.sink),
      mpps: procedureStatus.mppsServices,
      storage: images.dimseServices,
      storageCommitment: commitment.dimseServices,
      ...(pacsCommitment === undefined ? {} : { pacsCommitment }),
      transferSyntaxesBySopClass: images.transferSyntaxesBySopClass,
    });
    const closers = {
      closeHl7: (drop: (peerName: string) => boolean, reason: string) => hl7.listener.closeWhere((peer) => drop(peer.name), reason),
      closeModalities: (drop: (rule: ModalityPeer['rule']) => boolean, reason: string) =>
        dicom.reduce((n, l) => n + l.listener.abortWhere((peer) => drop((peer as ModalityPeer).rule), reason), 0),
    };
    const upstreamMwl = upstreamWorklist(ctx);
    const reloader = new ConfigReloader({
      configFile: options.configFile ?? '',
      running: config,
      policies,
      audit,
      box,
      logger: logger.child({ component: 'config' }),
      ...closers,
    });
    const contained = containment(ctx, { policies, ...closers });
    const alerts = incidentAlerts(ctx);
    const reload = options.configFile === undefined ? noConfigFile : () => reloader.reload();
    metrics.setSources(
      metricsSources({
        dispatcher: queues.dispatcher,
        connections: () => [
          { listener: 'hl7' as const, count: hl7.listener.connectionCount },
          ...dicom.map((l) => ({ listener: `dicom-${l.transport}` as const, count: l.listener.associationCount })),
        ],
        spool: () => images.spool.usage(),
        auditLastSeq: () => audit.lastSeq,
        collectors: () => trail.collectors(),
        tls,
        alerts: () => alerts.status(),
      }),
    );
    const ports = (): RunningEdge['ports'] => ({
      hl7: hl7.port ?? 0,
      ...Object.fromEntries(
        dicom.flatMap((l) => (l.port === undefined ? [] : [[l.transport === 'tls' ? 'dicomTls' : 'dicomPlain', l.port]])),
      ),
    });
    const connections = () => [
      { listener: 'hl7' as const, count: hl7.listener.connectionCount },
      ...dicom.map((l) => ({ listener: `dicom-${l.transport}` as const, count: l.listener.associationCount })),
    ];
    const overview = overviewFlow(ctx, {
      services: () => services.status(),
      destinations: () => queues.dispatcher.status(),
      ports,
      spool: () => images.spool.usage(),
      certificates: () => certificateExpiries(tls),
      startedAt,
    });
    const pageRoutes = [
      ...overview.routes,
      peersRoute(ctx, {
        activity,
        destinations: () => queues.dispatcher.status(),
        collectors: () => trail.collectors(),
        connections,
      }),
      worklistRoute(ctx, {
        mayViewPatients: (req) => req.caller === undefined || callerMay('operator', req.caller),
        actor: callerActor,
      }),
      certificatesRoute(ctx, () => null),
      ...configRoutes(ctx, { configFile: options.configFile, reload, services: () => services.status(), actor: callerActor }),
      ...auditSearchRoutes({
        lastSeq: () => audit.lastSeq,
        read: (from, to) => audit.read(from, to),
        chainStatus: () => trail.status(),
      }),
    ];
    const access = accessFlow(ctx);
    const control = controlFlow(
      config.dataDir,
      logger,
      () => ({
        site: config.site.name,
        environment: config.site.environment,
        pid: process.pid,
        uptimeMs: Date.now() - startedAt,
        keysBackend: keySource.backend,
        ports: ports(),
        aeTitle: config.dicom.aeTitle,
        auditSeq: audit.lastSeq,
        store: recovery.store(),
        audit: trail.status(),
        auditDiskBudget: guards.status(),
        alerts: alerts.status(),
        quarantined: contained.quarantined().map((q) => `${q.kind}:${q.name}`),
        upstreamWorklist: upstreamMwl.status(),
      }),
      () => services.status(),
      [
        keyRotationRoute(store, keySource, audit, box, logger),
        ...queues.routes,
        backupRoute({
          config,
          configFile: options.configFile,
          store,
          keysBackend: keySource.backend,
          audit,
          box,
          logger: logger.child({ component: 'backup' }),
        }),
        reloadRoute(reload),
        ...images.routes,
        ...alerts.routes,
        ...contained.routes,
        ...pageRoutes,
        ...access.routes,
        ...upstreamMwl.routes,
        ...downtimeOrderRoutes(ctx),
      ],
    );
    const admin = access.admin(() => control.server.mounted());
    if (admin !== undefined) mountAdminPage(ctx, admin.listener, metrics, guards.sink);
    const applicationStop = stopOnly('application-activity', () => {
      if (ready) audit.record(appActivity('application.stop', [box]));
    });
    const declared: Service[] = [
      stopOnly('store', () => store.close()),
      ...(testChannelStore === undefined ? [] : [stopOnly('test-channel-store', () => testChannelStore.close())]),
      recovery,
      withStartDeadline(trail, 'start the audit services', stepMs, logger),
      applicationStop,
      guards,
      alerts,
      queues,
      ...pacsEnvironmentAlarm(config),
      contained,
      commitment.service,
      ...(pacsCommitment === undefined ? [] : [pacsCommitment.service]),
      hl7,
      ...dicom,
      controlIdPrune(ctx),
      upstreamMwl,
      overview,
      control,
      ...(admin === undefined ? [] : [admin]),
      segmentationWatch(config, audit, box, logger),
      watchdogService(config.dataDir, logger, store),
    ];
    services = new ServiceSet(declared, logger);
    await services.start(config.shutdown.drainTimeoutMs);
    ready = true;
    audit.record({ ...appActivity('application.start', [box]), detail: `keys.backend ${keySource.backend}` });
    const bound = {
      ...ports(),
      ...(trail.pullPort === undefined ? {} : { auditPull: trail.pullPort }),
      ...(admin?.port === undefined ? {} : { admin: admin.port }),
    };
    let stopping: Promise<void> | undefined;
    return {
      ports: bound,
      keysBackend: keySource.backend,
      metrics,
      reload,
      stop: () =>
        (stopping ??= (async () => {
          const deadline = config.shutdown.drainTimeoutMs;
          logger.info('edged.stopping', { drainTimeoutMs: deadline });
          await services.stop(deadline);
          logger.info('edged.stopped', {});
        })()),
    };
  } catch (err) {
    // The set stopped what it had started; a composition that failed before it leaves these two to close.
    await recovery.stop(0);
    await testChannelStore?.close();
    await store.close();
    throw err;
  }
}

/** Test channels exist only on a production box (on a test or training box all traffic is test traffic). */
function hasTestChannel(config: EdgeConfig): boolean {
  return config.site.environment === 'production' && config.hl7.peers.some((p) => p.testChannel);
}

/** A start that touches the file system runs under the start-step deadline (core/start-step.ts). */
function withStartDeadline(service: Service, step: string, timeoutMs: number, logger: Logger): Service {
  return {
    name: service.name,
    start: () => startStep(step, timeoutMs, logger, () => service.start()),
    stop: (deadlineMs) => service.stop(deadlineMs),
    health: () => service.health(),
  };
}

/** The caller as an audit participant: the signed-in user (with address), or the console's root. */
function callerActor(req: ControlRequest): AuditParticipant {
  const c = req.caller;
  if (c !== undefined && c.kind === 'user')
    return { kind: 'user', id: c.username, requestor: true, ...(c.address === undefined ? {} : { address: c.address }) };
  const body = req.body as { user?: unknown } | undefined;
  return { kind: 'user', id: typeof body?.user === 'string' ? body.user.slice(0, 64) : 'local-console', requestor: true };
}
