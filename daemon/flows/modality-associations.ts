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
import { PACS_COMMITMENT_PEER, type PacsCommitment } from './pacs-commitment.ts';

export interface ModalityListener extends ListenerService {
  readonly transport: 'tls' | 'plain';
  readonly listener: DicomListener;
}

export interface ModalityServices {
  /** Negotiated only when dicom.worklist is enabled. */
  readonly worklist: DimseService;
  readonly mpps: readonly DimseService[];
  readonly storage: readonly DimseService[];
  /** Storage Commitment Push Model N-ACTION (empty when disabled). */
  readonly storageCommitment: readonly DimseService[];
  /** Storage SOP classes → transfer syntaxes accepted as received. */
  readonly transferSyntaxesBySopClass: ReadonlyMap<string, readonly string[]>;
  /** The PACS reporting its storage commitment to the box (upstream.pacs.storageCommitment). */
  readonly pacsCommitment?: Pick<PacsCommitment, 'admits' | 'admitsSource' | 'dimseServices'>;
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
  for (const s of services.storageCommitment) abstractSyntaxes.add(s.sopClassUid);
  // A modality declared for testing on a production box only reads the test worklist: its MPPS would
  // reach the production RIS and its images the production PACS, so it is offered neither.
  const testingSyntaxes = new Set(
    [...abstractSyntaxes].filter((s) => s === SopClass.Verification || s === SopClass.ModalityWorklistInformationModelFind),
  );
  const testingOnly = (rule: { readonly testing?: boolean }): boolean => config.site.environment === 'production' && rule.testing === true;

  const pacs = services.pacsCommitment;
  const pacsSyntaxes = new Set((pacs?.dimseServices ?? []).map((s) => s.sopClassUid));
  const decide = (rq: AssociationRequest): AssociationDecision => {
    if (pacs?.admits(rq) === true) {
      // The PACS only reports storage commitment here, as SCP of the SOP class (it proposes that role).
      return {
        accept: true,
        abstractSyntaxes: pacsSyntaxes,
        transferSyntaxes: [...dicom.transferSyntaxes],
        requestorScpRoles: pacsSyntaxes,
        peer: PACS_COMMITMENT_PEER,
      };
    }
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
    const testing = testingOnly(rule);
    return {
      accept: true,
      abstractSyntaxes: testing ? testingSyntaxes : abstractSyntaxes,
      transferSyntaxes: [...dicom.transferSyntaxes],
      transferSyntaxesByAbstractSyntax: testing ? new Map() : services.transferSyntaxesBySopClass,
      peer,
    };
  };

  const dimse = [
    verificationService,
    services.worklist,
    ...services.mpps,
    ...services.storage,
    ...services.storageCommitment,
    ...(pacs?.dimseServices ?? []),
  ];
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
      admitsSource: (address) => policies.modality.admitsSource(transport, address) || pacs?.admitsSource(address) === true,
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
