// The watchdog's ping is earned: real systemd-notify children send to a real notify socket only while the
// health check answers healthy in time; a check that hangs (a stuck store) or reports a reason stops them.
import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../core/log.ts';
import { startNotifySocket, watchdogPings } from '../../test/support/notify-socket.ts';
import { SystemdWatchdog, watchdogIntervalMs } from './systemd-watchdog.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('watchdogIntervalMs: half of WATCHDOG_USEC, only with a notify socket and for this process', (t) => {
  t.is(watchdogIntervalMs({ NOTIFY_SOCKET: '/run/x', WATCHDOG_USEC: '30000000' }, 42), 15_000);
  t.is(watchdogIntervalMs({ NOTIFY_SOCKET: '/run/x', WATCHDOG_USEC: '30000000', WATCHDOG_PID: '42' }, 42), 15_000);
  t.is(watchdogIntervalMs({ NOTIFY_SOCKET: '/run/x', WATCHDOG_USEC: '30000000', WATCHDOG_PID: '7' }, 42), undefined);
  t.is(watchdogIntervalMs({ WATCHDOG_USEC: '30000000' }, 42), undefined);
  t.is(watchdogIntervalMs({ NOTIFY_SOCKET: '/run/x', WATCHDOG_USEC: 'x' }, 42), undefined);
});

test('pings while the check is healthy, none while it hangs or names a reason, again once it is healthy', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'edge-watchdog-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const sock = join(dir, 'notify.sock');
  const receiver = await startNotifySocket(sock);
  t.teardown(async () => {
    await receiver.stop('SIGTERM');
  });
  process.env['NOTIFY_SOCKET'] = sock;
  let mode: 'healthy' | 'hang' | 'reason' = 'healthy';
  const watchdog = new SystemdWatchdog({
    intervalMs: 200,
    logger: silentLogger,
    check: () =>
      mode === 'healthy'
        ? Promise.resolve(undefined)
        : mode === 'hang'
          ? new Promise<undefined>(() => undefined)
          : Promise.resolve('a synced write has been running for 61000 ms'),
  });
  watchdog.start();
  t.teardown(() => watchdog.stop());
  const inWindow = async (m: typeof mode, ms: number): Promise<number> => {
    mode = m;
    // Let a ping already on its way (its child was started before the switch) arrive first.
    await sleep(300);
    const from = Date.now();
    await sleep(ms);
    return watchdogPings(receiver).filter((at) => at >= from && at < Date.now()).length;
  };
  t.true((await inWindow('healthy', 1500)) >= 3);
  t.is(await inWindow('hang', 1500), 0);
  t.is(await inWindow('reason', 1500), 0);
  t.true((await inWindow('healthy', 1500)) >= 3);
});
