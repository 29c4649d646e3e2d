import test from 'ava';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { signDetached, verifyDetached } from './cms.ts';
import { keyFileSigner } from './signer.ts';
import { makeAuditTestPki } from '../../test/support/test-pki.ts';

const pki = makeAuditTestPki();
test.after.always(() => pki.cleanup());
const signer = keyFileSigner(pki.device.cert, pki.device.key);
const siteCa = new X509Certificate(readFileSync(pki.siteCa));
const rogueCa = new X509Certificate(readFileSync(pki.rogueCa));

test('a detached signature verifies here and with openssl cms -verify', async (t) => {
  const content = Buffer.from('{"hello":"manifest"}');
  const cms = await signDetached(signer, content);
  const v = verifyDetached(cms, content, [siteCa]);
  t.true(v.ok, v.problem);
  t.true(v.trusted);
  writeFileSync(join(pki.dir, 'm.json'), content);
  writeFileSync(join(pki.dir, 'm.p7s'), cms);
  t.notThrows(() =>
    execFileSync(
      'openssl',
      [
        'cms',
        '-verify',
        '-binary',
        '-inform',
        'DER',
        '-in',
        join(pki.dir, 'm.p7s'),
        '-content',
        join(pki.dir, 'm.json'),
        '-CAfile',
        pki.siteCa,
        '-purpose',
        'any',
        '-out',
        '/dev/null',
      ],
      { stdio: 'pipe' },
    ),
  );
});

test('changed content, a foreign CA and a broken signature are refused', async (t) => {
  const content = Buffer.from('abc');
  const cms = await signDetached(signer, content);
  t.regex(verifyDetached(cms, Buffer.from('abd'), [siteCa]).problem ?? '', /digest/);
  t.regex(verifyDetached(cms, content, [rogueCa]).problem ?? '', /does not chain/);
  const untrusted = verifyDetached(cms, content);
  t.true(untrusted.ok);
  t.false(untrusted.trusted);
  const broken = Buffer.from(cms);
  broken[broken.length - 5]! ^= 0x01;
  t.false(verifyDetached(broken, content, [siteCa]).ok);
  t.false(verifyDetached(Buffer.from('junk'), content).ok);
});
