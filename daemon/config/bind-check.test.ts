import test from 'ava';
import { once } from 'node:events';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { bindCheck } from './bind-check.ts';
import { checkConfig } from './check-config.ts';
import type { EdgeConfig } from './edge-config-schema.ts';

function configWith(hl7Port: number, dicomTlsPort: number): EdgeConfig {
  const raw = {
    site: { name: 'T' },
    keys: { backend: 'tpm' },
    tls: { caFile: 'a', certFile: 'b', keyFile: 'c' },
    hl7: { listen: { host: '127.0.0.1', port: hl7Port } },
    dicom: { tls: { host: '127.0.0.1', port: dicomTlsPort } },
  };
  const { config } = checkConfig(raw, { checkFiles: false });
  if (config === undefined) throw new Error('test config invalid');
  return config;
}

test("a taken port is reported at its listener's path; free ones pass", async (t) => {
  const holder = createServer();
  holder.listen(0, '127.0.0.1');
  await once(holder, 'listening');
  t.teardown(() => holder.close());
  const taken = (holder.address() as AddressInfo).port;
  const issues = await bindCheck(configWith(0, taken));
  t.deepEqual(
    issues.map((i) => `${i.path}:${i.code}`),
    ['dicom.tls.port:bind-failed'],
  );
  t.regex(issues[0]?.message ?? '', /EADDRINUSE/);
  t.deepEqual(await bindCheck(configWith(0, 0)), []);
});
