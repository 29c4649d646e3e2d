// Connections from extra loopback source addresses (127.0.0.2-.9), as an attacker on the network would
// open them: connected, then silent.
import { once } from 'node:events';
import net from 'node:net';

/** `perSource` TCP connections to 127.0.0.1:`port` from each source that send nothing; resolves once each connected or closed. */
export async function silentConnections(port: number, sources: readonly string[], perSource: number): Promise<net.Socket[]> {
  const sockets: net.Socket[] = [];
  await Promise.all(
    sources.flatMap((localAddress) =>
      Array.from({ length: perSource }, async () => {
        const s = net.connect({ host: '127.0.0.1', port, localAddress });
        s.on('error', () => {});
        sockets.push(s);
        await Promise.race([once(s, 'connect'), once(s, 'close')]);
      }),
    ),
  );
  return sockets;
}
