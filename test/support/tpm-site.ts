// A development site switched to keys.backend "tpm" on a swtpm: index key, data key and the site's
// server TLS key sealed (as `edgectl provision` would), the key files removed from the config.
import { createPrivateKey } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TpmClient } from '../../daemon/security/tpm-client.ts';
import { type EcPublicJwk, sealNewKeyring } from '../../daemon/security/tpm-key-source.ts';
import { createSite } from './site.ts';
import type { Swtpm } from './swtpm.ts';

export async function createTpmSite(swtpm: Swtpm, adjust?: (config: Record<string, any>) => void) {
  const site = await createSite(adjust);
  const config = JSON.parse(await readFile(site.configFile, 'utf8')) as Record<string, any>;
  const keyPem = await readFile(site.pki.serverKey);
  const jwk = createPrivateKey(keyPem).export({ format: 'jwk' }) as { d: string; x: string; y: string };
  const tpm = new TpmClient({ tcti: swtpm.tcti });
  const { recoverySecret } = await sealNewKeyring({
    tpm,
    keysDir: join(site.dir, 'data', 'keys'),
    pcrs: 'sha256:7',
    tls: { d: Buffer.from(jwk.d, 'base64url'), publicJwk: { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y } satisfies EcPublicJwk },
  });
  config['keys'] = { backend: 'tpm', tpm: { tcti: swtpm.tcti } };
  delete config['tls'].keyFile;
  await writeFile(site.configFile, JSON.stringify(config, null, 2));
  await rm(join(site.dir, 'keys'), { recursive: true, force: true });
  return { ...site, recoverySecret, tpm, dataDir: join(site.dir, 'data') };
}
