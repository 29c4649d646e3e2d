// Worklist answers in the modality's character set, against real peers: DCMTK findscu asks in ISO_IR 100
// (a Latin-1-only console) and gets MÜLLER as ISO 8859-1 bytes under (0008,0005) ISO_IR 100, which
// dcmdump decodes correctly; a Japanese name, which Latin-1 cannot hold, still comes back in ISO_IR 192
// (and the box logs the fallback); a modality configured with a character set gets it without asking.
import test from 'ava';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findscu } from '../support/dicom-peers.ts';
import { fixture, mllpSend, msa } from '../support/hl7-peers.ts';
import { run } from '../support/processes.ts';
import { Daemon, createSite } from '../support/site.ts';

type Site = Awaited<ReturnType<typeof createSite>>;
let site: Site;
let daemon: Daemon;
let work = '';

test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'edge-charsets-'));
  site = await createSite((c) => {
    const mr = c['dicom'].modalities.find((m: { aeTitle: string }) => m.aeTitle === 'MR01');
    mr.characterSet = 'ISO_IR 100';
  });
  daemon = await Daemon.start(site.configFile);
  const latin1 = await fixture('orm-o01-new-ct.hl7');
  // The same order for another patient whose name only exists in kanji, sent in UTF-8.
  const japanese = Buffer.from(
    latin1
      .toString('latin1')
      .replace('|8859/1', '|UNICODE UTF-8')
      .replace('MSG00001', 'MSG00901')
      .replaceAll('PLC0001', 'PLC0901')
      .replace('ACC0001', 'ACC0901')
      .replace('PAT10001', 'PAT10901')
      .replace('M\u00dcLLER^J\u00dcRGEN^K', '山田^太郎')
      .replace('1.2.826.0.1.3680043.9.7433.1.1001', '1.2.826.0.1.3680043.9.7433.1.1901'),
    'utf8',
  );
  // An MR order for a Latin-1 name, for the modality with a configured character set.
  const mr = Buffer.from(
    (await fixture('orm-o01-new-mr-escapes.hl7')).toString('latin1').replace("O'BRIEN^MARY ANN^", 'M\u00dcLLER^ANNA^'),
    'latin1',
  );
  const withCharset = Buffer.from(mr.toString('latin1').replace('|P|2.3.1', '|P|2.3.1||||||8859/1'), 'latin1');
  const acks = await mllpSend(daemon.ports.hl7, { certFile: site.ris.certFile, keyFile: site.ris.keyFile, caFile: site.pki.caCert }, [
    latin1,
    japanese,
    withCharset,
  ]);
  if (acks.map(msa).join() !== 'AA,AA,AA') throw new Error(`orders not accepted: ${acks.join(' | ')}`);
});

test.after.always(async () => {
  await daemon?.stop();
  await site?.cleanup();
  if (work !== '') await rm(work, { recursive: true, force: true });
});

/**
 * findscu with the responses written to files; per file: dcmdump as is (the character set received),
 * dcmdump +U8 (the values decoded by DCMTK from that set, shown in UTF-8; it also relabels (0008,0005)) and
 * the raw bytes.
 */
async function query(callingAe: string, keys: string[], dir: string): Promise<{ raw: string; dump: string; bytes: Buffer }[]> {
  const out = join(work, dir);
  await run('mkdir', ['-p', out]);
  const tls =
    callingAe === 'CT01'
      ? (() => {
          const m = site.modalities.find((x) => x.aeTitle === 'CT01')!;
          return { certFile: m.certFile!, keyFile: m.keyFile!, caFile: site.pki.caCert };
        })()
      : undefined;
  const r = await findscu({
    port: tls === undefined ? daemon.ports.dicomPlain : daemon.ports.dicomTls,
    callingAe,
    ...(tls === undefined ? {} : { tls }),
    keys: [...keys, 'PatientName', 'AccessionNumber'],
    extra: ['-X', '-od', out],
  });
  if (r.finalStatus !== 'Success') throw new Error(r.stdout + r.stderr);
  const files = (await readdir(out)).filter((f) => f.startsWith('rsp')).sort();
  return Promise.all(
    files.map(async (f) => {
      const raw = await run('dcmdump', [join(out, f)], { timeoutMs: 20_000 });
      const d = await run('dcmdump', ['+U8', join(out, f)], { timeoutMs: 20_000 });
      return { raw: raw.stdout, dump: d.stdout, bytes: await readFile(join(out, f)) };
    }),
  );
}

const line = (dump: string, keyword: string): string => dump.split('\n').find((l) => l.trimEnd().endsWith(` ${keyword}`)) ?? '';

test.serial('a Latin-1 query gets ISO_IR 100 bytes that dcmdump decodes; a Japanese name still comes back in UTF-8', async (t) => {
  const answers = await query('CT01', ['SpecificCharacterSet=ISO_IR 100'], 'ct');
  t.is(answers.length, 2);
  const mueller = answers.find((a) => a.dump.includes('ACC0001'))!;
  t.regex(line(mueller.raw, 'SpecificCharacterSet'), /\[ISO_IR 100\]/);
  t.regex(line(mueller.dump, 'PatientName'), /\[MÜLLER\^JÜRGEN\^K\]/, mueller.dump);
  t.true(mueller.bytes.includes(Buffer.from('M\u00dcLLER', 'latin1')), 'one byte 0xDC per Ü, as ISO 8859-1 has it');
  t.false(mueller.bytes.includes(Buffer.from('MÜLLER', 'utf8')), 'no UTF-8 bytes');

  const yamada = answers.find((a) => a.dump.includes('ACC0901'))!;
  t.regex(line(yamada.raw, 'SpecificCharacterSet'), /\[ISO_IR 192\]/);
  t.regex(line(yamada.dump, 'PatientName'), /\[山田\^太郎\]/, yamada.dump);
  t.true(daemon.process.events('worklist.charset-fallback').some((e) => e['wanted'] === 'ISO_IR 100' && e['aeTitle'] === 'CT01'));
});

test.serial('a modality configured with ISO_IR 100 gets it without naming a character set in its query', async (t) => {
  const answers = await query('MR01', [], 'mr');
  const mueller = answers.find((a) => a.dump.includes('ACC0002'))!;
  t.regex(line(mueller.raw, 'SpecificCharacterSet'), /\[ISO_IR 100\]/, mueller.raw);
  t.regex(line(mueller.dump, 'PatientName'), /\[MÜLLER\^ANNA\]/);
});
