// The clinical path under attack: a real RIS order is acknowledged and a real modality's worklist answers,
// each within a stated latency. Every hardening test calls this during and after its attack.
import { findscu } from './dicom-peers.ts';
import { MllpTlsClient, msa, ormNew } from './hl7-peers.ts';
import type { Daemon, SiteInfo } from './site.ts';

export interface ServingProbe {
  readonly ackMs: number;
  readonly queryMs: number;
  readonly ack: string | undefined;
  readonly found: boolean;
  readonly finalStatus: string | undefined;
}

let probeSeq = 0;

/**
 * Send one new CT order as the RIS over mutual TLS, then ask for it as CT01 over TLS with DCMTK findscu.
 * `n` defaults to a number no other probe in this process uses, so repeated probes never replay MSH-10.
 */
export async function probeServing(site: SiteInfo, daemon: Daemon, n = 900_000 + process.pid * 100 + probeSeq++): Promise<ServingProbe> {
  const ris = { certFile: site.ris.certFile, keyFile: site.ris.keyFile, caFile: site.pki.caCert };
  const ct01 = site.modalities.find((m) => m.aeTitle === 'CT01')!;
  const t0 = performance.now();
  const client = await MllpTlsClient.connect(daemon.ports.hl7, ris);
  let ack: string | undefined;
  try {
    ack = msa(await client.send(ormNew(n)));
  } finally {
    client.close();
  }
  const ackMs = performance.now() - t0;
  const t1 = performance.now();
  const r = await findscu({
    port: daemon.ports.dicomTls,
    callingAe: 'CT01',
    tls: { certFile: ct01.certFile!, keyFile: ct01.keyFile!, caFile: site.pki.caCert },
    keys: ['AccessionNumber=ACC' + n, 'PatientName', 'ScheduledProcedureStepSequence[0].Modality=CT'],
  });
  const queryMs = performance.now() - t1;
  return { ackMs, queryMs, ack, found: r.responses.some((x) => x['AccessionNumber'] === 'ACC' + n), finalStatus: r.finalStatus };
}

/** The probe as an assertion message: undefined when the box served within `maxMs` per leg, else why not. */
export async function servingProblem(site: SiteInfo, daemon: Daemon, maxMs = 5000): Promise<string | undefined> {
  const p = await probeServing(site, daemon);
  if (p.ack !== 'AA') return `RIS order got ${p.ack ?? 'no ACK'}`;
  if (!p.found) return `CT01's worklist query did not return the new order (final status ${p.finalStatus ?? 'none'})`;
  if (p.ackMs > maxMs) return `ACK took ${Math.round(p.ackMs)} ms (limit ${maxMs} ms)`;
  if (p.queryMs > maxMs) return `worklist query took ${Math.round(p.queryMs)} ms (limit ${maxMs} ms)`;
  return undefined;
}
