// Test support: split a DICOM Part 10 file into its meta information and its data set bytes.
import { Buffer } from 'node:buffer';
import { Tag } from '../../core/data-dictionary.ts';

export interface Part10 {
  readonly transferSyntaxUid: string;
  readonly sopClassUid: string;
  readonly sopInstanceUid: string;
  /** The data set as it follows the meta information (the bytes a C-STORE carries). */
  readonly dataSet: Buffer;
}

export function splitPart10(file: Buffer): Part10 {
  if (file.toString('latin1', 128, 132) !== 'DICM') throw new Error('not a Part 10 file');
  let pos = 132;
  const meta = new Map<number, string>();
  while (pos + 8 <= file.length && file.readUInt16LE(pos) === 0x0002) {
    const tag = (0x0002 << 16) | file.readUInt16LE(pos + 2);
    const vr = file.toString('latin1', pos + 4, pos + 6);
    let length: number;
    let header: number;
    if (['OB', 'OW', 'UN', 'SQ', 'UT', 'UC', 'UR'].includes(vr)) {
      length = file.readUInt32LE(pos + 8);
      header = 12;
    } else {
      length = file.readUInt16LE(pos + 6);
      header = 8;
    }
    meta.set(tag, file.toString('latin1', pos + header, pos + header + length).replace(/[\0 ]+$/, ''));
    pos += header + length;
  }
  return {
    transferSyntaxUid: meta.get(Tag.TransferSyntaxUID) ?? '',
    sopClassUid: meta.get(Tag.MediaStorageSOPClassUID) ?? '',
    sopInstanceUid: meta.get(Tag.MediaStorageSOPInstanceUID) ?? '',
    dataSet: file.subarray(pos),
  };
}
