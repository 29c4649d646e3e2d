// Storage Commitment Push Model against real peers: DCMTK storescu sends the instances over TLS as CT01,
// dcmjs-dimse is CT01's commitment SCU (N-ACTION over TLS; an SCP on loopback receives the box's
// N-EVENT-REPORT), Orthanc is the PACS. The report names an instance as committed only once Orthanc
// holds it; a PACS that stays down yields a failure report after the deadline; a kill -9 between the
// N-ACTION and the report loses nothing; unknown instances are in the failure list with 0x0112.
import test from 'ava';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CT_IMAGE_STORAGE,
  CommitmentReceiver,
  type ReferencedSop,
  requestCommitment,
  sendEventReport,
  uid,
} from '../support/commitment-peers.ts';
import { storescu } from '../support/dicom-peers.ts';
import { type Orthanc, startOrthanc } from '../support/orthanc.ts';
import { PEERS } from '../support/paths.ts';
import { freePort, run } from '../support/processes.ts';
import { Daemon, type SiteInfo, createSite } from '../support/site.ts';
import { waitFor } from '../support/wait.ts';

const SUCCESS = 0x0000;
const NO_SUCH_OBJECT_INSTANCE = 0x0112;
const PROCESSING_FAILURE = 0x0110;

let work = '';
let files: string[] = [];
const uidOf = new Map<string, string>();

test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'edge-commitment-'));
  const r = await run('bash', [`${PEERS}/dicom/gen-dicom.sh`, join(work, 'ct'), '12', '32x32'], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(r.stderr);
  files = (await readdir(join(work, 'ct'))).map((f) => join(work, 'ct', f)).sort();
  for (const f of files) {
    const d = await run('dcmdump', ['+P', 'SOPInstanceUID', f]);
    const m = /\[([0-9.]+)\]/.exec(d.stdout);
    if (m === null) throw new Error(`no SOP Instance UID in ${f}`);
    uidOf.set(f, m[1]!);
  }
});

test.after.always(async () => {
  if (work !== '') await rm(work, { recursive: true, force: true });
});

function refs(paths: readonly string[]): ReferencedSop[] {
  return paths.map((f) => ({ sopClassUid: CT_IMAGE_STORAGE, sopInstanceUid: uidOf.get(f)! }));
}

async function commitmentSite(pacsPort: number, reportPort: number, deadlineMs: number, pacsCommitment = false, reportTls = false) {
  return createSite((c) => {
    c['upstream'] = {
      pacs: {
        host: '127.0.0.1',
        port: pacsPort,
        aeTitle: 'ORTHANC',
        tls: false,
        connectTimeoutMs: 1000,
        batchSize: 10,
        ...(pacsCommitment ? { storageCommitment: true, storageCommitmentReaskMs: 60_000 } : {}),
      },
    };
    c['outbox'] = { initialDelayMs: 200, maxDelayMs: 1000, jitterPercent: 20 };
    c['dicom'].storageCommitment = { deadlineMs };
    for (const m of c['dicom'].modalities as Array<Record<string, unknown>>) {
      // CT01 is a TLS modality: its report association is TLS unless told otherwise.
      if (m['aeTitle'] === 'CT01') m['storageCommitment'] = reportTls ? { port: reportPort } : { port: reportPort, tls: false };
    }
  });
}

function ct01(site: SiteInfo, port: number) {
  const m = site.modalities.find((x) => x.aeTitle === 'CT01')!;
  return { port, callingAeTitle: 'CT01', tls: { certFile: m.certFile!, keyFile: m.keyFile!, caFile: site.pki.caCert } };
}

