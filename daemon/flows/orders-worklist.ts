// The orders → worklist flow (IHE RAD-4 in, RAD-5 out): the HL7 listener that commits orders from the
// RIS before it acknowledges them, the worklist C-FIND service the modalities query (scoped per
// modality, attributes minimised, every query audited with who it named and who its answer disclosed),
// and the hourly prune of the replay window's control ids.
import { defaultServedPrefix, isProduction, processingIdPolicy } from '../core/environment.ts';
import type { AuditSink } from '../core/audit.ts';
import type { OrderRepository } from '../core/ports.ts';
import { isEdgeError } from '../core/errors.ts';
import { type ListenerService, type Service, healthy, listenerService } from '../core/service.ts';
import { orderedRules } from '../core/station-assignment.ts';
import { findWorklist, worklistResponseOrigin } from '../core/worklist-query.ts';
import { type DimseService, SopClass, worklistFindService } from '../dicom/index.ts';
import { Hl7Listener } from '../hl7/index.ts';
import { isRefusal } from '../security/peer-policy.ts';
import type { PeerPolicies } from '../security/peer-policies.ts';
import type { DicomModalityConfig, Hl7PeerConfig } from '../config/index.ts';
import { AnsweredSubject, MAX_AUDITED_QUERY_BYTES, auditHl7, auditSkippedItem, queriedSubject, queryKeys } from './audit-mapping.ts';
import type { FlowContext } from './flow-context.ts';
import { countHl7 } from './metrics.ts';

const CONTROL_ID_PRUNE_INTERVAL_MS = 3_600_000;

export type BoxPeerPolicies = PeerPolicies<Hl7PeerConfig, DicomModalityConfig>;

/** The modality a DICOM association belongs to, as the association policy found it. */
export interface ModalityPeer {
  readonly rule: DicomModalityConfig;
  readonly returnKeys: ReadonlySet<number> | undefined;
}

export interface Hl7Intake extends ListenerService {
  readonly listener: Hl7Listener;
}

/** The HL7 listener: peers known by certificate, address and MSH-3/4 (deny by default), every event audited through `sink`. */
export function hl7Intake(ctx: FlowContext, policies: BoxPeerPolicies, sink: AuditSink): Hl7Intake {
  const { config, store, tls, logger } = ctx;
  const testChannel = ctx.testChannelStore;
  const listener = new Hl7Listener({
    host: config.hl7.listen.host,
    port: config.hl7.listen.port,
    tls,
    maxFrameBytes: config.hl7.maxFrameBytes,
    idleTimeoutMs: config.hl7.idleTimeoutMs,
    frameTimeoutMs: config.hl7.frameTimeoutMs,
    messageLimits: config.hl7.limits,
    processingIds: processingIdPolicy(config.site.environment, config.hl7.acceptDebuggingProcessingId),
    stations: { rules: orderedRules(config.dicom.worklist.stationRules), fallback: config.dicom.worklist.defaultStation },
    maxConnections: config.hl7.maxConnections,
    maxConnectionsPerPeer: config.hl7.maxConnectionsPerPeer,
    ackWriteTimeoutMs: config.hl7.ackWriteTimeoutMs,
    preAuthentication: config.hl7.preAuthentication,
    admitsSource: (address) => policies.hl7.admitsSource(address),
    repository: store.orders,
    logger: logger.child({ component: 'hl7' }),
    identifyPeer: ({ certificate, remoteAddress }) => {
      const found = policies.hl7.identify(certificate.subjectCN, remoteAddress);
      if (isRefusal(found)) return { refused: found.why };
      const peer = { name: found.name, sendingApplication: found.sendingApplication, sendingFacility: found.sendingFacility };
      if (found.testChannel !== true || config.site.environment !== 'production') return { peer };
      // A test channel added by a reload has no test worklist until edged restarts: refused until then.
      if (testChannel === undefined)
        return { refused: `HL7 peer ${found.name} is a test channel; restart edged to open the test worklist` };
      return { peer: { ...peer, repository: testChannel.orders, processingIds: processingIdPolicy('test', false) } };
    },
    onEvent: (event) => {
      auditHl7(sink, event);
      countHl7(ctx.metrics, event);
    },
  });
  return Object.assign(listenerService('hl7-listener', listener), { listener });
}

