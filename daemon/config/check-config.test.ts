import test from 'ava';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkConfig } from './check-config.ts';
import type { ConfigIssue } from './schema-kit.ts';
import { tlsFiles } from '../../test/support/test-pki.ts';

/** A folder with the files a minimal config references (contents do not matter to the check). */
function siteDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'edge-config-'));
  mkdirSync(join(dir, 'pki'));
  mkdirSync(join(dir, 'keys'), { mode: 0o700 });
  const tls = tlsFiles();
  for (const f of ['pki/ca.crt', 'pki/server.crt']) writeFileSync(join(dir, f), tls.certificate);
  writeFileSync(join(dir, 'pki/server.key'), tls.key, { mode: 0o600 });
  writeFileSync(join(dir, 'keys/data.key'), Buffer.alloc(32), { mode: 0o600 });
  return dir;
}

function minimal(): Record<string, unknown> {
  return {
    site: { name: 'GENHOSP-RAD1' },
    keys: { backend: 'file', file: { path: './keys/data.key' } },
    tls: { caFile: './pki/ca.crt', certFile: 'pki/server.crt', keyFile: './pki/server.key' },
  };
}

const at = (issues: readonly ConfigIssue[], path: string) => issues.filter((i) => i.path === path);
const errors = (issues: readonly ConfigIssue[]) => issues.filter((i) => i.severity === 'error');

test('a minimal config gets every default, and only the development warnings', (t) => {
  const dir = siteDir();
  const { config, issues } = checkConfig(minimal(), { baseDir: dir });
  t.truthy(config);
  t.deepEqual(errors(issues), []);
  t.deepEqual(
    issues.map((i) => `${i.path}:${i.code}`),
    ['keys.backend:development-only', 'hl7.peers:no-peers', 'dicom:inconsistent'],
  );
  if (config === undefined) return;
  t.deepEqual(config.hl7.listen, { host: '127.0.0.1', port: 2575, allowAllInterfaces: false });
  t.is(config.hl7.maxFrameBytes, 1_048_576);
  t.is(config.hl7.replayWindowHours, 168);
  t.is(config.dicom.aeTitle, 'EDGE');
  t.is(config.dicom.maxPduLength, 65_536);
  t.deepEqual(config.dicom.transferSyntaxes, ['1.2.840.10008.1.2.1', '1.2.840.10008.1.2']);
  t.deepEqual(config.dicom.worklist, {
    enabled: true,
    maxResults: 1000,
    stationRules: [],
    defaultStation: { aeTitle: 'UNKNOWN', name: '' },
  });
  t.is(config.dicom.tls, undefined);
  t.deepEqual(config.dicom.modalities, []);
  t.deepEqual(config.upstream, {});
  t.is(config.log.level, 'info');
  t.is(config.tls.minVersion, 'TLSv1.2');
  t.is(config.shutdown.drainTimeoutMs, 10_000);
});

test('dataDir and the spool folder must be folders the daemon can create or use: a file there is reported, not found at start', (t) => {
  const dir = siteDir();
  writeFileSync(join(dir, 'occupied'), 'not a folder');
  const errorsAt = (raw: Record<string, unknown>) =>
    checkConfig(raw, { baseDir: dir })
      .issues.filter((i) => i.severity === 'error')
      .map((i) => `${i.path} ${i.code}`);
  t.deepEqual(errorsAt({ ...minimal(), dataDir: 'occupied' }), ['dataDir file-not-found']);
  t.deepEqual(errorsAt({ ...minimal(), dataDir: 'occupied/db' }), ['dataDir file-not-found']);
  t.deepEqual(errorsAt({ ...minimal(), dicom: { storage: { spool: { directory: 'occupied/spool' } } } }), [
    'dicom.storage.spool.directory file-not-found',
  ]);
  t.regex(
    checkConfig({ ...minimal(), dataDir: 'occupied/db' }, { baseDir: dir }).issues.find((i) => i.path === 'dataDir')?.message ?? '',
    /occupied is not a folder, so .*occupied\/db cannot be created/,
  );
  // Missing is fine (the daemon creates it), and without file checks nothing is looked at.
  t.deepEqual(errorsAt({ ...minimal(), dataDir: 'new/deeper/db' }), []);
  t.truthy(checkConfig({ ...minimal(), dataDir: 'occupied' }, { baseDir: dir, checkFiles: false }).config);
});

