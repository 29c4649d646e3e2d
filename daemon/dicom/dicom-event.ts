// Events the dicom layer reports to its owner (for audit). Identifiers only, never patient data.
import type { Transport } from './dimse-service.ts';

export interface AssociationIdentity {
  readonly associationId: string;
  readonly remoteAddress: string;
  readonly transport: Transport;
  readonly callingAeTitle?: string;
  readonly calledAeTitle?: string;
  readonly peerCertificateCn?: string;
  readonly peerCertificateFingerprint256?: string;
}

export type DicomEvent =
  | ({ readonly type: 'association-accepted'; readonly acceptedContexts: number } & AssociationIdentity)
  | ({
      readonly type: 'association-rejected';
      readonly result: number;
      readonly source: number;
      readonly reason: number;
      readonly why: string;
    } & AssociationIdentity)
  | ({ readonly type: 'association-released' } & AssociationIdentity)
  | ({ readonly type: 'association-aborted'; readonly by: 'peer' | 'local'; readonly why: string } & AssociationIdentity)
  /** `reason`: the TLS error or the certificate verification code (CERT_HAS_EXPIRED, ...); `subject`: what the peer presented. */
  | { readonly type: 'tls-handshake-failed'; readonly remoteAddress: string; readonly reason: string; readonly subject?: string }
  | { readonly type: 'connection-refused'; readonly remoteAddress: string; readonly transport: Transport; readonly why: string };

export type DicomEventListener = (event: DicomEvent) => void;
