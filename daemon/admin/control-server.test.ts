import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EdgeError } from '../core/errors.ts';
import { silentLogger } from '../core/log.ts';
import { ControlServer } from './control-server.ts';

function ask(socketPath: string, method: string, path: string): Promise<{ status: number; body: { error?: { code: string } } }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method, path, timeout: 10_000 }, (res) => {
      let text = '';
      res
        .setEncoding('utf8')
        .on('data', (c: string) => (text += c))
        .on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as { error?: { code: string } } }));
    });
    req
      .on('timeout', () => req.destroy(new Error('timeout')))
      .on('error', reject)
      .end();
  });
}

test('error codes answer with their HTTP status: a missing outbox entry and a missing route are 404, a bad request 400, a transient 503', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'control-'));
  const socketPath = join(dir, 'control.sock');
  const server = new ControlServer({ socketPath, logger: silentLogger });
  const throwing = (code: ConstructorParameters<typeof EdgeError>[0]) => () => {
    throw new EdgeError(code);
  };
  server.add(
    { method: 'POST', path: '/v1/queues/discard', permission: 'operator', handle: throwing('EDGE_OUTBOX_NOT_FOUND') },
    { method: 'POST', path: '/v1/bad', permission: 'viewer', handle: throwing('EDGE_CONTROL_BAD_REQUEST') },
    { method: 'POST', path: '/v1/busy', permission: 'viewer', handle: throwing('EDGE_STORE_WRITE_FAILED') },
  );
  await server.start();
  t.teardown(async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });
  t.like(await ask(socketPath, 'POST', '/v1/queues/discard'), { status: 404, body: { error: { code: 'EDGE_OUTBOX_NOT_FOUND' } } });
  t.like(await ask(socketPath, 'GET', '/v1/nothing'), { status: 404, body: { error: { code: 'EDGE_CONTROL_NOT_FOUND' } } });
  t.like(await ask(socketPath, 'POST', '/v1/bad'), { status: 400, body: { error: { code: 'EDGE_CONTROL_BAD_REQUEST' } } });
  t.like(await ask(socketPath, 'POST', '/v1/busy'), { status: 503, body: { error: { code: 'EDGE_STORE_WRITE_FAILED' } } });
});

test('every route declares a known permission, and a route is mounted once', (t) => {
  const server = new ControlServer({ socketPath: '/nonexistent/control.sock', logger: silentLogger });
  const handle = () => ({ status: 200, body: {} });
  server.add({ method: 'GET', path: '/v1/status', permission: 'viewer', handle });
  t.throws(() => server.add({ method: 'GET', path: '/v1/other', permission: 'root' as 'admin', handle }), {
    instanceOf: TypeError,
    message: /unknown permission/,
  });
  t.throws(() => server.add({ method: 'GET', path: '/v1/status', permission: 'viewer', handle }), {
    instanceOf: TypeError,
    message: /twice/,
  });
  t.deepEqual(server.routes(), [{ method: 'GET', path: '/v1/status', permission: 'viewer' }]);
});