test('relative paths are resolved against the base folder, absolute ones kept', (t) => {
  const dir = siteDir();
  const raw: Record<string, unknown> = { ...minimal(), dataDir: 'var/db' };
  (raw.tls as Record<string, unknown>).caFile = join(dir, 'pki/ca.crt');
  const { config } = checkConfig(raw, { baseDir: dir });
  t.is(config?.dataDir, join(dir, 'var/db'));
  t.is(config?.tls.caFile, join(dir, 'pki/ca.crt'));
  t.is(config?.tls.certFile, join(dir, 'pki/server.crt'));
  t.is(config?.keys.backend === 'file' ? config.keys.file.path : '', join(dir, 'keys/data.key'));
  // The default dataDir is relative too.
  t.is(checkConfig(minimal(), { baseDir: dir }).config?.dataDir, join(dir, 'data'));
});

test('every issue is collected at once, each with its path', (t) => {
  const dir = siteDir();
  const raw = {
    ...minimal(),
    colour: 'blue',
    log: { level: 'verbose' },
    hl7: {
      listen: { host: 'localhost', port: 70000 },
      maxFrameBytes: '1MB',
      peers: [
        { name: 'ris', certificateCn: 'RIS', sendingApplication: 'RIS', sendingFacility: 'GENHOSP', addresses: ['10.0.0.0/33'] },
        { name: 'ris2', certificateCn: 'RIS2', sendingApplication: 'R|S', sendingFacility: 'GENHOSP', adresses: [] },
      ],
    },
    dicom: {
      aeTitle: 'EDGE',
      tls: { port: 11112 },
      modalities: [
        { name: 'ct1', aeTitle: 'CT01', transport: 'tls', certificateCn: 'CT01.GENHOSP' },
        { name: 'ct2', aeTitle: 'THIS-TITLE-IS-TOO-LONG', transport: 'tls', certificateCn: 'CT02' },
        { name: 'mr1', aeTitle: 'MR01', transport: 'plain' },
        { name: 'us1', aeTitle: 'US01', transport: 'tls', returnKeys: ['PatientName', 'PatientShoeSize'] },
      ],
    },
  };
  const { config, issues } = checkConfig(raw, { baseDir: dir });
  t.is(config, undefined);
  const expected: Array<[string, string]> = [
    ['colour', 'unknown-key'],
    ['log.level', 'invalid-value'],
    ['hl7.listen.host', 'invalid-value'],
    ['hl7.listen.port', 'out-of-range'],
    ['hl7.maxFrameBytes', 'wrong-type'],
    ['hl7.peers[0].addresses[0]', 'invalid-value'],
    ['hl7.peers[1].sendingApplication', 'invalid-value'],
    ['hl7.peers[1].adresses', 'unknown-key'],
    ['dicom.modalities[1].aeTitle', 'out-of-range'],
    ['dicom.modalities[2].addresses', 'required'],
    ['dicom.modalities[3].certificateCn', 'required'],
    ['dicom.modalities[3].returnKeys[1]', 'invalid-value'],
  ];
  for (const [path, code] of expected) {
    t.true(
      at(issues, path).some((i) => i.code === code && i.severity === 'error'),
      `${path} ${code}`,
    );
  }
  t.is(errors(issues).length, expected.length, JSON.stringify(errors(issues), null, 1));
});

test('AE titles: length, backslash, control characters, only spaces', (t) => {
  const dir = siteDir();
  const check = (aeTitle: unknown) => at(checkConfig({ ...minimal(), dicom: { aeTitle } }, { baseDir: dir }).issues, 'dicom.aeTitle');
  t.deepEqual(check('EDGE_1 '), []);
  t.deepEqual(check('A'.repeat(16)), []);
  t.is(check('A'.repeat(17))[0]?.code, 'out-of-range');
  t.is(check('')[0]?.code, 'out-of-range');
  t.is(check('    ')[0]?.code, 'invalid-value');
  t.is(check('A\\B')[0]?.code, 'invalid-value');
  t.is(check('A\tB')[0]?.code, 'invalid-value');
  t.is(check('ÄRZTE')[0]?.code, 'invalid-value');
  t.is(check(42)[0]?.code, 'wrong-type');
});

