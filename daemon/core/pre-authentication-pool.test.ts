import test from 'ava';
import { PoolExpulsion, PreAuthenticationPool, type PoolTimers } from './pre-authentication-pool.ts';

class FakeSocket {
  destroyed = false;
  readonly name: string;
  constructor(name: string) {
    this.name = name;
  }
  destroy(): void {
    this.destroyed = true;
  }
}

/** Timers the test fires by hand. */
function manualTimers(): PoolTimers & { fire(): void; pending(): number } {
  const due = new Map<number, () => void>();
  let next = 0;
  return {
    setTimeout: (fn) => {
      due.set(++next, fn);
      return next;
    },
    clearTimeout: (h) => {
      due.delete(h as number);
    },
    fire: () => {
      const fns = [...due.values()];
      due.clear();
      for (const f of fns) f();
    },
    pending: () => due.size,
  };
}

function pool(limits = { timeoutMs: 1000, maxConnections: 4, maxConnectionsPerAddress: 2 }) {
  const timers = manualTimers();
  const expelled: Array<[string, string]> = [];
  const p = new PreAuthenticationPool<FakeSocket>(
    limits,
    (s, _address, why) => {
      s.destroy();
      expelled.push([s.name, why]);
    },
    timers,
  );
  const admit = (name: string, address: string): FakeSocket => {
    const s = new FakeSocket(name);
    p.admit(name, s, address);
    return s;
  };
  return { p, timers, expelled, admit };
}

test('a full address yields its oldest connection to the newcomer, other addresses untouched', (t) => {
  const { p, expelled, admit } = pool();
  admit('a1', '10.0.0.1');
  admit('b1', '10.0.0.2');
  admit('a2', '10.0.0.1');
  admit('a3', '10.0.0.1');
  t.deepEqual(expelled, [['a1', PoolExpulsion.OldestOfAddress]]);
  t.is(p.size, 3);
  t.true(p.has('a3') && p.has('b1') && !p.has('a1'));
});

test('a full pool yields its oldest connection whatever its address', (t) => {
  const { p, expelled, admit } = pool();
  for (const [n, a] of [
    ['a1', '1'],
    ['b1', '2'],
    ['c1', '3'],
    ['d1', '4'],
    ['e1', '5'],
  ] as const)
    admit(n, a);
  t.deepEqual(expelled, [['a1', PoolExpulsion.Oldest]]);
  t.is(p.size, 4);
});

test('the deadline closes what has not left; leaving clears its timer and its count', (t) => {
  const { p, timers, expelled, admit } = pool();
  admit('a1', '10.0.0.1');
  admit('a2', '10.0.0.1');
  t.true(p.leave('a1'), 'authenticated');
  t.false(p.leave('a1'), 'only once');
  t.is(timers.pending(), 1);
  admit('a3', '10.0.0.1');
  t.deepEqual(expelled, [], 'a1 no longer counts against its address');
  timers.fire();
  t.deepEqual(expelled, [
    ['a2', PoolExpulsion.Deadline],
    ['a3', PoolExpulsion.Deadline],
  ]);
  t.is(p.size, 0);
});

test('limits must be positive integers', (t) => {
  t.throws(() => new PreAuthenticationPool({ timeoutMs: 0, maxConnections: 1, maxConnectionsPerAddress: 1 }, () => {}), {
    instanceOf: TypeError,
  });
});
