// The attacker of the flood benchmark, in its own process so its CPU does not sit in the legitimate
// clients' event loop: on each target port, --count unauthenticated connections spread evenly over
// --duration-ms, from the loopback sources 127.0.0.2-.9 (bench/flood-plan.ts says which kind from which
// source). Bounded three ways: the count, a per-connection deadline, and a hard stop after the duration
// that destroys whatever is still open. Loopback only: any other host or source is refused.
//
// Usage: node bench/flood-gen.ts --host 127.0.0.1 --target NAME:tls|plain:PORT ... --count 5000
//          --duration-ms 10000 --ca CA.pem --rogue-cert C.pem --rogue-key K.pem [--hold-ms 3000] [--out FILE]
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { parseArgs } from 'node:util';
import { dueCount, floodAttempt, FloodKind, isLoopbackV4, type Transport } from './flood-plan.ts';

/** A connection attempt that has not ended by then is destroyed and counted as timed out. */
const ATTEMPT_TIMEOUT_MS = 5_000;
/** After a TLS handshake the client side considers done, how long to wait for the box's verdict. */
const VERDICT_MS = 1_000;
const TICK_MS = 5;
/** Past the duration, stragglers get this long before everything is destroyed. */
const HARD_STOP_AFTER_MS = ATTEMPT_TIMEOUT_MS + 2_000;

type Outcome = 'closed-by-us' | 'closed-by-box' | 'refused' | 'reset' | 'tls-refused' | 'timed-out' | 'error';

interface Target {
  readonly name: string;
  readonly transport: Transport;
  readonly port: number;
}

interface Tally {
  launched: number;
  byKind: Record<string, Record<string, number>>;
}

function parseTarget(spec: string): Target {
  const [name, transport, port] = spec.split(':');
  if (name === undefined || (transport !== 'tls' && transport !== 'plain') || !Number.isInteger(Number(port))) {
    throw new Error(`--target NAME:tls|plain:PORT, not ${spec}`);
  }
  return { name, transport, port: Number(port) };
}

function main(): void {
  const { values } = parseArgs({
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      target: { type: 'string', multiple: true },
      count: { type: 'string', default: '5000' },
      'duration-ms': { type: 'string', default: '10000' },
      'hold-ms': { type: 'string', default: '3000' },
      ca: { type: 'string' },
      'rogue-cert': { type: 'string' },
      'rogue-key': { type: 'string' },
      servername: { type: 'string', default: 'localhost' },
      out: { type: 'string' },
    },
  });
  const host = values.host;
  if (!isLoopbackV4(host)) throw new Error(`refusing to flood ${host}: loopback only`);
  if (values.ca === undefined || values['rogue-cert'] === undefined || values['rogue-key'] === undefined) {
    throw new Error('flood-gen needs --ca, --rogue-cert and --rogue-key');
  }
  const targets = (values.target ?? []).map(parseTarget);
  if (targets.length === 0) throw new Error('flood-gen needs at least one --target');
  const count = Number(values.count);
  const durationMs = Number(values['duration-ms']);
  const holdMs = Math.min(Number(values['hold-ms']), ATTEMPT_TIMEOUT_MS - 500);
  if (!(count > 0 && count <= 20_000) || !(durationMs >= 1000 && durationMs <= 60_000))
    throw new Error('--count 1..20000, --duration-ms 1000..60000');
  const ca = readFileSync(values.ca);
  const rogue = { cert: readFileSync(values['rogue-cert']), key: readFileSync(values['rogue-key']) };

  const open = new Set<net.Socket>();
  const tallies = new Map<string, Tally>(targets.map((t) => [t.name, { launched: 0, byKind: {} }]));
  let settled = 0;
  let launchedTotal = 0;
  const record = (target: Target, kind: string, outcome: Outcome): void => {
    const byKind = (tallies.get(target.name) as Tally).byKind;
    const k = (byKind[kind] ??= {});
    k[outcome] = (k[outcome] ?? 0) + 1;
    settled++;
  };

  const attempt = (target: Target, i: number): void => {
    const { kind, source } = floodAttempt(i, target.transport);
    if (!isLoopbackV4(source)) throw new Error(`refusing source ${source}: loopback only`);
    const useTls = kind === FloodKind.TlsNoCert || kind === FloodKind.TlsRogueCert;
    const base = { host, port: target.port, localAddress: source };
    const socket: net.Socket = useTls
      ? tls.connect({
          ...base,
          ca,
          servername: values.servername,
          rejectUnauthorized: false,
          ...(kind === FloodKind.TlsRogueCert ? rogue : {}),
        })
      : net.connect(base);
    open.add(socket);
    let done = false;
    let weClosed = false;
    const timers: NodeJS.Timeout[] = [];
    const finish = (outcome: Outcome): void => {
      if (done) return;
      done = true;
      for (const t of timers) clearTimeout(t);
      open.delete(socket);
      socket.destroy();
      record(target, kind, outcome);
    };
    timers.push(setTimeout(() => finish('timed-out'), ATTEMPT_TIMEOUT_MS));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') finish('refused');
      else if (err.code === 'ECONNRESET' || err.code === 'EPIPE') finish(useTls ? 'tls-refused' : 'reset');
      else finish(useTls ? 'tls-refused' : 'error');
    });
    socket.on('close', () => finish(weClosed ? 'closed-by-us' : 'closed-by-box'));
    // The box's verdict on a TLS client arrives after the client's side of the handshake is done.
    socket.on('data', () => undefined);
    if (kind === FloodKind.ConnectClose) {
      socket.once('connect', () => {
        weClosed = true;
        socket.destroy();
      });
    } else if (kind === FloodKind.Silent) {
      socket.once('connect', () =>
        timers.push(
          setTimeout(() => {
            weClosed = true;
            socket.destroy();
          }, holdMs),
        ),
      );
    } else {
      socket.once('secureConnect', () =>
        timers.push(
          setTimeout(() => {
            weClosed = true;
            socket.destroy();
          }, VERDICT_MS),
        ),
      );
    }
  };

  const started = performance.now();
  let last = started;
  const tick = setInterval(() => {
    const now = performance.now();
    last = now;
    const elapsed = now - started;
    for (const target of targets) {
      const tally = tallies.get(target.name) as Tally;
      const due = dueCount(elapsed, count, durationMs);
      while (tally.launched < due) {
        attempt(target, tally.launched++);
        launchedTotal++;
      }
    }
    if (elapsed >= durationMs) clearInterval(tick);
  }, TICK_MS);

  let finished = false;
  const report = (): void => {
    if (finished) return;
    finished = true;
    clearInterval(tick);
    clearInterval(poll);
    clearTimeout(hardStop);
    const stillOpen = open.size;
    for (const s of open) s.destroy();
    const result = {
      targets: Object.fromEntries(targets.map((t) => [t.name, { port: t.port, transport: t.transport, ...tallies.get(t.name) }])),
      launched: launchedTotal,
      settled,
      destroyedAtHardStop: stillOpen,
      launchSpanMs: Math.round(last - started),
      elapsedMs: Math.round(performance.now() - started),
    };
    const text = JSON.stringify(result);
    if (values.out !== undefined) writeFileSync(values.out, `${text}\n`);
    process.stdout.write(`${text}\n`);
  };
  const poll = setInterval(() => {
    if (launchedTotal === targets.length * count && settled === launchedTotal) report();
  }, 50);
  const hardStop = setTimeout(report, durationMs + HARD_STOP_AFTER_MS);
}

main();