/** The Modality Worklist C-FIND service, answering each modality from its scope with its return keys. */
export function worklistService(ctx: FlowContext, sink: AuditSink): DimseService {
  const { config, store, logger, metrics } = ctx;
  const dicom = config.dicom;
  const environment = config.site.environment;
  const production = isProduction(environment);
  const servedPrefix = production ? undefined : (dicom.worklist.environmentPrefix ?? defaultServedPrefix(environment));
  // On a production box, modalities declared for testing see the test channels' worklist, marked as a
  // test box marks its own, and nothing else; every other modality sees only the production worklist.
  const testPrefix = dicom.worklist.environmentPrefix ?? defaultServedPrefix('test')!;
  const testOrders = ctx.testChannelStore?.orders ?? emptyWorklist;
  return worklistFindService(
    (identifier, q) => {
      const startedAt = performance.now();
      const peer = q.association.peer as ModalityPeer;
      let count = 0;
      const scope = peer.rule.worklistScope;
      // Copied now: the request's bytes are not ours once the query has started answering.
      const query =
        q.query.dataSet.length <= MAX_AUDITED_QUERY_BYTES
          ? {
              sopClassUid: SopClass.ModalityWorklistInformationModelFind,
              transferSyntaxUid: q.query.transferSyntaxUid,
              dataSet: q.query.dataSet.toString('base64'),
            }
          : undefined;
      const testing = production && peer.rule.testing;
      const prefix = testing ? testPrefix : servedPrefix;
      let fellBack = 0;
      const results = findWorklist(testing ? testOrders : store.orders, identifier, {
        ...(scope === undefined ? {} : { scope }),
        ...(peer.rule.characterSet === undefined ? {} : { characterSet: peer.rule.characterSet }),
        onCharacterSetFallback: (wanted) => {
          // Once per query: the modality should know its console shows these items in UTF-8.
          if (fellBack++ === 0) logger.info('worklist.charset-fallback', { aeTitle: peer.rule.aeTitle, wanted, answered: 'ISO_IR 192' });
        },
        ...(peer.returnKeys === undefined ? {} : { returnKeys: peer.returnKeys }),
        maxResults: dicom.worklist.maxResults,
        ...(prefix === undefined ? {} : { attributes: { servedPrefix: prefix } }),
        signal: q.signal,
        onLimit: () => logger.warn('worklist.result-limit', { aeTitle: peer.rule.aeTitle, maxResults: dicom.worklist.maxResults }),
      });
      const answered = new AnsweredSubject();
      return countingThrough(
        results,
        (item) => {
          count++;
          answered.add(item);
        },
        () => {
          metrics.worklistQuery(peer.rule.aeTitle, (performance.now() - startedAt) / 1000);
          sink.record({
            eventId: 'Query',
            type: 'worklist.query',
            action: 'E',
            outcome: 0,
            at: Date.now(),
            participants: [
              { kind: 'dicom', id: peer.rule.aeTitle, address: q.association.remoteAddress, requestor: true },
              { kind: 'dicom', id: dicom.aeTitle, requestor: false },
            ],
            ...queriedSubject(identifier),
            ...answered.subject(),
            ...answered.disclosed(),
            ...(query === undefined ? {} : { query }),
            controlId: q.association.associationId,
            detail: `${count} result(s); keys ${queryKeys(identifier)}${query === undefined ? '; query too large to record' : ''}`,
          });
        },
      );
    },
    { onItemSkipped: (item, code, c) => auditSkippedItem(sink, logger, dicom.aeTitle, worklistResponseOrigin(item), code, c) },
  );
}

/** The test worklist of a production box without test channels (added by a reload, before a restart): empty. */
const emptyWorklist: OrderRepository = {
  apply: () => Promise.reject(new TypeError('the empty test worklist takes no orders')),
  async *worklist() {},
};

/** The hourly prune of MSH-10 replay records older than the replay window. */
export function controlIdPrune(ctx: FlowContext): Service {
  const { store, logger } = ctx;
  const stores = ctx.testChannelStore === undefined ? [store] : [store, ctx.testChannelStore];
  let timer: ReturnType<typeof setInterval> | undefined;
  return {
    name: 'control-id-prune',
    start: async () => {
      timer = setInterval(() => {
        for (const s of stores)
          s.orders.pruneControlIds(Date.now()).then(
            (n) => logger.info('store.control-ids-pruned', { count: n }),
            (err: unknown) => logger.warn('store.prune-failed', { code: isEdgeError(err) ? err.code : 'unexpected' }),
          );
      }, CONTROL_ID_PRUNE_INTERVAL_MS);
      timer.unref();
    },
    stop: async () => clearInterval(timer),
    health: () => healthy,
  };
}

/** Pass results through, counting them, and call `done` once when the consumer finishes or stops. */
async function* countingThrough<T>(source: AsyncIterable<T>, each: (item: T) => void, done: () => void): AsyncGenerator<T> {
  try {
    for await (const item of source) {
      each(item);
      yield item;
    }
  } finally {
    done();
  }
}