test('duplicate AE titles, names, CNs and senders are errors at the later item', (t) => {
  const dir = siteDir();
  const peer = { certificateCn: 'RIS', sendingApplication: 'RIS', sendingFacility: 'GENHOSP' };
  const raw = {
    ...minimal(),
    hl7: {
      peers: [
        { name: 'ris', ...peer },
        { name: 'ris', ...peer, certificateCn: 'OTHER' },
      ],
    },
    dicom: {
      aeTitle: 'EDGE',
      tls: { port: 11112 },
      plain: { port: 11112 },
      modalities: [
        { name: 'ct1', aeTitle: 'CT01', transport: 'tls', certificateCn: 'CT01' },
        { name: 'ct2', aeTitle: 'CT01 ', transport: 'tls', certificateCn: 'CT02' },
        { name: 'ct1', aeTitle: 'EDGE', transport: 'tls', certificateCn: 'CT03' },
      ],
    },
  };
  const { config, issues } = checkConfig(raw, { baseDir: dir });
  t.is(config, undefined);
  const dupes = issues
    .filter((i) => i.code === 'duplicate')
    .map((i) => i.path)
    .sort();
  t.deepEqual(dupes, [
    'dicom.modalities[1].aeTitle',
    'dicom.modalities[2].aeTitle',
    'dicom.modalities[2].name',
    'dicom.plain.port',
    'hl7.peers[1].name',
    'hl7.peers[1].sendingFacility',
  ]);
});

test("listeners: a modality needs its transport's listener; hl7 and dicom cannot share a port", (t) => {
  const dir = siteDir();
  const raw = {
    ...minimal(),
    hl7: { listen: { port: 4000 } },
    dicom: {
      plain: { port: 4000, host: '127.0.0.1' },
      modalities: [{ name: 'ct1', aeTitle: 'CT01', transport: 'tls', certificateCn: 'CT01' }],
    },
  };
  const issues = checkConfig(raw, { baseDir: dir }).issues;
  t.is(at(issues, 'dicom.modalities[0].transport')[0]?.code, 'inconsistent');
  // Port 0 (tests) never collides.
  const zero = { ...minimal(), hl7: { listen: { port: 0 } }, dicom: { tls: { port: 0 }, plain: { port: 0 } } };
  t.deepEqual(errors(checkConfig(zero, { baseDir: dir }).issues), []);
  const clash = { ...minimal(), hl7: { listen: { port: 4000 } }, dicom: { tls: { port: 4000, host: '0.0.0.0' } } };
  t.is(at(checkConfig(clash, { baseDir: dir }).issues, 'dicom.tls.port')[0]?.code, 'duplicate');
});

test('addresses: CIDR and single addresses, IPv6, host bits, garbage', (t) => {
  const dir = siteDir();
  const check = (address: string) => {
    const raw = {
      ...minimal(),
      hl7: { peers: [{ name: 'r', certificateCn: 'R', sendingApplication: 'A', sendingFacility: 'F', addresses: [address] }] },
    };
    return at(checkConfig(raw, { baseDir: dir }).issues, 'hl7.peers[0].addresses[0]').map((i) => i.code);
  };
  t.deepEqual(check('127.0.0.1/32'), []);
  t.deepEqual(check('10.20.0.0/16'), []);
  t.deepEqual(check('192.168.1.7'), []);
  t.deepEqual(check('fd00::/8'), []);
  t.deepEqual(check('10.20.0.1/16'), ['invalid-value']);
  t.deepEqual(check('10.0.0.0/33'), ['invalid-value']);
  t.deepEqual(check('10.0.0/8'), ['invalid-value']);
  t.deepEqual(check('ris.example/32'), ['invalid-value']);
});

test('referenced files must exist; private keys readable by others draw a warning', (t) => {
  const dir = siteDir();
  chmodSync(join(dir, 'pki/server.key'), 0o644);
  const raw = minimal();
  (raw.tls as Record<string, unknown>).caFile = './pki/missing.crt';
  (raw.tls as Record<string, unknown>).certFile = './pki';
  const issues = checkConfig(raw, { baseDir: dir }).issues;
  t.is(at(issues, 'tls.caFile')[0]?.code, 'file-not-found');
  t.is(at(issues, 'tls.certFile')[0]?.code, 'file-not-found');
  t.deepEqual(
    at(issues, 'tls.keyFile').map((i) => `${i.severity}:${i.code}`),
    ['warning:file-permissions'],
  );
  // checkFiles: false checks the shape only.
  t.deepEqual(errors(checkConfig(raw, { baseDir: dir, checkFiles: false }).issues), []);
});

