// Public API of the DICOM network layer, for the flows (daemon/flows/).
export { DicomListener, DEFAULT_MAX_PDU_LENGTH } from './listener.ts';
export type { DicomListenerOptions } from './listener.ts';
export type {
  AssociationAcceptance,
  AssociationDecision,
  AssociationPolicy,
  AssociationRejection,
  AssociationRequest,
} from './association-policy.ts';
export { RejectReason, RejectResult, RejectSource } from './association-policy.ts';
export type { ProposedPresentationContext } from './association.ts';
export { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME } from './association.ts';
export type { DicomEvent, DicomEventListener } from './dicom-event.ts';
export type {
  AssociationContext,
  DimseExchange,
  DimseRequest,
  DimseService,
  PeerCertificate,
  ResponseCommand,
  Transport,
} from './dimse-service.ts';
export { SopClass } from './dimse-service.ts';
export { CommandField, Status } from './dimse-command.ts';
export type { Command } from './dimse-command.ts';
export { verificationService } from './verification-service.ts';
export { worklistFindService } from './worklist-find-service.ts';
export type { WorklistFindContext, WorklistFindHandler } from './worklist-find-service.ts';
export { decodeDataSet, encodeDataSet } from './dataset-codec.ts';
export { TransferSyntax } from './transfer-syntax.ts';
export type { TransferSyntaxUid } from './transfer-syntax.ts';
