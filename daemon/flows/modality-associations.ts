// Where modalities associate: the DICOM listeners (TLS, and plain only on an allowlisted segment), the
// association policy that admits a calling AE title by its modality rule (deny by default), and the
// services each flow brings (Verification, Modality Worklist, MPPS, Storage).
import type { AuditSink } from '../core/audit.ts';
import { Tag } from '../core/data-dictionary.ts';
import { MppsSopClass } from '../core/mpps.ts';
import { type ListenerService, listenerService } from '../core/service.ts';
import {
  type AssociationDecision,
  type AssociationRequest,
  type DimseService,
  DicomListener,
  RejectReason,
  RejectResult,
  RejectSource,
  SopClass,
  verificationService,
} from '../dicom/index.ts';
import { isRefusal } from '../security/peer-policy.ts';
import { auditDicom } from './audit-mapping.ts';
import type { FlowContext } from './flow-context.ts';
import { countDicom } from './metrics.ts';
import type { BoxPeerPolicies, ModalityPeer } from './orders-worklist.ts';

export interface ModalityListener extends ListenerService {
  readonly transport: 'tls' | 'plain';
  readonly listener: DicomListener;
}

export interface ModalityServices {
  /** Negotiated only when dicom.worklist is enabled. */
  readonly worklist: DimseService;
  readonly mpps: readonly DimseService[];
  readonly storage: readonly DimseService[];
  /** Storage SOP classes → transfer syntaxes accepted as received. */
  readonly transferSyntaxesBySopClass: ReadonlyMap<string, readonly string[]>;
}

export function modalityListeners(
  ctx: FlowContext,
  policies: BoxPeerPolicies,
  sink: AuditSink,
  services: ModalityServices,
): ModalityListener[] {
  const { config, tls, logger } = ctx;
  const dicom = config.dicom;
  const keysOf = (names: readonly string[] | undefined): ReadonlySet<number> | undefined =>
    names === undefined ? undefined : new Set(names.map((n) => Tag[n as keyof typeof Tag]));
  const defaultReturnKeys = keysOf(dicom.worklist.returnKeys);
  const abstractSyntaxes = new Set<string>([SopClass.Verification]);
  if (dicom.worklist.enabled) abstractSyntaxes.add(SopClass.ModalityWorklistInformationModelFind);
  abstractSyntaxes.add(MppsSopClass);
  for (const sopClass of services.transferSyntaxesBySopClass.keys()) abstractSyntaxes.add(sopClass);

  const decide = (rq: AssociationRequest): AssociationDecision => {
    const found = policies.modality.admit({
      callingAeTitle: rq.callingAeTitle,
      transport: rq.transport,
      certificateCn: rq.peerCertificate?.subjectCn,
      remoteAddress: rq.remoteAddress,
    });
    if (isRefusal(found)) {
      return {
        accept: false,
        result: RejectResult.Permanent,
        source: RejectSource.ServiceUser,
        reason: RejectReason.CallingAETitleNotRecognized,
        why: found.why,
      };
    }
    const rule = policies.modalityRule(found.aeTitle)!;
    const peer: ModalityPeer = { rule, returnKeys: keysOf(rule.returnKeys) ?? defaultReturnKeys };
    return {
      accept: true,
      abstractSyntaxes,
      transferSyntaxes: [...dicom.transferSyntaxes],
      transferSyntaxesByAbstractSyntax: services.transferSyntaxesBySopClass,
      peer,
    };
  };

  const dimse = [verificationService, services.worklist, ...services.mpps, ...services.storage];
  const listeners: ModalityListener[] = [];
  for (const transport of ['tls', 'plain'] as const) {
    const l = dicom[transport];
    if (l === undefined) continue;
    const listener = new DicomListener({
      host: l.host,
      port: l.port,
      // The config check refuses a wildcard host unless the operator set allowAllInterfaces.
      allowAllInterfaces: l.allowAllInterfaces,
      transport,
      ...(transport === 'tls' ? { tls } : {}),
      aeTitle: dicom.aeTitle,
      maxPduLength: dicom.maxPduLength,
      maxAssociations: dicom.maxAssociations,
      maxAssociationsPerAddress: dicom.maxAssociationsPerAddress,
      preAuthenticationTimeoutMs: dicom.preAuthentication.timeoutMs,
      maxPreAuthenticationConnections: dicom.preAuthentication.maxConnections,
      maxPreAuthenticationConnectionsPerAddress: dicom.preAuthentication.maxConnectionsPerAddress,
      admitsSource: (address) => policies.modality.admitsSource(transport, address),
      associationRequestTimeoutMs: dicom.associationRequestTimeoutMs,
      idleTimeoutMs: dicom.idleTimeoutMs,
      services: dimse,
      onAssociationRequest: decide,
      onEvent: (event) => {
        auditDicom(sink, event);
        countDicom(ctx.metrics, `dicom-${transport}`, event);
      },
      logger: logger.child({ component: `dicom-${transport}` }),
    });
    listeners.push(Object.assign(listenerService(`dicom-${transport}-listener`, listener), { transport, listener }));
  }
  return listeners;
}