test('keys: the backend is a union; tpm needs no warning, unknown backends are refused', (t) => {
  const dir = siteDir();
  const tpm = checkConfig({ ...minimal(), keys: { backend: 'tpm' } }, { baseDir: dir });
  t.deepEqual(tpm.config?.keys, { backend: 'tpm', tpm: { tcti: 'device:/dev/tpmrm0', pcrs: 'sha256:7', commandTimeoutMs: 30000 } });
  t.false(tpm.issues.some((i) => i.code === 'development-only'));
  const hsm = checkConfig({ ...minimal(), keys: { backend: 'hsm' } }, { baseDir: dir });
  t.is(at(hsm.issues, 'keys.backend')[0]?.code, 'invalid-value');
  const mixed = checkConfig({ ...minimal(), keys: { backend: 'tpm', file: { path: 'x' } } }, { baseDir: dir });
  t.is(at(mixed.issues, 'keys.file')[0]?.code, 'unknown-key');
});

test('not an object at all, and keys that look like prototypes', (t) => {
  t.is(checkConfig([], { checkFiles: false }).issues[0]?.code, 'wrong-type');
  t.is(checkConfig(null, { checkFiles: false }).issues[0]?.code, 'wrong-type');
  const raw = JSON.parse('{"__proto__": {"x": 1}, "constructor": 1}') as unknown;
  const paths = checkConfig(raw, { checkFiles: false })
    .issues.filter((i) => i.code === 'unknown-key')
    .map((i) => i.path);
  t.deepEqual(paths.sort(), ['__proto__', 'constructor']);
});

test('upstream: validated now, with TLS on by default and a warning without it', (t) => {
  const dir = siteDir();
  const raw = {
    ...minimal(),
    upstream: {
      ris: { host: '127.0.0.1', port: 2576, receivingApplication: 'RIS', receivingFacility: 'GENHOSP' },
      pacs: { host: 'pacs.genhosp.example', port: 4242, aeTitle: 'ORTHANC', tls: false },
    },
  };
  const { config, issues } = checkConfig(raw, { baseDir: dir });
  t.is(config?.upstream.ris?.tls, true);
  t.is(config?.upstream.ris?.ackTimeoutMs, 30_000);
  t.is(at(issues, 'upstream.pacs.tls')[0]?.code, 'insecure');
  const bad = checkConfig({ ...minimal(), upstream: { pacs: { host: 'bad host', port: 0, aeTitle: 'X' } } }, { baseDir: dir });
  t.deepEqual(
    bad.issues.filter((i) => i.severity === 'error').map((i) => i.path),
    ['upstream.pacs.host', 'upstream.pacs.port'],
  );
});

