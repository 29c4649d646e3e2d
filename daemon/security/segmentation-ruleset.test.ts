import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fiftyModalitySite, smallSite } from '../../test/support/segmentation-sites.ts';
import { REPO_ROOT } from '../../test/support/paths.ts';
import { buildSegmentationPlan } from './segmentation-plan.ts';
import type { SegmentationInput, SegmentationPlan } from './segmentation-plan.ts';
import { renderLoadScript } from './segmentation-ruleset.ts';
import { describePlan } from './segmentation-summary.ts';
import { compareTables, ruleCounters } from './segmentation-drift.ts';

const fixtures = join(REPO_ROOT, 'test/fixtures/segmentation');

function planOf(input: SegmentationInput): SegmentationPlan {
  const r = buildSegmentationPlan(input);
  if (!r.ok) throw new Error(r.problems.map((p) => `${p.field}: ${p.message}`).join('; '));
  return r.plan;
}

/** UPDATE_GOLDEN=1 rewrites the files; review the diff before committing it. */
async function golden(t: import('ava').ExecutionContext, name: string, actual: string): Promise<void> {
  const file = join(fixtures, name);
  if (process.env['UPDATE_GOLDEN'] === '1') await writeFile(file, actual);
  t.is(actual, await readFile(file, 'utf8'), `${name} differs from the golden file`);
}

test('small site renders the golden ruleset and plan table', async (t) => {
  const plan = planOf(smallSite());
  await golden(t, 'small-site.nft', renderLoadScript(plan));
  await golden(t, 'small-site.plan.txt', describePlan(plan));
});

test('50-modality site renders the golden ruleset and plan table', async (t) => {
  const plan = planOf(fiftyModalitySite());
  await golden(t, 'fifty-modality-site.nft', renderLoadScript(plan));
  await golden(t, 'fifty-modality-site.plan.txt', describePlan(plan));
  // Two modalities share 10.30.9.0/24: nft refuses overlapping interval elements, so it appears once.
  t.is(renderLoadScript(plan).match(/10\.30\.9\.0\/24/g)?.length, 1);
});

test('default deny: policies drop, forwarding refused, no port without its peers', (t) => {
  const script = renderLoadScript(planOf(smallSite()));
  t.is(script.match(/policy drop;/g)?.length, 3);
  t.regex(script, /chain forward \{\n\t\ttype filter hook forward priority filter; policy drop;\n\t\tcounter goto refuse_forward/);
  t.regex(script, /tcp dport 104 ip saddr @in_dicom_plain_v4 ct state new counter accept/);
  t.notRegex(script, /tcp dport 104 ct state new counter accept/, 'the plain port is never open to any source');
  t.regex(script, /limit rate 10\/minute log prefix "imaging-edge drop input: "/);
});

test('a malformed peer address is an error naming the config field, and nothing is planned', (t) => {
  const input = fiftyModalitySite();
  const modalities = input.dicom.modalities.map((m, i) => (i === 7 ? { ...m, addresses: ['10.30.1.300'] } : m));
  const hl7 = { ...input.hl7, peers: [{ name: 'ris', addresses: ['10.30.20.0/33'] }] };
  const r = buildSegmentationPlan({ ...input, hl7, dicom: { ...input.dicom, modalities } });
  t.false(r.ok);
  if (r.ok) return;
  t.deepEqual(
    r.problems.map((p) => p.field),
    ['hl7.peers[0].addresses[0]', 'dicom.modalities[7].addresses[0]'],
  );
  t.regex(r.problems[1]?.message ?? '', /10\.30\.1\.300/);
});

test('an upstream host name without addresses, and a listener on port 0, are errors', (t) => {
  const input = smallSite();
  const r = buildSegmentationPlan({
    ...input,
    hl7: { ...input.hl7, listen: { host: '0.0.0.0', port: 0 } },
    upstream: { ...input.upstream, ris: { host: 'ris.example', port: 2576 } },
  });
  t.false(r.ok);
  if (!r.ok)
    t.deepEqual(
      r.problems.map((p) => p.field),
      ['hl7.listen.port', 'upstream.ris.host'],
    );
});

test('a peer without addresses opens its listener to any source, with a warning', (t) => {
  const input = smallSite();
  const plan = planOf({ ...input, hl7: { ...input.hl7, peers: [{ name: 'ris' }] } });
  t.is(plan.ingress.find((r) => r.id === 'hl7')?.sources, 'any');
  t.regex(plan.warnings.join('\n'), /open to any source: ris has no addresses/);
});

test('drift: counters and wrapped set elements are not drift, a changed or missing rule is', (t) => {
  const script = renderLoadScript(planOf(fiftyModalitySite()));
  const table = script.slice(script.indexOf('table inet imaging_edge {'));
  // nft wraps long element lists after a comma.
  const listed = table
    .replace('counter accept comment "established"', 'counter packets 12 bytes 960 accept comment "established"')
    .replaceAll(', 10.30.1.', ',\n\t\t\t     10.30.1.');
  t.not(listed, table);
  t.false(compareTables(table, listed).drift);
  const edited = table.replace('ip saddr @in_hl7_v4 ', '');
  const d = compareTables(table, edited);
  t.true(d.drift);
  t.is(d.missing.length, 1);
  t.regex(d.unexpected[0] ?? '', /^iifname "ens4" tcp dport 2575 ct state new counter accept comment "hl7"$/);
  t.true(compareTables(table, undefined).absent);
});

test('counters are read per commented rule from nft JSON', (t) => {
  const json = JSON.stringify({
    nftables: [
      { metainfo: { json_schema_version: 1 } },
      {
        rule: {
          chain: 'input',
          comment: 'hl7: source not allowed',
          expr: [{ match: {} }, { counter: { packets: 3, bytes: 180 } }, { goto: { target: 'refuse_input' } }],
        },
      },
      { rule: { chain: 'refuse_input', expr: [{ drop: null }] } },
    ],
  });
  t.deepEqual(ruleCounters(json), [{ chain: 'input', comment: 'hl7: source not allowed', packets: 3, bytes: 180 }]);
});
