// Worklist files (.wl) for the upstream Modality Worklist SCPs in tests (DCMTK wlmscpfs, Orthanc's
// worklist plugin), written from a DCMTK dump with dump2dcm.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './processes.ts';

export interface WorklistFileItem {
  readonly accessionNumber: string;
  readonly spsId: string;
  readonly patientName: string;
  readonly patientId: string;
  readonly birthDate?: string;
  readonly sex?: string;
  readonly modality?: string;
  readonly stationAeTitle?: string;
  readonly startDate: string;
  readonly startTime?: string;
  readonly description?: string;
  readonly studyInstanceUid?: string;
  /** Scheduled Procedure Step Status; undefined leaves it out of the file. */
  readonly status?: string;
}

/** A Study Instance UID under the test root, the same for an accession number on every write. */
function studyUid(accessionNumber: string): string {
  return `1.2.826.0.1.3680043.9.7433.9.${[...accessionNumber].map((c) => c.charCodeAt(0)).join('')}`;
}

function dump(item: WorklistFileItem): string {
  const lines = [
    '(0008,0005) CS [ISO_IR 100]',
    `(0008,0050) SH [${item.accessionNumber}]`,
    '(0008,0090) PN [REFERRING^DOCTOR]',
    `(0010,0010) PN [${item.patientName}]`,
    `(0010,0020) LO [${item.patientId}]`,
    `(0010,0030) DA [${item.birthDate ?? '19800101'}]`,
    `(0010,0040) CS [${item.sex ?? 'F'}]`,
    '(0010,2000) LO []',
    '(0010,2110) LO []',
    `(0020,000d) UI [${item.studyInstanceUid ?? studyUid(item.accessionNumber)}]`,
    '(0032,1032) PN [REQUESTING^PHYSICIAN]',
    `(0032,1060) LO [${item.description ?? 'CT CHEST'}]`,
    '(0040,0100) SQ',
    '(fffe,e000) -',
    `(0008,0060) CS [${item.modality ?? 'CT'}]`,
    `(0040,0001) AE [${item.stationAeTitle ?? 'CT01'}]`,
    `(0040,0002) DA [${item.startDate}]`,
    `(0040,0003) TM [${item.startTime ?? '090000'}]`,
    '(0040,0006) PN [PERFORMING^TECH]',
    `(0040,0007) LO [${item.description ?? 'CT CHEST'}]`,
    `(0040,0009) SH [${item.spsId}]`,
    '(0040,0010) SH [STATION1]',
    '(0040,0011) SH [ROOM1]',
    '(0040,0012) LO []',
    ...(item.status === undefined ? [] : [`(0040,0020) CS [${item.status}]`]),
    '(0040,0400) LT []',
    '(fffe,e00d) -',
    '(fffe,e0dd) -',
    `(0040,1001) SH [RP-${item.accessionNumber}]`,
    '(0040,1003) SH [ROUTINE]',
  ];
  return `${lines.join('\n')}\n`;
}

/** Write `name`.wl into `dir` (created if missing). */
export async function writeWorklistFile(dir: string, name: string, item: WorklistFileItem): Promise<void> {
  await mkdir(dir, { recursive: true });
  const dumpFile = join(dir, `${name}.dump`);
  await writeFile(dumpFile, dump(item));
  const r = await run('dump2dcm', ['+te', dumpFile, join(dir, `${name}.wl`)], { timeoutMs: 15_000 });
  await rm(dumpFile, { force: true });
  if (r.code !== 0) throw new Error(`dump2dcm: ${r.stderr}`);
}

export async function removeWorklistFile(dir: string, name: string): Promise<void> {
  await rm(join(dir, `${name}.wl`), { force: true });
}
