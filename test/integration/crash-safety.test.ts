// Commit, then acknowledge: kill -9 the daemon while RIS connections stream orders. After a restart every
// order that got AA is on the worklist, and none twice.
import test from 'ava';
import { findscu } from '../support/dicom-peers.ts';
import { MllpTlsClient, msa, ormNew } from '../support/hl7-peers.ts';
import { Daemon, createSite } from '../support/site.ts';

test('kill -9 during streaming loses no acknowledged order (3 cycles, 4 connections)', async (t) => {
  t.timeout(180_000);
  const site = await createSite((c) => {
    c['dicom'].worklist = { maxResults: 20_000 };
  });
  const ris = { certFile: site.ris.certFile, keyFile: site.ris.keyFile, caFile: site.pki.caCert };
  const ct = site.modalities.find((m) => m.aeTitle === 'CT01')!;
  const acked = new Set<number>();
  let next = 0;
  try {
    for (let cycle = 0; cycle < 3; cycle++) {
      const daemon = await Daemon.start(site.configFile);
      let stop = false;
      const streams = Array.from({ length: 4 }, async () => {
        const client = await MllpTlsClient.connect(daemon.ports.hl7, ris);
        while (!stop && !client.closed) {
          const n = next++;
          const ack = await client.send(ormNew(n, { controlId: `CRASH${n}` })).catch(() => undefined);
          if (ack === undefined) break;
          if (msa(ack) === 'AA') acked.add(n);
        }
      });
      // Kill at a different moment each cycle, while all four connections are mid-stream.
      await new Promise((r) => setTimeout(r, 400 + cycle * 350));
      await daemon.kill9();
      stop = true;
      await Promise.all(streams);
    }
    t.true(acked.size > 50, `only ${acked.size} orders were acknowledged before the kills`);

    const daemon = await Daemon.start(site.configFile);
    try {
      const r = await findscu({
        port: daemon.ports.dicomTls,
        callingAe: 'CT01',
        tls: { certFile: ct.certFile!, keyFile: ct.keyFile!, caFile: site.pki.caCert },
        keys: ['AccessionNumber'],
      });
      t.is(r.finalStatus, 'Success');
      const seen = r.responses.map((x) => x['AccessionNumber']);
      const counts = new Map<string, number>();
      for (const a of seen) counts.set(a!, (counts.get(a!) ?? 0) + 1);
      const missing = [...acked].filter((n) => !counts.has(`ACC${n}`));
      const twice = [...counts].filter(([, c]) => c > 1).map(([a]) => a);
      t.deepEqual(missing, [], 'every acknowledged order is on the worklist');
      t.deepEqual(twice, [], 'no order is on the worklist twice');
      t.log(`${acked.size} acknowledged, ${seen.length} on the worklist after 3 kill -9 cycles (sent ${next})`);
    } finally {
      await daemon.stop();
    }
  } finally {
    await site.cleanup();
  }
});
