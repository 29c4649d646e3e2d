// Regression: a SIGHUP that arrived while the box was starting, or just after `edged.ready`, killed it
// (Node's default action for a signal without a listener). Signals during start are held and handled once
// the box is up: the SIGHUPs below are sent at the first line the box logs once it is starting and at
// `edged.ready`; it must come up, reload once per SIGHUP, keep serving, and stop cleanly.
import test from 'ava';
import { Daemon, createSite } from '../support/site.ts';
import { servingProblem } from '../support/still-serving.ts';
import { eventually } from '../support/wait.ts';

test('SIGHUPs during start and at edged.ready are held, then each reloads; the box keeps serving', async (t) => {
  const site = await createSite();
  t.teardown(() => site.cleanup());
  const sent: string[] = [];
  const daemon = await Daemon.start(site.configFile, {
    onSpawn: (p) => {
      const hangupAt = (what: string, line: (l: string) => boolean): void => {
        p.waitForLine(line, 30_000).then(
          (l) => {
            sent.push(`${what}: ${String((JSON.parse(l) as { event?: unknown }).event)}`);
            p.child.kill('SIGHUP');
          },
          () => undefined, // the start itself failing is reported by Daemon.start
        );
      };
      // config.* lines come before the box starts (and before signals are held): the next line is the first of the start.
      hangupAt('first start line', (l) => !l.includes('"event":"config.'));
      hangupAt('ready', (l) => l.includes('"event":"edged.ready"'));
    },
  });
  t.teardown(() => daemon.kill9());
  t.log(`SIGHUP sent at ${sent.join(', ')}`);
  t.is(sent.length, 2, 'both SIGHUPs were sent before ready was seen');
  // Each held SIGHUP is handled once the box is up: one reload each, and nothing else happens.
  await eventually(() => daemon.process.events('config.reloaded').length >= 2 || daemon.process.exited, 15_000, 'two reloads');
  t.is(daemon.process.events('config.reloaded').length, 2);
  t.is(daemon.process.events('edged.signal').filter((e) => e['signal'] === 'SIGHUP').length, 2);
  t.false(daemon.process.exited, 'the daemon is still running');
  t.is(await servingProblem(site, daemon, 15_000), undefined);
  t.is(await daemon.stop(), 0);
});
