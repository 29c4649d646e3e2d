// Start, stop and refusal to share a data directory, as an operator sees them.
import test from 'ava';
import { MllpTlsClient, msa, ormNew } from '../support/hl7-peers.ts';
import { Supervised } from '../support/processes.ts';
import { Daemon, createSite, repoRoot } from '../support/site.ts';
import { join } from 'node:path';

test('SIGTERM drains and stops cleanly; a restart serves the same data', async (t) => {
  const site = await createSite();
  try {
    const daemon = await Daemon.start(site.configFile);
    const client = await MllpTlsClient.connect(daemon.ports.hl7, {
      certFile: site.ris.certFile,
      keyFile: site.ris.keyFile,
      caFile: site.pki.caCert,
    });
    t.is(msa(await client.send(ormNew(1))), 'AA');
    t.is(await daemon.stop(), 0);
    t.truthy(daemon.process.events('edged.stopped')[0]);

    const again = await Daemon.start(site.configFile);
    const c2 = await MllpTlsClient.connect(again.ports.hl7, {
      certFile: site.ris.certFile,
      keyFile: site.ris.keyFile,
      caFile: site.pki.caCert,
    });
    t.is(msa(await c2.send(ormNew(1))), 'AR', 'the control id committed before the restart is still remembered');
    c2.close();
    t.is(await again.stop(), 0);
  } finally {
    await site.cleanup();
  }
});

test('a second daemon on the same data directory fails with a clear error', async (t) => {
  const site = await createSite();
  try {
    const first = await Daemon.start(site.configFile);
    const second = new Supervised(join(repoRoot, 'bin/edged'), ['--config', site.configFile]);
    const line = await second.waitForEvent('edged.start-failed');
    t.is(line['code'], 'EDGE_STORE_LOCKED');
    t.regex(String(line['error']), /another process/);
    const code = await new Promise<number | null>((resolve) => second.child.on('exit', (c) => resolve(c)));
    t.is(code, 74);
    t.false(first.process.exited);
    await first.stop();
  } finally {
    await site.cleanup();
  }
});

test('an invalid config is refused with every issue and exit status 78', async (t) => {
  const site = await createSite((c) => {
    c['hl7'].maxFrameBytes = 'big';
    c['dicom'].aeTitle = '';
    c['surprise'] = true;
  });
  try {
    const p = new Supervised(join(repoRoot, 'bin/edged'), ['--config', site.configFile]);
    const code = await new Promise<number | null>((resolve) => p.child.on('exit', (c) => resolve(c)));
    t.is(code, 78);
    t.regex(p.stderr, /hl7\.maxFrameBytes/);
    t.regex(p.stderr, /dicom\.aeTitle/);
    t.regex(p.stderr, /surprise/);
  } finally {
    await site.cleanup();
  }
});
