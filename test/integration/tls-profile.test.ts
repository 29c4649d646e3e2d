// Both TLS listeners speak BCP 195 only: TLS 1.2+ with ECDHE and AEAD ciphers (checked with openssl).
import test from 'ava';
import { run } from '../support/processes.ts';
import { Daemon, createSite } from '../support/site.ts';

type Site = Awaited<ReturnType<typeof createSite>>;
let site: Site;
let daemon: Daemon;

test.before(async () => {
  site = await createSite();
  daemon = await Daemon.start(site.configFile);
});
test.after.always(async () => {
  await daemon?.stop();
  await site?.cleanup();
});

async function handshake(port: number, args: string[]): Promise<boolean> {
  const r = await run(
    'openssl',
    [
      's_client',
      '-connect',
      `127.0.0.1:${port}`,
      '-CAfile',
      site.pki.caCert,
      '-cert',
      site.ris.certFile,
      '-key',
      site.ris.keyFile,
      '-verify_return_error',
      ...args,
    ],
    { input: '', timeoutMs: 15_000 },
  );
  return /Cipher is (?!\(NONE\))/.test(r.stdout) && !/alert|errno|error:/i.test(r.stderr.replace(/verify return:1/g, ''));
}

for (const listener of ['hl7', 'dicomTls'] as const) {
  test(`${listener}: TLS 1.2 with ECDHE-ECDSA-AES128-GCM-SHA256 and TLS 1.3 are accepted`, async (t) => {
    t.true(await handshake(daemon.ports[listener], ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-GCM-SHA256']));
    t.true(await handshake(daemon.ports[listener], ['-tls1_3']));
  });
  test(`${listener}: TLS 1.1, CBC suites and non-ECDHE key exchange are refused`, async (t) => {
    t.false(await handshake(daemon.ports[listener], ['-tls1_1']));
    t.false(await handshake(daemon.ports[listener], ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-SHA256']));
    t.false(await handshake(daemon.ports[listener], ['-tls1_2', '-cipher', 'AES128-GCM-SHA256']));
  });
}
