// The VR an element has in Implicit VR Little Endian, which carries no VRs on the wire (PS3.5 A.1): the
// data dictionary's, UL for group lengths (PS3.5 7.2), UN for private and unknown tags, which keeps their
// bytes intact for re-encoding.
import { dictionaryEntryOf } from '../core/data-dictionary.ts';
import type { Vr } from '../core/dataset.ts';

/** The VR Implicit VR Little Endian implies for `tag`; UN when unknown or private. */
export function implicitVrOf(tag: number): Vr {
  const group = tag >>> 16;
  if ((group & 1) === 1) return 'UN';
  if ((tag & 0xffff) === 0) return 'UL';
  return dictionaryEntryOf(tag)?.vr ?? 'UN';
}
