// `edgectl segmentation plan` needs no privilege: run it as an operator would, on a development site.
import test from 'ava';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../test/support/processes.ts';
import { createSite, repoRoot } from '../test/support/site.ts';

const edgectl = join(repoRoot, 'bin/edgectl');

test('plan prints who may reach what and the ruleset; a plan problem names the field and renders nothing', async (t) => {
  const site = await createSite((c) => {
    c['hl7'].listen.port = 2575;
    c['dicom'].tls.port = 2762;
    c['dicom'].plain.port = 11112;
    c['admin'].listen.port = 8443;
    c['upstream'] = { pacs: { host: 'pacs.hospital.example', port: 11112, aeTitle: 'PACS' } };
    c['network'] = { hostAddresses: [{ host: 'pacs.hospital.example', addresses: ['10.1.4.20'] }] };
  });
  t.teardown(() => site.cleanup());
  const plan = await run(edgectl, ['segmentation', 'plan', '--config', site.configFile]);
  t.is(plan.code, 0, plan.stderr);
  t.regex(plan.stdout, /DICOM plain \(legacy modalities\)\s+tcp\/11112\s+any\s+127\.0\.0\.1/);
  t.regex(plan.stdout, /admin listener \(hospital IT, the admin page\)\s+tcp\/8443\s+any/);
  t.regex(plan.stdout, /PACS C-STORE\s+tcp\/11112\s+10\.1\.4\.20\s+upstream\.pacs\.host/);
  t.regex(plan.stdout, /\ntable inet imaging_edge \{\n/);

  const config = JSON.parse(await readFile(site.configFile, 'utf8')) as Record<string, any>;
  delete config['network'];
  await writeFile(site.configFile, JSON.stringify(config));
  const refused = await run(edgectl, ['segmentation', 'plan', '--config', site.configFile]);
  t.is(refused.code, 1);
  t.regex(refused.stderr, /EDGE_FIREWALL_PLAN_INVALID: nothing rendered, nothing loaded/);
  t.regex(refused.stderr, /error upstream\.pacs\.host: "pacs\.hospital\.example" is a host name/);
  t.notRegex(refused.stdout, /table inet imaging_edge/);
});

test('a peer edged has quarantined leaves the ruleset', async (t) => {
  const site = await createSite((c) => {
    c['hl7'].listen.port = 2575;
    c['dicom'].tls.port = 2762;
    c['dicom'].plain.port = 11112;
    c['dicom'].modalities[1].addresses = ['10.3.0.7/32'];
    delete c['admin'];
  });
  t.teardown(() => site.cleanup());
  const before = await run(edgectl, ['segmentation', 'plan', '--config', site.configFile]);
  t.is(before.code, 0, before.stderr);
  t.regex(before.stdout, /10\.3\.0\.7/);
  await mkdir(join(site.dir, 'data'), { recursive: true });
  await writeFile(join(site.dir, 'data', 'quarantine.json'), JSON.stringify({ peers: [{ kind: 'modality', name: 'MR01' }] }));
  const after = await run(edgectl, ['segmentation', 'plan', '--config', site.configFile]);
  t.is(after.code, 0, after.stderr);
  t.notRegex(after.stdout, /10\.3\.0\.7/);
  t.regex(after.stderr, /1 quarantined peer\(s\) left out of the firewall/);
});

test('usage errors exit 2', async (t) => {
  t.is((await run(edgectl, ['segmentation', 'plan'])).code, 2);
  t.is((await run(edgectl, ['segmentation', 'open', '--config', 'x'])).code, 2);
});