test('upstream.pacs: a STOW-RS route is reported without its URL and needs no DIMSE address; no protocol means DIMSE', (t) => {
  const dir = siteDir();
  const pacs = (route: Record<string, unknown>) => checkConfig({ ...minimal(), upstream: { pacs: route } }, { baseDir: dir });
  const errors = (r: ReturnType<typeof pacs>) => r.issues.filter((i) => i.severity === 'error').map((i) => `${i.path} ${i.code}`);

  // The daemon used to throw at start on this one; the check passed it.
  const noUrl = pacs({ protocol: 'stow' });
  t.is(noUrl.config, undefined);
  t.deepEqual(errors(noUrl), ['upstream.pacs.stowUrl required']);

  const stow = pacs({ protocol: 'stow', stowUrl: 'https://pacs.genhosp.example/dicom-web/studies' });
  t.deepEqual(errors(stow), []);
  t.deepEqual(
    stow.issues.filter((i) => i.path.startsWith('upstream')),
    [],
  );
  t.is(stow.config?.upstream.pacs?.protocol, 'stow');
  t.false(stow.config?.upstream.pacs !== undefined && 'host' in stow.config.upstream.pacs);

  // Written when a STOW-RS route still needed DIMSE fields: still valid, each dummy named in a warning.
  const legacy = pacs({
    host: '127.0.0.1',
    port: 104,
    aeTitle: 'ORTHANC',
    tls: true,
    protocol: 'stow',
    stowUrl: 'https://pacs.genhosp.example/dicom-web/studies',
  });
  t.truthy(legacy.config);
  t.deepEqual(
    legacy.issues
      .filter((i) => i.path.startsWith('upstream'))
      .map((i) => `${i.severity} ${i.path} ${i.code}`)
      .sort(),
    [
      'warning upstream.pacs.aeTitle ignored-key',
      'warning upstream.pacs.host ignored-key',
      'warning upstream.pacs.port ignored-key',
      'warning upstream.pacs.tls ignored-key',
    ],
  );
  t.deepEqual(
    Object.keys(legacy.config?.upstream.pacs ?? {}).filter((k) => ['host', 'port', 'aeTitle', 'tls'].includes(k)),
    [],
  );

  t.deepEqual(errors(pacs({ protocol: 'stow', stowUrl: 'pacs.genhosp.example/studies' })), ['upstream.pacs.stowUrl invalid-value']);
  t.deepEqual(errors(pacs({ protocol: 'stow', stowUrl: 'ftp://pacs.genhosp.example/studies' })), ['upstream.pacs.stowUrl invalid-value']);
  t.deepEqual(errors(pacs({ protocol: 'stow', stowUrl: 'https://u:p@pacs.genhosp.example/studies' })), [
    'upstream.pacs.stowUrl invalid-value',
  ]);
  t.is(at(pacs({ protocol: 'stow', stowUrl: 'http://pacs.genhosp.example/studies' }).issues, 'upstream.pacs.stowUrl')[0]?.code, 'insecure');
  t.deepEqual(errors(pacs({ protocol: 'dicomweb', stowUrl: 'https://pacs.genhosp.example/studies' })), [
    'upstream.pacs.protocol invalid-value',
  ]);
  // A DIMSE route does not take STOW-RS fields.
  t.deepEqual(errors(pacs({ host: 'pacs', port: 104, aeTitle: 'PACS', stowUrl: 'https://pacs/studies' })), [
    'upstream.pacs.stowUrl unknown-key',
  ]);

  const dimse = pacs({ host: 'pacs.genhosp.example', port: 104, aeTitle: 'PACS' });
  t.is(dimse.config?.upstream.pacs?.protocol, 'dimse');
  t.deepEqual(errors(pacs({ protocol: 'dimse', stowUrl: 'https://pacs/studies' })), [
    'upstream.pacs.stowUrl unknown-key',
    'upstream.pacs.host required',
    'upstream.pacs.port required',
    'upstream.pacs.aeTitle required',
  ]);
});

test('worklist return keys are checked against the core Tag table', (t) => {
  const dir = siteDir();
  const ok = checkConfig(
    { ...minimal(), dicom: { worklist: { returnKeys: ['PatientName', 'ScheduledProcedureStepSequence'] } } },
    { baseDir: dir },
  );
  t.deepEqual(ok.config?.dicom.worklist.returnKeys, ['PatientName', 'ScheduledProcedureStepSequence']);
  const bad = checkConfig({ ...minimal(), dicom: { worklist: { returnKeys: ['patientname'] } } }, { baseDir: dir });
  t.is(at(bad.issues, 'dicom.worklist.returnKeys[0]')[0]?.code, 'invalid-value');
});

test('a wildcard host is refused on every listener, in every spelling, unless allowAllInterfaces', (t) => {
  const dir = siteDir();
  const hostIssues = (raw: Record<string, unknown>) =>
    checkConfig(raw, { baseDir: dir })
      .issues.filter((i) => i.code === 'all-interfaces')
      .map((i) => `${i.severity}:${i.path}`);
  const raw = {
    ...minimal(),
    hl7: { listen: { host: '0.0.0.0', port: 0 } },
    dicom: { tls: { host: '::', port: 0 }, plain: { host: '0:0:0:0:0:0:0:0', port: 0 } },
    audit: { pull: { listen: { host: '::ffff:0.0.0.0', port: 0 }, centralCaFile: './pki/ca.crt' } },
  };
  t.deepEqual(hostIssues(raw).sort(), [
    'error:audit.pull.listen.host',
    'error:dicom.plain.host',
    'error:dicom.tls.host',
    'error:hl7.listen.host',
  ]);
  const allowed = structuredClone(raw) as Record<string, any>;
  allowed['hl7'].listen.allowAllInterfaces = true;
  t.deepEqual(hostIssues(allowed).sort(), ['error:audit.pull.listen.host', 'error:dicom.plain.host', 'error:dicom.tls.host']);
  // One interface, v4 or v6, is fine; an empty host is refused too.
  t.deepEqual(hostIssues({ ...minimal(), hl7: { listen: { host: '::1', port: 0 } }, dicom: { plain: { host: '10.0.0.5', port: 0 } } }), []);
  t.true(
    checkConfig({ ...minimal(), dicom: { plain: { host: '', port: 0 } } }, { baseDir: dir }).issues.some(
      (i) => i.path === 'dicom.plain.host' && i.severity === 'error',
    ),
  );
  const message = checkConfig(raw, { baseDir: dir }).issues.find((i) => i.path === 'dicom.tls.host')?.message ?? '';
  t.regex(message, /add "allowAllInterfaces": true to dicom\.tls/);
});

