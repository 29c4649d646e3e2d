// Writes the planned worklist items as wlmscpfs .wl files: one DCMTK dump text per item, converted by
// `dump2dcm` (the anchor gets its data the way its users make it), two conversions at a time.
//
// Usage: node bench/anchor-worklist.ts --dir WLDIR/AET --today YYYYMMDD --from I --count N [--jobs 2]
import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { plannedItem, type PlannedItem } from './worklist-plan.ts';

const DUMP2DCM_TIMEOUT_MS = 30_000;

/** The Modality Worklist item as DCMTK dump text (same attributes wlmscpfs's own samples carry). */
export function worklistDump(item: PlannedItem): string {
  return [
    '(0008,0005) CS [ISO_IR 100]',
    `(0008,0050) SH [${item.accessionNumber}]`,
    '(0008,0090) PN [BENCH^REFERRER]',
    `(0010,0010) PN [${item.patientFamilyName}^${item.patientGivenName}]`,
    `(0010,0020) LO [${item.patientId}]`,
    `(0010,0030) DA [${item.birthDate}]`,
    `(0010,0040) CS [${item.sex}]`,
    `(0020,000d) UI [${item.studyInstanceUid}]`,
    '(0032,1032) PN [BENCH^REFERRER]',
    `(0032,1060) LO [${item.procedureDescription}]`,
    '(0040,0100) SQ',
    '(fffe,e000) -',
    `(0008,0060) CS [${item.modality}]`,
    `(0040,0001) AE [${item.stationAeTitle}]`,
    `(0040,0002) DA [${item.startDate}]`,
    `(0040,0003) TM [${item.startTime}]`,
    `(0040,0007) LO [${item.procedureDescription}]`,
    `(0040,0009) SH [${item.stepId}]`,
    '(fffe,e00d) -',
    '(fffe,e0dd) -',
    `(0040,1001) SH [${item.requestedProcedureId}]`,
    '(0040,1003) SH [ROUTINE]',
    '',
  ].join('\n');
}

function dump2dcm(dumpFile: string, outFile: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('dump2dcm', ['+te', dumpFile, outFile], { timeout: DUMP2DCM_TIMEOUT_MS }, (err, _stdout, stderr) => {
      if (err !== null) reject(new Error(`dump2dcm ${dumpFile} failed: ${stderr.trim() || err.message}`, { cause: err }));
      else resolve();
    });
  });
}

export async function writeAnchorWorklist(dir: string, today: string, from: number, count: number, jobs: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  // wlmscpfs refuses an AE folder without a file named lockfile.
  await writeFile(join(dir, 'lockfile'), '');
  const dumps = join(dir, '..', `.dumps-${process.pid}`);
  await mkdir(dumps, { recursive: true });
  try {
    let next = from;
    const end = from + count;
    const worker = async (): Promise<void> => {
      while (next < end) {
        const item = plannedItem(next++, today);
        const dumpFile = join(dumps, `${item.index}.dump`);
        await writeFile(dumpFile, worklistDump(item));
        await dump2dcm(dumpFile, join(dir, `wl${String(item.index).padStart(7, '0')}.wl`));
        await rm(dumpFile);
      }
    };
    await Promise.all(Array.from({ length: jobs }, worker));
  } finally {
    await rm(dumps, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      dir: { type: 'string' },
      today: { type: 'string' },
      from: { type: 'string', default: '0' },
      count: { type: 'string' },
      jobs: { type: 'string', default: '2' },
    },
  });
  if (values.dir === undefined || values.today === undefined || values.count === undefined) {
    throw new Error('usage: anchor-worklist.ts --dir WLDIR/AET --today YYYYMMDD --count N [--from I] [--jobs J]');
  }
  const started = performance.now();
  await writeAnchorWorklist(values.dir, values.today, Number(values.from), Number(values.count), Math.max(1, Number(values.jobs)));
  console.log(`anchor worklist: ${values.count} items in ${values.dir} (${((performance.now() - started) / 1000).toFixed(1)} s)`);
}

if (import.meta.main) await main();
