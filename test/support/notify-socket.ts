// systemd's notify socket, as a test peer: where edged's systemd-notify children send READY=1 and WATCHDOG=1.
import { Supervised } from './processes.ts';

/**
 * A notify socket as systemd's: a datagram socket that takes each message and closes the descriptors it
 * carries (systemd-notify waits on that barrier; socat can receive datagrams but keeps the descriptor,
 * so systemd-notify would hang). Prints one line per message: epoch ms, then the text.
 */
const RECEIVER = `
import array, os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print('bound', flush=True)
while True:
    msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(64))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array('i')
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
            for fd in fds:
                os.close(fd)
    print('%d %s' % (time.time() * 1000, msg.decode('ascii', 'replace').replace('\\n', ' ')), flush=True)
`;

/** Bind a notify socket at `path`; each message becomes one line of the returned process. */
export async function startNotifySocket(path: string): Promise<Supervised> {
  const receiver = new Supervised('python3', ['-c', RECEIVER, path]);
  await receiver.waitForLine((l) => l === 'bound', 10_000);
  return receiver;
}

/** Epoch ms of every WATCHDOG=1 the socket received. */
export function watchdogPings(receiver: Supervised): number[] {
  return receiver.lines.filter((l) => / WATCHDOG=1/.test(l)).map((l) => Number(l.split(' ')[0]));
}