test('plain modalities allowed from wider than /24 (IPv4) or /64 (IPv6) draw a warning at that address', (t) => {
  const dir = siteDir();
  const raw = {
    ...minimal(),
    dicom: {
      plain: { port: 0 },
      tls: { port: 0 },
      modalities: [
        {
          name: 'mr1',
          aeTitle: 'MR01',
          transport: 'plain',
          addresses: ['10.1.2.0/24', '0.0.0.0/0', '10.0.0.0/23', '10.1.2.7', 'fd00::/64', '::/0', 'fd00::/63'],
        },
        { name: 'ct1', aeTitle: 'CT01', transport: 'tls', certificateCn: 'CT01', addresses: ['0.0.0.0/0'] },
      ],
    },
  };
  const { config, issues } = checkConfig(raw, { baseDir: dir });
  t.truthy(config);
  const wide = issues.filter((i) => i.code === 'insecure');
  t.deepEqual(
    wide.map((i) => `${i.severity}:${i.path}`),
    [
      'warning:dicom.modalities[0].addresses[1]',
      'warning:dicom.modalities[0].addresses[2]',
      'warning:dicom.modalities[0].addresses[5]',
      'warning:dicom.modalities[0].addresses[6]',
    ],
  );
  t.regex(wide[0]?.message ?? '', /lets any host in 0\.0\.0\.0\/0 use the plain port as MR01 .* at most its \/24 segment/);
  t.regex(wide[2]?.message ?? '', /at most its \/64 segment/);
});

test('TLS files and the data key are parsed: garbage, a foreign key and a short data key are errors at their paths', (t) => {
  const dir = siteDir();
  writeFileSync(join(dir, 'pki/server.crt'), 'not a certificate');
  writeFileSync(join(dir, 'keys/data.key'), Buffer.alloc(10), { mode: 0o600 });
  const codes = (raw: Record<string, unknown>) =>
    checkConfig(raw, { baseDir: dir })
      .issues.filter((i) => i.severity === 'error')
      .map((i) => `${i.path}:${i.code}`);
  t.deepEqual(codes(minimal()), ['keys.file.path:invalid-file-content', 'tls.certFile:invalid-file-content']);
  writeFileSync(join(dir, 'pki/server.crt'), tlsFiles().certificate);
  writeFileSync(join(dir, 'keys/data.key'), Buffer.alloc(32), { mode: 0o600 });
  writeFileSync(join(dir, 'pki/server.key'), tlsFiles().otherKey, { mode: 0o600 });
  t.deepEqual(codes(minimal()), ['tls.keyFile:key-mismatch']);
  // checkFiles: false reads nothing.
  t.deepEqual(errors(checkConfig(minimal(), { baseDir: dir, checkFiles: false }).issues), []);
});

test('site.environment is production unless said otherwise; debugging messages and a marking prefix are for non-production boxes', (t) => {
  const dir = siteDir();
  t.is(checkConfig(minimal(), { baseDir: dir }).config?.site.environment, 'production');
  const withEnv = (environment: string, extra: Record<string, unknown> = {}) =>
    checkConfig({ ...minimal(), ...extra, site: { name: 'GENHOSP-RAD1', environment } }, { baseDir: dir }).issues;
  t.deepEqual(
    at(withEnv('staging'), 'site.environment').map((i) => i.severity),
    ['error'],
    'only production, test and training exist',
  );
  const debugOn = { hl7: { acceptDebuggingProcessingId: true } };
  t.deepEqual(
    at(withEnv('production', debugOn), 'hl7.acceptDebuggingProcessingId').map((i) => i.severity),
    ['error'],
  );
  t.deepEqual(at(withEnv('test', debugOn), 'hl7.acceptDebuggingProcessingId'), []);
  const prefix = { dicom: { worklist: { environmentPrefix: 'DEMO:' } } };
  t.deepEqual(
    at(withEnv('production', prefix), 'dicom.worklist.environmentPrefix').map((i) => i.code),
    ['ignored-key'],
  );
  t.deepEqual(at(withEnv('training', prefix), 'dicom.worklist.environmentPrefix'), []);
  const productionPacs = { upstream: { pacs: { host: 'pacs', port: 104, aeTitle: 'PACS', environment: 'production' } } };
  t.deepEqual(
    at(withEnv('test', productionPacs), 'upstream.pacs.environment').map((i) => i.severity),
    ['warning'],
  );
  t.deepEqual(at(withEnv('production', productionPacs), 'upstream.pacs.environment'), []);
});

