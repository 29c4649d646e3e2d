// Test support: build an A-ASSOCIATE-RQ PDU by hand, for raw-socket tests.
import { Buffer } from 'node:buffer';

function item(type: number, value: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt8(type, 0);
  head.writeUInt16BE(value.length, 2);
  return Buffer.concat([head, value]);
}

export function buildAssociateRq(options: {
  calling: string;
  called: string;
  contexts: { id: number; abstractSyntax: string; transferSyntaxes: string[] }[];
  maxPduLength?: number;
  /** The byte that pads the AE title fields to 16 (a few older devices pad with NUL instead of space). */
  aePadding?: 'space' | 'nul';
}): Buffer {
  const fixed = Buffer.alloc(68, 0);
  fixed.writeUInt16BE(1, 0);
  fixed.fill(options.aePadding === 'nul' ? 0 : 0x20, 4, 36);
  fixed.write(options.called, 4, 'latin1');
  fixed.write(options.calling, 20, 'latin1');
  const parts = [fixed, item(0x10, Buffer.from('1.2.840.10008.3.1.1.1'))];
  for (const pc of options.contexts) {
    parts.push(
      item(
        0x20,
        Buffer.concat([
          Buffer.from([pc.id, 0, 0, 0]),
          item(0x30, Buffer.from(pc.abstractSyntax)),
          ...pc.transferSyntaxes.map((ts) => item(0x40, Buffer.from(ts))),
        ]),
      ),
    );
  }
  const max = Buffer.alloc(4);
  max.writeUInt32BE(options.maxPduLength ?? 16384, 0);
  parts.push(item(0x50, Buffer.concat([item(0x51, max), item(0x52, Buffer.from('1.2.3.4'))])));
  const body = Buffer.concat(parts);
  const head = Buffer.alloc(6);
  head.writeUInt8(1, 0);
  head.writeUInt32BE(body.length, 2);
  return Buffer.concat([head, body]);
}
