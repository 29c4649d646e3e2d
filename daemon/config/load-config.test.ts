import test from 'ava';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isEdgeError } from '../core/errors.ts';
import { ConfigError, loadConfig, maxConfigBytes } from './load-config.ts';
import { tlsFiles } from '../../test/support/test-pki.ts';

function site(config: unknown): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'edge-load-'));
  mkdirSync(join(dir, 'etc'));
  const tls = tlsFiles();
  writeFileSync(join(dir, 'etc', 'ca.crt'), tls.certificate);
  writeFileSync(join(dir, 'etc', 'server.crt'), tls.certificate);
  writeFileSync(join(dir, 'etc', 'server.key'), tls.key, { mode: 0o600 });
  writeFileSync(join(dir, 'etc', 'data.key'), Buffer.alloc(32, 1), { mode: 0o600 });
  const file = join(dir, 'etc', 'edge.json');
  writeFileSync(file, typeof config === 'string' ? config : JSON.stringify(config));
  return { dir, file };
}

const valid = {
  site: { name: 'GENHOSP-RAD1' },
  keys: { backend: 'file', file: { path: 'data.key' } },
  tls: { caFile: 'ca.crt', certFile: 'server.crt', keyFile: 'server.key' },
};

test("loads, resolving paths against the config file's folder, and returns the warnings", (t) => {
  const { dir, file } = site(valid);
  const { config, issues } = loadConfig(file);
  t.is(config.tls.caFile, join(dir, 'etc', 'ca.crt'));
  t.is(config.dataDir, join(dir, 'etc', 'data'));
  t.true(issues.every((i) => i.severity === 'warning'));
  t.true(issues.some((i) => i.code === 'development-only'));
});

test('a missing file, bad JSON and an oversized file are EDGE_CONFIG_UNREADABLE', (t) => {
  const missing = t.throws(() => loadConfig('/nonexistent/edge.json'));
  t.true(isEdgeError(missing, 'EDGE_CONFIG_UNREADABLE'));
  t.regex(missing?.message ?? '', /ENOENT/);
  const badJson = t.throws(() => loadConfig(site('{"site": ').file));
  t.true(isEdgeError(badJson, 'EDGE_CONFIG_UNREADABLE'));
  t.regex(badJson?.message ?? '', /not valid JSON/);
  const big = t.throws(() => loadConfig(site(' '.repeat(maxConfigBytes + 1)).file));
  t.true(isEdgeError(big, 'EDGE_CONFIG_UNREADABLE'));
});

test('errors throw EDGE_CONFIG_INVALID with every issue attached', (t) => {
  const err = t.throws(() => loadConfig(site({ ...valid, site: {}, extra: true, hl7: { listen: { port: -1 } } }).file));
  t.true(isEdgeError(err, 'EDGE_CONFIG_INVALID'));
  t.true(err instanceof ConfigError);
  const issues = err instanceof ConfigError ? err.issues : [];
  t.deepEqual(
    issues
      .filter((i) => i.severity === 'error')
      .map((i) => i.path)
      .sort(),
    ['extra', 'hl7.listen.port', 'site.name'],
  );
  t.regex(err?.message ?? '', /and 2 more/);
  t.is((err as ConfigError).detail?.issues, issues.length);
});