test.serial('the report waits for the PACS: success only for instances Orthanc holds, unknown ones fail with 0x0112', async (t) => {
  t.timeout(90_000);
  const [http, dicom] = [await freePort(), await freePort()];
  const receiver = new CommitmentReceiver('CT01');
  await receiver.start();
  const site = await commitmentSite(dicom, receiver.port, 600_000);
  const daemon = await Daemon.start(site.configFile);
  let orthanc: Orthanc | undefined;
  try {
    const batch = files.slice(0, 4);
    const stored = await storescu(site, daemon.ports.dicomTls, batch);
    t.is(stored.stored.size, batch.length, 'every instance stored while the PACS is down');
    const allKnown = uid();
    const withUnknown = uid();
    const unknown = { sopClassUid: CT_IMAGE_STORAGE, sopInstanceUid: uid() };
    t.is((await requestCommitment(ct01(site, daemon.ports.dicomTls), allKnown, refs(batch))).status, SUCCESS);
    t.is((await requestCommitment(ct01(site, daemon.ports.dicomTls), withUnknown, [...refs(batch.slice(0, 2)), unknown])).status, SUCCESS);
    // A repeated Transaction UID is the same request: answered, recorded once, reported once.
    t.is((await requestCommitment(ct01(site, daemon.ports.dicomTls), allKnown, refs(batch))).status, SUCCESS);
    await new Promise((r) => setTimeout(r, 3000));
    t.is(receiver.reports.length, 0, 'no report while the PACS holds none of the instances');

    orthanc = await startOrthanc(join(work, 'orthanc-wait'), http, dicom);
    t.true(await waitFor(() => receiver.report(allKnown) !== undefined && receiver.report(withUnknown) !== undefined, 40_000));
    const held = await orthanc.sopInstanceUids();
    const full = receiver.report(allKnown)!;
    t.is(full.eventTypeId, 1);
    t.deepEqual(
      [...full.success].sort(),
      refs(batch)
        .map((r) => r.sopInstanceUid)
        .sort(),
    );
    t.deepEqual(full.failed, []);
    t.true(
      full.success.every((u) => held.has(u)),
      'every committed instance is in Orthanc',
    );
    t.is(full.calledAeTitle, 'CT01');
    t.is(full.callingAeTitle, 'EDGE');
    const partial = receiver.report(withUnknown)!;
    t.is(partial.eventTypeId, 2);
    t.deepEqual(
      [...partial.success].sort(),
      refs(batch.slice(0, 2))
        .map((r) => r.sopInstanceUid)
        .sort(),
    );
    t.deepEqual(partial.failed, [{ sopInstanceUid: unknown.sopInstanceUid, failureReason: NO_SUCH_OBJECT_INSTANCE }]);
    await new Promise((r) => setTimeout(r, 1000));
    t.is(receiver.reports.filter((r) => r.transactionUid === allKnown).length, 1, 'one report per transaction');
    // After its report, the same Transaction UID again (a modality that lost the report) is reported again.
    t.is((await requestCommitment(ct01(site, daemon.ports.dicomTls), allKnown, refs(batch))).status, SUCCESS);
    t.true(await waitFor(() => receiver.reports.filter((r) => r.transactionUid === allKnown).length === 2, 20_000));
    // Once the PACS holds them, a new request is answered at once, on its own association while that is open.
    const late = uid();
    const asked = await requestCommitment(ct01(site, daemon.ports.dicomTls), late, refs(batch.slice(3)), { lingerMs: 6000 });
    t.is(asked.status, SUCCESS);
    t.is(asked.reports.length, 1, 'the report came on the association that asked');
    t.is(asked.reports[0]!.eventTypeId, 1);
    t.deepEqual(
      asked.reports[0]!.success,
      refs(batch.slice(3)).map((r) => r.sopInstanceUid),
    );
    t.is(receiver.report(late), undefined, 'and not again on a new association');
  } finally {
    await daemon.stop();
    await orthanc?.stop();
    await receiver.stop();
    await site.cleanup();
  }
});

test.serial('PACS down past the deadline: the report, over TLS, lists every instance as failed (0x0110)', async (t) => {
  t.timeout(60_000);
  const dicom = await freePort();
  let receiver = new CommitmentReceiver('CT01');
  await receiver.start();
  const deadlineMs = 5000;
  const site = await commitmentSite(dicom, receiver.port, deadlineMs, false, true);
  // The modality's commitment SCU as a TLS server with a site certificate for 127.0.0.1 (the box checks it).
  const port = receiver.port;
  await receiver.stop();
  receiver = new CommitmentReceiver('CT01', {
    tls: { certFile: site.pki.serverCert, keyFile: site.pki.serverKey, caFile: site.pki.caCert },
  });
  await receiver.start(port);
  const daemon = await Daemon.start(site.configFile);
  try {
    const batch = files.slice(4, 7);
    t.is((await storescu(site, daemon.ports.dicomTls, batch)).stored.size, batch.length);
    const tx = uid();
    const asked = Date.now();
    t.is((await requestCommitment(ct01(site, daemon.ports.dicomTls), tx, refs(batch))).status, SUCCESS);
    t.true(await waitFor(() => receiver.report(tx) !== undefined, 30_000));
    const report = receiver.report(tx)!;
    t.true(report.at - asked >= deadlineMs - 500, `reported after ${report.at - asked} ms, deadline ${deadlineMs} ms`);
    t.is(report.eventTypeId, 2);
    t.deepEqual(report.success, []);
    t.deepEqual(
      [...report.failed].sort((a, b) => a.sopInstanceUid.localeCompare(b.sopInstanceUid)),
      refs(batch)
        .map((r) => ({ sopInstanceUid: r.sopInstanceUid, failureReason: PROCESSING_FAILURE }))
        .sort((a, b) => a.sopInstanceUid.localeCompare(b.sopInstanceUid)),
    );
    const failed = daemon.process.events('commitment.report-queued');
    t.is(failed.length, 1);
    t.is(failed[0]!['failed'], batch.length);
  } finally {
    await daemon.stop();
    await receiver.stop();
    await site.cleanup();
  }
});

