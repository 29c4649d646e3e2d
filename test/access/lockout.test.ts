// Brute force against the live daemon: 100 wrong passwords for one account meet a back-off that grows,
// then a lock that only an admin or the console lifts; an unknown user name is answered the same, in
// the same time, as a known one with a wrong password (no user enumeration).
import test from 'ava';
import { AdminClient } from '../support/admin-client.ts';
import { addUser, edgectlUser, firstSignIn } from '../support/access.ts';
import { Daemon, createSite } from '../support/site.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

test('100 wrong passwords: back-off, then lockout, unlocked from the console; unknown and known users look alike', async (t) => {
  t.timeout(180_000);
  const site = await createSite((c) => {
    c['admin'].lockout = {
      backoffAfterFailures: 5,
      initialBackoffMs: 100,
      maxBackoffMs: 400,
      lockAfterFailures: 12,
      addressBackoffAfterFailures: 1000,
    };
  });
  const daemon = await Daemon.start(site.configFile);
  t.teardown(async () => {
    await daemon.stop();
    await site.cleanup();
  });
  const client = await AdminClient.connect(daemon.ports.admin, site.pki.caCert);
  const otp = await addUser(site.configFile, 'target', 'operator');
  const target = await firstSignIn(await AdminClient.connect(daemon.ports.admin, site.pki.caCert), 'target', otp);
  for (let i = 0; i < 3; i++) await addUser(site.configFile, `known${i}`, 'viewer');

  // Timing: 4 wrong passwords for each of 3 known users (below the back-off) vs 12 unknown names.
  const time = async (username: string) => {
    const startedAt = process.hrtime.bigint();
    const r = await client.signIn(username, 'wrong-password-123');
    const ms = Number(process.hrtime.bigint() - startedAt) / 1e6;
    t.is(r.status, 401);
    t.is(r.body.error.code, 'EDGE_ACCESS_SIGN_IN_FAILED', 'one answer for all');
    return { ms, message: r.body.error.message as string };
  };
  const known: number[] = [];
  const unknown: number[] = [];
  const messages = new Set<string>();
  for (let round = 0; round < 4; round++) {
    for (let i = 0; i < 3; i++) {
      const k = await time(`known${i}`);
      const u = await time(`nobody${round}x${i}`);
      known.push(k.ms);
      unknown.push(u.ms);
      messages.add(k.message).add(u.message);
    }
  }
  t.is(messages.size, 1, 'the same message for a known and an unknown user');
  const ratio = median(known) / median(unknown);
  t.log(
    `wrong-password sign-in median: known ${median(known).toFixed(1)} ms, unknown ${median(unknown).toFixed(1)} ms (×${ratio.toFixed(2)})`,
  );
  t.true(ratio > 0.6 && ratio < 1.6, `medians within noise: ×${ratio.toFixed(2)}`);

  // Brute force: 100 attempts, an attacker retrying every 150 ms while refused.
  let refused = 0;
  let throttled = 0;
  const retryAfter: number[] = [];
  for (let i = 0; i < 100; i++) {
    const r = await client.signIn('target', `guess-number-${i}-xyz`);
    if (r.status === 429) {
      throttled++;
      t.is(r.body.error.code, 'EDGE_ACCESS_THROTTLED');
      const s = Number(r.headers['retry-after']);
      retryAfter.push(s);
      await sleep(150);
    } else {
      t.is(r.status, 401);
      refused++;
    }
  }
  t.log(`100 attempts: ${refused} checked and refused, ${throttled} throttled (Retry-After ${[...new Set(retryAfter)].join(', ')} s)`);
  t.true(throttled > 50, 'most attempts never reached a password check');
  t.true(refused >= 12, `${refused} checked (the lock comes at 12)`);
  t.true(daemon.process.events('access.locked-out').length >= 2, 'back-off and lock are logged');

  // Locked: the right password is refused too, with the same answer, until the console unlocks it.
  await sleep(500);
  const locked = await client.signIn('target', target.password);
  t.is(locked.status, 401);
  t.is(locked.body.error.code, 'EDGE_ACCESS_SIGN_IN_FAILED');
  const list = await edgectlUser(site.configFile, 'list', '--json');
  t.is(
    (JSON.parse(list.stdout) as { users: { username: string; state: string }[] }).users.find((u) => u.username === 'target')?.state,
    'locked',
  );
  t.is(target.client.cookie === undefined ? 0 : (await target.client.get('/api/v1/status')).status, 401, 'a lock ends the sessions');
  const unlock = await edgectlUser(site.configFile, 'unlock', 'target');
  t.is(unlock.code, 0, unlock.stderr);
  const after = await client.signIn('target', target.password);
  t.is(after.status, 200, JSON.stringify(after.body));
  t.is(after.body.stage, 'mfa');
});
