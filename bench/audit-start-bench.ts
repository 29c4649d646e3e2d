// Start-up with a long audit chain, and the cost of the chain's head anchor. A development site gets
// N audit records (default 1,000,000) written with its own key, then `bin/edged` is started twice: the
// first start reads the chain back from the beginning (no verified cursor yet; bounded by the start
// budget, the rest in the background), the second from where the first stopped. Then the TPM NV counter
// that anchors the head is advanced against swtpm, as every anchored checkpoint does.
// Env: AUDIT_START_RECORDS (default 1,000,000). Prints one JSON line (`audit-start-bench {...}`).
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { silentLogger } from '../daemon/core/log.ts';
import { FileKeySource } from '../daemon/security/file-key-source.ts';
import { TpmAuditCounter } from '../daemon/security/tpm-audit-counter.ts';
import { TpmClient } from '../daemon/security/tpm-client.ts';
import { openStore } from '../daemon/store/index.ts';
import { sampleEvent } from '../test/support/audit-store.ts';
import { Daemon, createSite } from '../test/support/site.ts';
import { Swtpm } from '../test/support/swtpm.ts';

const RECORDS = Number(process.env['AUDIT_START_RECORDS'] ?? 1_000_000);
const site = await createSite();
try {
  const dataDir = join(site.dir, 'data');
  const t0 = performance.now();
  const store = await openStore({
    dataDir,
    keySource: new FileKeySource(join(site.dir, 'keys/data.key')),
    replayWindowMs: 3_600_000,
    logger: silentLogger,
  });
  for (let i = 1; i <= RECORDS; i++) {
    store.audit.record(sampleEvent(i));
    if (i % 10_000 === 0) await store.flush();
  }
  await store.flush();
  await store.close();
  const preloadMs = performance.now() - t0;

  /** Start, measure, and optionally wait for the background read-back to reach the head before stopping. */
  const start = async (waitCaughtUp: boolean): Promise<{ wallMs: number; startMs: number; verified: unknown; caughtUpMs?: number }> => {
    const t = performance.now();
    const d = await Daemon.start(site.configFile);
    const wallMs = performance.now() - t;
    const ready = d.process.events('edged.ready')[0] ?? {};
    const verified = d.process.events('audit.verified')[0];
    let caughtUpMs: number | undefined;
    if (waitCaughtUp && verified?.['done'] !== true) {
      await d.process.waitForLine((l) => l.includes('"audit.verified"') && l.includes('"background":true'), 600_000);
      caughtUpMs = Math.round(performance.now() - t);
    }
    if ((await d.stop()) !== 0) throw new Error('edged did not stop cleanly');
    return {
      wallMs: Math.round(wallMs),
      startMs: Number(ready['startMs']),
      verified: verified === undefined ? null : { throughSeq: verified['throughSeq'], done: verified['done'], ms: verified['ms'] },
      ...(caughtUpMs === undefined ? {} : { caughtUpMs }),
    };
  };
  // First start: nothing verified yet (the chain is read back in the background until the head).
  const first = await start(process.env['AUDIT_START_BEFORE'] === undefined);
  // Second start: the cursor is at the head; only the records since are read back.
  const second = await start(false);

  let anchor: { advances: number; meanMs: number; maxMs: number } | null = null;
  const swtpm = await Swtpm.start().catch(() => undefined);
  if (swtpm !== undefined) {
    try {
      const counter = new TpmAuditCounter(new TpmClient({ tcti: swtpm.tcti }));
      await counter.read();
      const times: number[] = [];
      for (let i = 0; i < 20; i++) {
        const t = performance.now();
        await counter.advance(true);
        times.push(performance.now() - t);
      }
      anchor = {
        advances: times.length,
        meanMs: Math.round(times.reduce((a, b) => a + b, 0) / times.length),
        maxMs: Math.round(Math.max(...times)),
      };
    } finally {
      await swtpm.stop();
    }
  }
  const result = { records: RECORDS, preloadMs: Math.round(preloadMs), firstStart: first, secondStart: second, tpmCounterAdvance: anchor };
  console.log(`audit-start-bench ${JSON.stringify(result)}`);
} finally {
  await site.cleanup();
}
