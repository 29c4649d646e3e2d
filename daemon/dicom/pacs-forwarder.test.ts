// Forwarding spooled instances to Orthanc as the PACS (plain and mutual TLS), through the outbox sender.
import test from 'ava';
import { readdir, readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../core/log.ts';
import { decide } from '../core/outbox-dispatcher.ts';
import { openTestSpool, type TestSpool } from '../store/testing/test-spool.ts';
import { classifyStoreStatus, dimseTransport, PacsForwarder } from './pacs-forwarder.ts';
import { storageServices } from './storage-service.ts';
import { makeDicomTestPki, type DicomTestPki } from '../../test/support/test-pki.ts';
import { splitPart10 } from './testing/part10.ts';
import { runPeer } from './testing/run-peer.ts';
import { ALLOWED_CALLING_AE, startTestListener, TEST_AE_TITLE } from './testing/test-listener.ts';
import { TransferSyntax } from './transfer-syntax.ts';
import { verificationService } from './verification-service.ts';
import { freePort } from '../../test/support/processes.ts';
import { PEERS } from '../../test/support/paths.ts';

const CT = '1.2.840.10008.5.1.4.1.1.2';
let workDir = '';
let files: string[] = [];
let pki: DicomTestPki;

test.before(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'edge-forward-'));
  pki = makeDicomTestPki(join(workDir));
  const r = await runPeer('bash', [`${PEERS}/dicom/gen-dicom.sh`, join(workDir, 'ct'), '12', '64x64'], 60_000);
  if (r.code !== 0) throw new Error(r.stderr);
  files = (await readdir(join(workDir, 'ct'))).map((f) => join(workDir, 'ct', f)).sort();
});

test.after.always(async () => {
  if (workDir !== '') await rm(workDir, { recursive: true, force: true });
});

interface Orthanc {
  readonly http: number;
  readonly dicom: number;
  stop(): Promise<void>;
  sopInstanceUids(): Promise<Set<string>>;
}

async function spoolAll(t: { teardown(fn: () => Promise<void>): void }, paths: string[]): Promise<TestSpool> {
  const s = await openTestSpool(await mkdtemp(join(workDir, 'site-')));
  const l = await startTestListener({
    services: [verificationService, ...storageServices({ sopClassUids: [CT], spool: s.spool, logger: silentLogger })],
    onAssociationRequest: () => ({
      accept: true,
      abstractSyntaxes: new Set([CT]),
      transferSyntaxes: [TransferSyntax.ExplicitVRLittleEndian],
      transferSyntaxesByAbstractSyntax: new Map([[CT, [TransferSyntax.ExplicitVRLittleEndian, TransferSyntax.ImplicitVRLittleEndian]]]),
      peer: {},
    }),
  });
  const r = await runPeer('storescu', ['-aet', ALLOWED_CALLING_AE, '-aec', TEST_AE_TITLE, '127.0.0.1', String(l.port), ...paths], 60_000);
  await l.listener.stop(1000);
  if (r.code !== 0) throw new Error(r.stderr);
  t.teardown(() => s.close());
  return s;
}

test('classifyStoreStatus follows PS3.4 B.2.3', (t) => {
  t.is(classifyStoreStatus(0x0000), 'delivered');
  t.is(classifyStoreStatus(0xb000), 'delivered');
  t.is(classifyStoreStatus(0xa700), 'retry');
  t.is(classifyStoreStatus(0xa900), 'rejected');
  t.is(classifyStoreStatus(0xc000), 'rejected');
});

for (const mode of ['plain', 'tls'] as const) {
  test.serial(`forward to Orthanc over ${mode}: outage → retry; after restart every instance arrives and leaves the spool`, async (t) => {
    const s = await spoolAll(t, files);
    const orthancDir = await mkdtemp(join(workDir, 'orthanc-'));
    const dicomPort = await freePort();
    const forwarder = new PacsForwarder({
      destination: 'pacs',
      spool: s.spool,
      transport: dimseTransport({
        host: '127.0.0.1',
        port: dicomPort,
        calledAeTitle: 'ORTHANC',
        callingAeTitle: 'EDGE',
        ...(mode === 'tls'
          ? {
              tls: {
                ca: await readFile(pki.caCert),
                cert: await readFile(pki.clientCert),
                key: await readFile(pki.clientKey),
                servername: 'localhost',
              },
            }
          : {}),
        connectTimeoutMs: 3000,
        responseTimeoutMs: 10_000,
      }),
      logger: silentLogger,
    });
    const entries = s.outbox.queued('pacs');
    t.is(entries.length, files.length);
    // Outage: nobody listens.
    const down = await forwarder.deliver(entries, new AbortController().signal);
    t.true(down.every((r) => decide(r) === 'retry'));
    t.is(s.spool.usage().instances, files.length);

    const orthanc = await startOrthancOn(orthancDir, dicomPort, mode === 'tls' ? pki.dir : undefined);
    t.teardown(() => orthanc.stop());
    // Two batches, as two dispatcher workers would send them, in parallel.
    const half = Math.ceil(entries.length / 2);
    const [a, b] = await Promise.all([
      forwarder.deliver(entries.slice(0, half), new AbortController().signal),
      forwarder.deliver(entries.slice(half), new AbortController().signal),
    ]);
    t.true(
      [...a, ...b].every((r) => r.outcome === 'delivered'),
      JSON.stringify([...a, ...b].filter((r) => r.outcome !== 'delivered')),
    );
    const inPacs = await orthanc.sopInstanceUids();
    for (const f of files) t.true(inPacs.has(splitPart10(await readFile(f)).sopInstanceUid));
    t.is(s.spool.usage().instances, 0);
    t.deepEqual(await readdir(s.spoolDir), []);
    // Delivering the same entries again (a crash before the outbox settled) sends nothing more.
    const again = await forwarder.deliver(entries, new AbortController().signal);
    t.true(again.every((r) => r.outcome === 'delivered'));
  });
}

async function startOrthancOn(dir: string, dicomPort: number, tlsDir?: string): Promise<Orthanc> {
  const http = await freePort();
  const r = await runPeer(
    'env',
    [
      ...(tlsDir === undefined ? [] : [`TLS_DIR=${tlsDir}`]),
      'bash',
      `${PEERS}/orthanc/orthanc-start.sh`,
      String(http),
      String(dicomPort),
      dir,
    ],
    60_000,
  );
  if (r.code !== 0) throw new Error(`orthanc: ${r.stderr}`);
  const pid = r.stdout.trim().split('\n').pop() ?? '';
  return {
    http,
    dicom: dicomPort,
    async stop() {
      await runPeer('bash', [`${PEERS}/lib/stop.sh`, pid]);
    },
    async sopInstanceUids() {
      const res = await fetch(`http://127.0.0.1:${http}/instances?expand`);
      const list = (await res.json()) as Array<{ MainDicomTags: { SOPInstanceUID: string } }>;
      return new Set(list.map((i) => i.MainDicomTags.SOPInstanceUID));
    },
  };
}
