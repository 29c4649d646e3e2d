import test from 'ava';
import { silentLogger } from './log.ts';
import { type Service, ServiceSet } from './service.ts';

/** A service that writes what happens to it into `trail`. */
function recorded(
  name: string,
  trail: string[],
  o: { failStart?: boolean; failStop?: boolean; stopMs?: number } = {},
): Service & { deadlines: number[] } {
  const deadlines: number[] = [];
  return {
    name,
    deadlines,
    async start() {
      trail.push(`start ${name}`);
      if (o.failStart === true) throw new Error(`${name} cannot bind`);
    },
    async stop(deadlineMs) {
      deadlines.push(deadlineMs);
      trail.push(`stop ${name}`);
      if (o.stopMs !== undefined) await new Promise((resolve) => setTimeout(resolve, o.stopMs));
      if (o.failStop === true) throw new Error(`${name} stop failed`);
    },
    health: () => ({ status: 'ok' }),
  };
}

test('services start in the declared order and stop in the reverse order, once', async (t) => {
  const trail: string[] = [];
  const set = new ServiceSet(
    ['store', 'audit', 'listener'].map((n) => recorded(n, trail)),
    silentLogger,
  );
  await set.start(1000);
  t.deepEqual(
    set.status().map((s) => `${s.name} ${s.state} ${s.status}`),
    ['store running ok', 'audit running ok', 'listener running ok'],
  );
  await Promise.all([set.stop(1000), set.stop(1000)]);
  t.deepEqual(trail, ['start store', 'start audit', 'start listener', 'stop listener', 'stop audit', 'stop store']);
  t.true(set.status().every((s) => s.state === 'stopped' && s.status === 'down'));
});

test('a failed start stops what already started, in reverse, and rethrows its error', async (t) => {
  const trail: string[] = [];
  const never = recorded('control', trail);
  const set = new ServiceSet(
    [recorded('store', trail), recorded('audit', trail), recorded('hl7', trail, { failStart: true }), never],
    silentLogger,
  );
  await t.throwsAsync(set.start(1000), { message: 'hl7 cannot bind' });
  t.deepEqual(trail, ['start store', 'start audit', 'start hl7', 'stop audit', 'stop store']);
  t.deepEqual(never.deadlines, [], 'a service after the failed one is neither started nor stopped');
});

test('the stop deadline is shared: each service gets what the ones stopped before it left', async (t) => {
  const trail: string[] = [];
  const first = recorded('store', trail);
  const slow = recorded('listener', trail, { stopMs: 300 });
  const set = new ServiceSet([first, slow], silentLogger);
  await set.start(1000);
  await set.stop(1000);
  t.is(slow.deadlines[0], 1000);
  t.true(first.deadlines[0]! <= 1000 - 250, `the store got ${first.deadlines[0]} ms after a 300 ms drain`);
});

test('a service that fails to stop does not keep the others from stopping; its error comes last', async (t) => {
  const trail: string[] = [];
  const set = new ServiceSet([recorded('store', trail), recorded('listener', trail, { failStop: true })], silentLogger);
  await set.start(1000);
  await t.throwsAsync(set.stop(1000), { message: 'listener stop failed' });
  t.deepEqual(trail.slice(2), ['stop listener', 'stop store']);
});

test('two services of one name are a programming error', (t) => {
  t.throws(() => new ServiceSet([recorded('a', []), recorded('a', [])], silentLogger), { instanceOf: TypeError });
});
