import test from 'ava';
import { characterSetOf, resolveSpecificCharacterSet, SUPPORTED_CHARACTER_SET_TERMS } from './dicom-character-sets.ts';

const bytesOf = (term: string, text: string): number[] | undefined => {
  const b = characterSetOf(term)!.encode(text);
  return b === undefined ? undefined : [...b];
};

test('single-byte sets put their ISO 8859 letters at the standard code points', (t) => {
  t.deepEqual(bytesOf('ISO_IR 100', 'MÜLLER'), [0x4d, 0xdc, 0x4c, 0x4c, 0x45, 0x52]);
  t.deepEqual(bytesOf('ISO_IR 101', 'Łódź'), [0xa3, 0xf3, 0x64, 0xbc], 'ISO 8859-2');
  t.deepEqual(bytesOf('ISO_IR 109', 'Ħ'), [0xa1], 'ISO 8859-3');
  t.deepEqual(bytesOf('ISO_IR 110', 'Ā'), [0xc0], 'ISO 8859-4');
  t.deepEqual(bytesOf('ISO_IR 144', 'Иван'), [0xb8, 0xd2, 0xd0, 0xdd], 'ISO 8859-5');
  t.deepEqual(bytesOf('ISO_IR 148', 'Şişli'), [0xde, 0x69, 0xfe, 0x6c, 0x69], 'ISO 8859-9: Ş 0xDE, ş 0xFE');
  t.deepEqual(bytesOf('ISO_IR 126', 'Ω'), [0xd9], 'ISO 8859-7');
  t.deepEqual(bytesOf('ISO_IR 203', '€'), [0xa4], 'ISO 8859-15');
});

test('a character outside the set cannot be encoded; C1 controls are never written', (t) => {
  t.is(bytesOf('ISO_IR 100', 'Łukasz'), undefined);
  t.deepEqual(bytesOf('ISO_IR 101', 'Ü'), [0xdc], 'Ü is in ISO 8859-2 too');
  t.is(bytesOf('ISO_IR 144', 'Ü'), undefined);
  t.is(bytesOf('ISO_IR 100', 'A\u0085B'), undefined);
  t.is(bytesOf('ISO_IR 148', '€'), undefined, 'windows-1254 has € at 0x80; ISO 8859-9 has none');
  t.false(characterSetOf('ISO_IR 100')!.canEncode('山田'));
  t.true(characterSetOf('ISO_IR 192')!.canEncode('山田'));
});

test('decoding is the inverse, for every byte of the upper half each set defines', (t) => {
  for (const term of SUPPORTED_CHARACTER_SET_TERMS) {
    const cs = characterSetOf(term)!;
    if (cs.kind !== 'single-byte' && cs.kind !== 'latin1') continue;
    for (let b = 0xa0; b <= 0xff; b++) {
      const ch = cs.decode(Uint8Array.of(b));
      if (ch === '\ufffd') continue;
      t.deepEqual([...(cs.encode(ch) ?? [])], [b], `${term} 0x${b.toString(16)}`);
    }
  }
});

test('(0008,0005) values: first value decides; code extensions are unsupported except Latin-1 and the default', (t) => {
  t.is(resolveSpecificCharacterSet(undefined).charset.kind, 'default');
  t.is(resolveSpecificCharacterSet('ISO_IR 101').charset.term, 'ISO_IR 101');
  t.is(resolveSpecificCharacterSet('ISO 2022 IR 6\\ISO 2022 IR 100').charset.term, 'ISO_IR 100');
  t.deepEqual(resolveSpecificCharacterSet('ISO 2022 IR 6\\ISO 2022 IR 87').unsupported, ['ISO 2022 IR 87']);
  t.deepEqual(resolveSpecificCharacterSet('GB18030').unsupported, ['GB18030']);
});
