// The pull API's own accounting of a bundle download, against a real HTTPS client with a central
// team's certificate. Regression: a client that had the whole content-length and closed before the file
// stream's 'end' event (so before res.end() and 'finish') had its pull recorded as failed. The bundle is
// served from a FIFO whose writer stays open, so the stream's 'end' never comes and the race is certain.
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { open, readFile } from 'node:fs/promises';
import https from 'node:https';
import { join } from 'node:path';
import { silentLogger } from '../core/log.ts';
import { makeAuditTestPki } from '../../test/support/test-pki.ts';
import { AuditPullApi, type AuditPullEvent, type PreparedBundle } from './audit-pull-api.ts';
import { eventually } from '../../test/support/wait.ts';
import { TLS_CIPHERS, TLS_ECDH_CURVES } from '../security/tls-profile.ts';

const BUNDLE_BYTES = 64 * 1024;

/** A download of /v1/audit/bundle that closes the connection once `closeAfter` bytes have arrived. */
function downloadAndClose(
  port: number,
  client: { cert: Buffer; key: Buffer; ca: Buffer },
  closeAfter: number,
): Promise<{ contentLength: number; received: number }> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      { host: '127.0.0.1', port, path: '/v1/audit/bundle', servername: 'localhost', ...client, agent: false, timeout: 20_000 },
      (res) => {
        let received = 0;
        res.on('data', (c: Buffer) => {
          received += c.length;
          if (received >= closeAfter) {
            req.destroy();
            resolve({ contentLength: Number(res.headers['content-length']), received });
          }
        });
        res.on('error', () => undefined);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => {
      if (!req.destroyed || (err as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(err);
    });
  });
}

async function servingFromFifo(t: ExecutionContext, written: number) {
  const pki = makeAuditTestPki();
  t.teardown(() => pki.cleanup());
  const fifo = join(pki.dir, 'bundle.tar');
  execFileSync('mkfifo', [fifo]);
  const events: AuditPullEvent[] = [];
  let writer: Awaited<ReturnType<typeof open>> | undefined;
  const api = new AuditPullApi({
    host: '127.0.0.1',
    port: 0,
    tls: {
      cert: await readFile(pki.device.cert),
      key: await readFile(pki.device.key),
      centralCa: await readFile(pki.centralCa),
      minVersion: 'TLSv1.2',
      ciphers: TLS_CIPHERS,
      ecdhCurve: TLS_ECDH_CURVES,
    },
    maxConnections: 4,
    requestTimeoutMs: 20_000,
    logger: silentLogger,
    ranges: () => Promise.resolve({}),
    prepareBundle: async (): Promise<PreparedBundle> => {
      // Opening the read side (createReadStream) and this write side meet in the kernel; the writer stays
      // open until cleanup, so the server never reads end-of-file before the client closes.
      const opening = open(fifo, 'w');
      void opening.then(async (w) => {
        writer = w;
        await w.write(Buffer.alloc(written, 0x61));
      });
      return { path: fifo, fromSeq: 1, toSeq: 10, count: 10, bytes: BUNDLE_BYTES, cleanup: async () => (await opening).close() };
    },
    onEvent: (e) => events.push(e),
  });
  const port = await api.start();
  t.teardown(async () => {
    await writer?.close().catch(() => undefined);
    await api.stop();
  });
  const client = { cert: await readFile(pki.central.cert), key: await readFile(pki.central.key), ca: await readFile(pki.siteCa) };
  return { port, client, events };
}

test('every byte handed over, the client closes before the stream ends: recorded as pulled', async (t) => {
  const { port, client, events } = await servingFromFifo(t, BUNDLE_BYTES);
  const got = await downloadAndClose(port, client, BUNDLE_BYTES);
  t.is(got.contentLength, BUNDLE_BYTES);
  t.is(got.received, BUNDLE_BYTES);
  const outcome = await eventually(
    () => events.find((e) => e.type === 'bundle-pulled' || e.type === 'bundle-failed'),
    10_000,
    'the pull to be accounted',
  );
  t.like(outcome, { type: 'bundle-pulled', fromSeq: 1, toSeq: 10, count: 10, client: { cn: 'central-soc' } });
});

test('the client closes halfway through the download: recorded as failed, not pulled', async (t) => {
  const { port, client, events } = await servingFromFifo(t, BUNDLE_BYTES / 2);
  const got = await downloadAndClose(port, client, BUNDLE_BYTES / 2);
  t.is(got.received, BUNDLE_BYTES / 2);
  const outcome = await eventually(
    () => events.find((e) => e.type === 'bundle-pulled' || e.type === 'bundle-failed'),
    10_000,
    'the pull to be accounted',
  );
  t.like(outcome, { type: 'bundle-failed', code: 'EDGE_AUDIT_BUNDLE_INVALID' });
  t.false(events.some((e) => e.type === 'bundle-pulled'));
});
