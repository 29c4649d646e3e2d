// Test support: a listener on 127.0.0.1:0 with a test policy that records every event.
import { readFile } from 'node:fs/promises';
import { silentLogger } from '../../core/log.ts';
import type { AssociationPolicy } from '../association-policy.ts';
import type { DicomEvent } from '../dicom-event.ts';
import type { DimseService } from '../dimse-service.ts';
import { SopClass } from '../dimse-service.ts';
import { DicomListener } from '../listener.ts';
import type { DicomListenerOptions } from '../listener.ts';
import { TransferSyntax } from '../transfer-syntax.ts';
import { verificationService } from '../verification-service.ts';

export const TEST_AE_TITLE = 'EDGE';
export const ALLOWED_CALLING_AE = 'MODALITY1';

/** Accepts ALLOWED_CALLING_AE only; Verification and MWL; the given transfer syntax preference. */
export function testPolicy(
  transferSyntaxes: readonly string[] = [TransferSyntax.ExplicitVRLittleEndian, TransferSyntax.ImplicitVRLittleEndian],
): AssociationPolicy {
  return (request) =>
    request.callingAeTitle === ALLOWED_CALLING_AE
      ? {
          accept: true,
          abstractSyntaxes: new Set([SopClass.Verification, SopClass.ModalityWorklistInformationModelFind]),
          transferSyntaxes,
          peer: { name: 'test-modality' },
        }
      : { accept: false, result: 1, source: 1, reason: 3, why: 'calling AE title not recognized' };
}

/** The listener's TLS material (test/support/test-pki.ts makes it; adapters may not import test support). */
export interface ListenerPki {
  readonly serverKey: string;
  readonly serverCert: string;
  readonly caCert: string;
}

export interface StartedListener {
  readonly listener: DicomListener;
  readonly port: number;
  readonly events: DicomEvent[];
  /** Resolves with the first recorded event matching `predicate` (already recorded or future). */
  waitForEvent(predicate: (e: DicomEvent) => boolean): Promise<DicomEvent>;
}

export async function startTestListener(
  options: Partial<DicomListenerOptions> & { pki?: ListenerPki; services?: readonly DimseService[] } = {},
): Promise<StartedListener> {
  const events: DicomEvent[] = [];
  const waiters: { predicate: (e: DicomEvent) => boolean; resolve: (e: DicomEvent) => void }[] = [];
  const { pki, ...rest } = options;
  const tls =
    pki === undefined
      ? undefined
      : {
          key: await readFile(pki.serverKey),
          cert: await readFile(pki.serverCert),
          ca: await readFile(pki.caCert),
        };
  const listener = new DicomListener({
    host: '127.0.0.1',
    port: 0,
    transport: pki === undefined ? 'plain' : 'tls',
    ...(tls === undefined ? {} : { tls }),
    aeTitle: TEST_AE_TITLE,
    services: [verificationService],
    onAssociationRequest: testPolicy(),
    logger: silentLogger,
    associationRequestTimeoutMs: 5000,
    idleTimeoutMs: 10_000,
    ...rest,
    onEvent: (e) => {
      events.push(e);
      for (const w of [...waiters]) {
        if (w.predicate(e)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(e);
        }
      }
    },
  });
  const port = await listener.start();
  return {
    listener,
    port,
    events,
    waitForEvent(predicate) {
      const found = events.find(predicate);
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((resolve) => waiters.push({ predicate, resolve }));
    },
  };
}