test('an HL7 test channel must list its addresses; test channels and testing modalities mean something only on a production box', (t) => {
  const dir = siteDir();
  const channel = {
    name: 'ris-test',
    certificateCn: 'RISTEST.GENHOSP',
    sendingApplication: 'RISTEST',
    sendingFacility: 'GENHOSP',
    testChannel: true,
  };
  const issues = (environment: string, peer: Record<string, unknown>) =>
    checkConfig(
      {
        ...minimal(),
        site: { name: 'GENHOSP-RAD1', environment },
        hl7: { peers: [peer] },
        dicom: {
          plain: { host: '127.0.0.1', port: 11112 },
          modalities: [{ name: 'svc', aeTitle: 'SVC01', transport: 'plain', addresses: ['10.0.0.9'], testing: true }],
        },
      },
      { baseDir: dir },
    ).issues;
  t.deepEqual(
    at(issues('production', channel), 'hl7.peers[0].addresses').map((i) => i.severity),
    ['error'],
  );
  const withAddresses = { ...channel, addresses: ['10.0.0.7'] };
  t.deepEqual(errors(issues('production', withAddresses)), []);
  t.deepEqual(at(issues('production', withAddresses), 'hl7.peers[0].testChannel'), []);
  t.deepEqual(
    [
      ...at(issues('test', withAddresses), 'hl7.peers[0].testChannel'),
      ...at(issues('test', withAddresses), 'dicom.modalities[0].testing'),
    ].map((i) => i.code),
    ['ignored-key', 'ignored-key'],
  );
});

test('station rules: overlapping rules of equal priority are reported; bad values are errors at their path', (t) => {
  const dir = siteDir();
  const withRules = (stationRules: unknown[]) =>
    checkConfig({ ...minimal(), dicom: { worklist: { stationRules } } }, { baseDir: dir }).issues;
  const overlapping = withRules([
    { name: 'ct', when: { modalities: ['CT'] }, stationAeTitle: 'CT01' },
    { name: 'er', when: { locations: ['ER'] }, stationAeTitle: 'CT_ER' },
    { name: 'mr', when: { modalities: ['MR'] }, stationAeTitle: 'MR01' },
    { name: 'er-first', when: { locations: ['ER'] }, stationAeTitle: 'CT_ER2', priority: 1 },
  ]);
  const found = overlapping.filter((i) => i.code === 'overlapping-rules');
  t.deepEqual(
    found.map((i) => i.path),
    ['dicom.worklist.stationRules[1]', 'dicom.worklist.stationRules[2]'],
  );
  t.is(found[0]!.severity, 'warning');
  t.regex(found[0]!.message, /overlaps dicom\.worklist\.stationRules\[0\] \("ct"\).*CT01 and CT_ER/);
  const bad = errors(
    withRules([
      { name: 'x', when: { modalities: ['ct'] }, stationAeTitle: 'A'.repeat(17) },
      { name: 'x', stationAeTitle: 'CT01' },
    ]),
  );
  t.deepEqual(
    bad.map((i) => `${i.path}:${i.code}`),
    ['dicom.worklist.stationRules[0].when.modalities[0]:invalid-value', 'dicom.worklist.stationRules[0].stationAeTitle:out-of-range'],
  );
  const twice = errors(
    withRules([
      { name: 'x', stationAeTitle: 'CT01' },
      { name: 'x', stationAeTitle: 'CT02' },
    ]),
  );
  t.deepEqual(
    twice.map((i) => `${i.path}:${i.code}`),
    ['dicom.worklist.stationRules[1].name:duplicate'],
  );
});
