// Break-glass against the live daemon with rsyslogd (gnutls) as the central audit collector: a reason
// is required, the elevation raises the role for its time limit only, every user's session shows the
// banner, "Emergency Override Started / Stopped" reach the collector over TLS within 5 s, and the use
// waits in the review list until an auditor marks it reviewed.
import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { userWithRole } from '../support/access.ts';
import { Rsyslog } from '../support/rsyslog.ts';
import { Daemon, createSite } from '../support/site.ts';
import { poll } from '../support/wait.ts';

const ELEVATION_MS = 4000;

async function collected(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return '';
  }
}

test('break-glass: reason required, time-limited elevation, banner for everyone, Security Alerts at the collector, review', async (t) => {
  t.timeout(120_000);
  const site = await createSite((c) => {
    c['admin'].breakGlass = { role: 'operator', durationMs: ELEVATION_MS };
  });
  const rsyslog = await Rsyslog.start({
    dir: join(site.dir, 'rsyslog'),
    caFile: site.pki.caCert,
    certFile: site.pki.serverCert,
    keyFile: site.pki.serverKey,
  });
  const config = JSON.parse(await readFile(site.configFile, 'utf8')) as Record<string, any>;
  config['audit'] = {
    collectors: [{ name: 'central', host: '127.0.0.1', port: rsyslog.port, serverName: 'localhost' }],
    stream: { confirmAfterMs: 500, retryMaxMs: 1000 },
  };
  await writeFile(site.configFile, JSON.stringify(config, null, 2));
  const daemon = await Daemon.start(site.configFile);
  t.teardown(async () => {
    await daemon.stop();
    await rsyslog.stop();
    await site.cleanup();
  });
  const join_ = (name: string, role: string) => userWithRole(site.configFile, daemon.ports.admin, site.pki.caCert, name, role);
  const viewer = await join_('night-tech', 'viewer');
  const colleague = await join_('day-tech', 'viewer');
  const auditor = await join_('auditor', 'auditor');

  const operatorAction = () => viewer.client.post('/api/v1/queues/retry-now', {});
  t.is((await operatorAction()).status, 403, 'a viewer may not act on the queues');
  const noReason = await viewer.client.post('/api/v1/break-glass/start', {});
  t.is(noReason.status, 400);
  t.is(noReason.body.error.code, 'EDGE_ACCESS_BREAK_GLASS_INVALID');
  t.is((await viewer.client.post('/api/v1/break-glass/start', { reason: 'urgent' })).status, 400, 'a reason of a few letters is no reason');
  t.false((await colleague.client.get('/api/v1/session')).body.breakGlass.active);

  const reason = 'RIS link down, CT worklist stuck; on-call admin unreachable';
  const startedAt = Date.now();
  const start = await viewer.client.post('/api/v1/break-glass/start', { reason });
  t.is(start.status, 200, JSON.stringify(start.body));
  t.is(start.body.role, 'operator');
  const raised = await operatorAction();
  t.not(raised.status, 403, 'the elevated session may act on the queues');
  t.is((await viewer.client.get('/api/v1/session')).body.elevatedTo, 'operator');

  // The banner, for every signed-in user.
  for (const who of [colleague, auditor, viewer]) {
    const banner = (await who.client.get('/api/v1/session')).body.breakGlass;
    t.true(banner.active, `${who.username} sees the banner`);
    t.is(banner.elevations[0].username, 'night-tech');
  }

  // Emergency Override Started at the collector, over TLS, within 5 s.
  const started = await poll(
    async () => {
      const text = await collected(rsyslog.outFile);
      return text.includes('csd-code="110127"') && text.includes('access.break-glass-started') ? Date.now() : undefined;
    },
    15_000,
    50,
  );
  t.truthy(started, 'Emergency Override Started reached rsyslogd');
  t.true(started! - startedAt < 5000, `after ${started! - startedAt} ms`);
  t.log(`Emergency Override Started at the collector after ${started! - startedAt} ms`);

  // The time limit ends it by itself: Emergency Override Stopped, the role back to viewer, no banner.
  const stopped = await poll(
    async () => {
      const text = await collected(rsyslog.outFile);
      return text.includes('csd-code="110138"') && text.includes('access.break-glass-stopped') ? true : undefined;
    },
    ELEVATION_MS + 10_000,
    100,
  );
  t.true(stopped === true, 'Emergency Override Stopped reached rsyslogd');
  t.is((await operatorAction()).status, 403, 'the elevation ended');
  t.false((await colleague.client.get('/api/v1/session')).body.breakGlass.active);

  // The review list: auditors only; the reason is kept; marking it reviewed is audited.
  t.is((await viewer.client.get('/api/v1/break-glass')).status, 403);
  const pending = await auditor.client.get('/api/v1/break-glass?pending=1');
  t.is(pending.status, 200);
  t.is(pending.body.records.length, 1);
  const record = pending.body.records[0];
  t.like(record, { username: 'night-tech', role: 'operator', reason, stopReason: 'time limit' });
  const review = await auditor.client.post('/api/v1/break-glass/review', { id: record.id, note: 'checked with the RIS team' });
  t.is(review.status, 200, JSON.stringify(review.body));
  t.is(review.body.record.reviewedBy, 'auditor');
  t.is((await auditor.client.get('/api/v1/break-glass?pending=1')).body.records.length, 0);
  t.is((await auditor.client.get('/api/v1/break-glass')).body.records.length, 1, 'kept after review');
  t.truthy(
    await poll(async () => ((await collected(rsyslog.outFile)).includes('access.break-glass-reviewed') ? true : undefined), 10_000, 100),
    'the review reached rsyslogd',
  );
});