test.serial('kill -9 between the N-ACTION and the report: the report still comes after the restart', async (t) => {
  t.timeout(90_000);
  const [http, dicom] = [await freePort(), await freePort()];
  const receiver = new CommitmentReceiver('CT01');
  await receiver.start();
  const site = await commitmentSite(dicom, receiver.port, 600_000);
  let orthanc: Orthanc | undefined;
  let daemon = await Daemon.start(site.configFile);
  try {
    const batch = files.slice(7, 12);
    t.is((await storescu(site, daemon.ports.dicomTls, batch)).stored.size, batch.length);
    const tx = uid();
    t.is((await requestCommitment(ct01(site, daemon.ports.dicomTls), tx, refs(batch))).status, SUCCESS);
    await daemon.kill9();
    t.is(receiver.reports.length, 0);
    orthanc = await startOrthanc(join(work, 'orthanc-crash'), http, dicom);
    daemon = await Daemon.start(site.configFile);
    t.true(await waitFor(() => receiver.report(tx) !== undefined, 40_000), 'the report came after the restart');
    const report = receiver.report(tx)!;
    t.is(report.eventTypeId, 1);
    t.deepEqual(
      [...report.success].sort(),
      refs(batch)
        .map((r) => r.sopInstanceUid)
        .sort(),
    );
    const held = await orthanc.sopInstanceUids();
    t.true(report.success.every((u) => held.has(u)));
  } finally {
    await daemon.stop();
    await orthanc?.stop();
    await receiver.stop();
    await site.cleanup();
  }
});

for (const allowed of [true, false]) {
  test.serial(
    allowed
      ? "upstream.pacs.storageCommitment: instances count as committed only once Orthanc's own N-EVENT-REPORT committed them"
      : 'upstream.pacs.storageCommitment with an Orthanc that refuses commitment: stored in Orthanc, yet reported failed at the deadline',
    async (t) => {
      t.timeout(90_000);
      const [http, dicom] = [await freePort(), await freePort()];
      const receiver = new CommitmentReceiver('CT01');
      await receiver.start();
      const site = await commitmentSite(dicom, receiver.port, allowed ? 600_000 : 5000, true);
      const daemon = await Daemon.start(site.configFile);
      // Orthanc reports to the box's plain port as calling AE ORTHANC (its DicomModalities entry for the box).
      const orthanc = await startOrthanc(join(work, `orthanc-commit-${allowed}`), http, dicom, {
        modalities: { EDGE: { AET: 'EDGE', Host: '127.0.0.1', Port: daemon.ports.dicomPlain, AllowStorageCommitment: allowed } },
      });
      try {
        const batch = files.slice(0, 3);
        t.is((await storescu(site, daemon.ports.dicomTls, batch)).stored.size, batch.length);
        if (allowed) {
          // Deny by default: only the PACS may report a commitment to the box, never a modality.
          const forged = await sendEventReport(ct01(site, daemon.ports.dicomTls), uid(), refs(batch));
          t.is(forged.status, 0x0124, 'a modality reporting storage commitment is refused (not authorized)');
        }
        const tx = uid();
        t.is((await requestCommitment(ct01(site, daemon.ports.dicomTls), tx, refs(batch))).status, SUCCESS);
        t.true(await waitFor(() => receiver.report(tx) !== undefined, 40_000));
        const report = receiver.report(tx)!;
        const held = await orthanc.sopInstanceUids();
        t.true(
          refs(batch).every((r) => held.has(r.sopInstanceUid)),
          'Orthanc holds every instance either way',
        );
        const reported = daemon.process.events('pacs.commitment-reported');
        if (allowed) {
          t.is(report.eventTypeId, 1);
          t.deepEqual(
            [...report.success].sort(),
            refs(batch)
              .map((r) => r.sopInstanceUid)
              .sort(),
          );
          t.true(reported.length > 0, "Orthanc's commitment report reached the box");
        } else {
          t.is(report.eventTypeId, 2);
          t.deepEqual(report.success, []);
          t.true(report.failed.every((f) => f.failureReason === PROCESSING_FAILURE));
          t.is(reported.length, 0);
        }
      } finally {
        await daemon.stop();
        await orthanc.stop();
        await receiver.stop();
        await site.cleanup();
      }
    },
  );
}

test.serial('N-ACTION refusals: wrong action type 0x0123, no Transaction UID 0x0120, a bad UID 0x0106; nothing is reported', async (t) => {
  t.timeout(40_000);
  const receiver = new CommitmentReceiver('CT01');
  await receiver.start();
  const site = await commitmentSite(await freePort(), receiver.port, 2000);
  const daemon = await Daemon.start(site.configFile);
  try {
    const r = await requestCommitment(ct01(site, daemon.ports.dicomTls), uid(), refs(files.slice(0, 1)), { actionTypeId: 2 });
    t.is(r.status, 0x0123);
    const noTransaction = await requestCommitment(ct01(site, daemon.ports.dicomTls), '', refs(files.slice(0, 1)));
    t.is(noTransaction.status, 0x0120, 'Transaction UID missing');
    const notUid = await requestCommitment(ct01(site, daemon.ports.dicomTls), uid(), [
      { sopClassUid: CT_IMAGE_STORAGE, sopInstanceUid: 'x.y' },
    ]);
    t.is(notUid.status, 0x0106, 'a Referenced SOP Instance UID that is not a UID');
    await new Promise((res) => setTimeout(res, 2500));
    t.is(receiver.reports.length, 0);
    t.is(daemon.process.events('dicom.commitment.refused').length, 3);
  } finally {
    await daemon.stop();
    await receiver.stop();
    await site.cleanup();
  }
});
