// The owner's say over who may associate (deny by default). The SCP asks once per A-ASSOCIATE-RQ.
import type { ProposedPresentationContext } from './association.ts';
import type { PeerCertificate, Transport } from './dimse-service.ts';

export interface AssociationRequest {
  readonly callingAeTitle: string;
  readonly calledAeTitle: string;
  readonly remoteAddress: string;
  readonly transport: Transport;
  readonly peerCertificate?: PeerCertificate;
  readonly presentationContexts: readonly ProposedPresentationContext[];
  readonly implementationClassUid: string;
  readonly implementationVersionName: string;
}

/**
 * Reject parameters per PS3.8 Table 9-21. Source 1 (service-user) reasons: 1 no-reason-given,
 * 2 application-context-name-not-supported, 3 calling-AE-title-not-recognized,
 * 7 called-AE-title-not-recognized. Source 2 (service-provider ACSE): 1 no-reason-given,
 * 2 protocol-version-not-supported. Source 3 (presentation): 1 temporary-congestion, 2 local-limit-exceeded.
 */
export interface AssociationRejection {
  readonly accept: false;
  /** 1 rejected-permanent, 2 rejected-transient. */
  readonly result: 1 | 2;
  readonly source: 1 | 2 | 3;
  readonly reason: number;
  /** For logs and audit; never sent on the wire; no patient data. */
  readonly why: string;
}

export interface AssociationAcceptance {
  readonly accept: true;
  /** Abstract syntaxes (SOP classes) this peer may use; intersected with the services the SCP has. */
  readonly abstractSyntaxes: ReadonlySet<string>;
  /** Transfer syntaxes in preference order; intersected with what the codec speaks. */
  readonly transferSyntaxes: readonly string[];
  /**
   * Per abstract syntax, transfer syntaxes in preference order that replace `transferSyntaxes` for it and
   * are NOT limited to what the codec speaks: for services that keep data sets as received (storage,
   * where compressed syntaxes are accepted as-is).
   */
  readonly transferSyntaxesByAbstractSyntax?: ReadonlyMap<string, readonly string[]>;
  /**
   * SOP classes for which this requestor may take the SCP role when it proposes it in a role selection
   * sub-item (PS3.7 D.3.3.4); for every other SOP class it is the SCU only (the default roles).
   */
  readonly requestorScpRoles?: ReadonlySet<string>;
  /** Opaque context handed to the services (e.g. the peer's configured identity and worklist scope). */
  readonly peer: unknown;
}

export type AssociationDecision = AssociationAcceptance | AssociationRejection;

export type AssociationPolicy = (request: AssociationRequest) => AssociationDecision | Promise<AssociationDecision>;

export const RejectResult = { Permanent: 1, Transient: 2 } as const;
export const RejectSource = { ServiceUser: 1, ServiceProviderAcse: 2, ServiceProviderPresentation: 3 } as const;
export const RejectReason = {
  NoReasonGiven: 1,
  ApplicationContextNameNotSupported: 2,
  CallingAETitleNotRecognized: 3,
  CalledAETitleNotRecognized: 7,
  ProtocolVersionNotSupported: 2,
  TemporaryCongestion: 1,
  LocalLimitExceeded: 2,
} as const;
