// A raw association on the box's plain DICOM port (Verification only), kept open until released, so a
// test can see what the box does to an association that is already open (reload, quarantine).
import net from 'node:net';
import { encodeAssociateRq } from '../../daemon/dicom/association-requestor.ts';

const Verification = '1.2.840.10008.1.1';
const ImplicitLE = '1.2.840.10008.1.2';

/** A raw association on the plain port, kept open until released; `closed` settles when the box drops it. */
export async function openAssociation(
  port: number,
  callingAeTitle: string,
): Promise<{ socket: net.Socket; firstPduType: number; closed: Promise<void>; pdus: Buffer[] }> {
  const socket = net.connect({ host: '127.0.0.1', port });
  const pdus: Buffer[] = [];
  let buffered = Buffer.alloc(0);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => undefined);
  const first = new Promise<number>((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 6 && buffered.length >= 6 + buffered.readUInt32BE(2)) {
        const len = 6 + buffered.readUInt32BE(2);
        pdus.push(buffered.subarray(0, len));
        buffered = buffered.subarray(len);
        if (pdus.length === 1) resolve(pdus[0]![0]!);
      }
    });
    socket.once('close', () => reject(new Error('closed before an answer')));
  });
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write(
    encodeAssociateRq({
      callingAeTitle,
      calledAeTitle: 'EDGE',
      maxPduLength: 16384,
      contexts: [{ id: 1, abstractSyntax: Verification, transferSyntaxes: [ImplicitLE] }],
    }),
  );
  return { socket, firstPduType: await first, closed, pdus };
}

export async function release(a: { socket: net.Socket; pdus: Buffer[] }): Promise<number | undefined> {
  const before = a.pdus.length;
  const answered = new Promise<number | undefined>((resolve) => {
    const check = (): void => {
      if (a.pdus.length > before) resolve(a.pdus[before]![0]);
    };
    a.socket.on('data', check);
    a.socket.once('close', () => resolve(a.pdus[before]?.[0]));
  });
  a.socket.write(Buffer.from([0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0]));
  const type = await answered;
  a.socket.destroy();
  return type;
}
