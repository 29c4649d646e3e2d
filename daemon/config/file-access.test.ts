import test from 'ava';
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { dataLocationProblem, unreadableFileMessage } from './file-access.ts';
import { checkConfig } from './check-config.ts';
import { needsNonRoot, whenMet } from '../../test/support/preconditions.ts';

test('dataDir and the spool folder may not be under /proc, /sys or /dev', (t) => {
  for (const bad of ['/proc', '/proc/self/edge', '/sys/fs/edge', '/dev/shm/edge']) {
    t.regex(dataLocationProblem(bad, false) ?? '', /is under \/(proc|sys|dev), a kernel file system/, bad);
  }
  for (const good of ['/var/lib/imaging-edge', '/processing', '/devices/edge', '/tmp/proc'])
    t.is(dataLocationProblem(good, false), undefined, good);
});

test('a symbolic link into /proc is followed when files are checked', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'edge-loc-'));
  symlinkSync('/proc/self', join(dir, 'link'));
  const path = join(dir, 'link', 'not-yet', 'data');
  t.is(dataLocationProblem(path, false), undefined);
  t.regex(dataLocationProblem(path, true) ?? '', /\(it resolves to \/proc\/\d+\/not-yet\/data\) is under \/proc/);
});

test('the schema refuses such a dataDir and spool directory, at their paths', (t) => {
  const raw = {
    site: { name: 'X' },
    keys: { backend: 'tpm' },
    tls: { caFile: 'a', certFile: 'b' },
    dataDir: '/proc/edge',
    dicom: { storage: { spool: { directory: '/sys/edge-spool' } } },
  };
  const issues = checkConfig(raw, { checkFiles: false })
    .issues.filter((i) => i.code === 'unsafe-location')
    .map((i) => i.path);
  t.deepEqual(issues, ['dataDir', 'dicom.storage.spool.directory']);
});

test('permission denied names the file and the user, and says what to change', (t) => {
  const m = unreadableFileMessage('/etc/edge/keys/data.key');
  t.true(
    m.startsWith(`permission denied: /etc/edge/keys/data.key cannot be read by user ${userInfo().username} (uid ${userInfo().uid})`),
    m,
  );
  t.regex(m, /give that user read access/);
});

// Root reads any file; as root the EACCES path is covered by test/integration/hardening-config.test.ts as uid 65534.
const unprivileged = whenMet(needsNonRoot());

unprivileged('a file that cannot be opened is permission-denied, not file-not-found', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'edge-perm-'));
  writeFileSync(join(dir, 'ca.crt'), 'x', { mode: 0o000 });
  const raw = { site: { name: 'X' }, keys: { backend: 'tpm' }, tls: { caFile: 'ca.crt', certFile: 'ca.crt' } };
  const at = checkConfig(raw, { baseDir: dir }).issues.filter((i) => i.path === 'tls.caFile');
  t.is(at[0]?.code, 'permission-denied');
});
