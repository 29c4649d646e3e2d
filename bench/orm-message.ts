// A planned worklist item as the ORM^O01 (v2.3.1, NW) a RIS would send for it, laid out the way the box
// maps it (daemon/hl7/mapping.ts): OBR-18 accession, OBR-19 requested procedure id, OBR-20 SPS id,
// OBR-21 and ORC-18 station AE, OBR-24 modality, OBR-27.4 SPS start, ZDS-1 Study Instance UID.
import type { PlannedItem } from './worklist-plan.ts';

export interface MessageHeader {
  readonly sendingApplication: string;
  readonly sendingFacility: string;
  readonly receivingApplication: string;
  readonly receivingFacility: string;
  /** MSH-7, YYYYMMDDHHMMSS */
  readonly timestamp: string;
}

/** Fields of one segment, index = HL7 field number (index 0 = segment id). */
function segment(fields: Record<number, string>, name: string): string {
  const last = Math.max(0, ...Object.keys(fields).map(Number));
  const out: string[] = [name];
  for (let i = 1; i <= last; i++) out.push(fields[i] ?? '');
  return out.join('|');
}

export function ormO01(item: PlannedItem, header: MessageHeader, controlId: string): string {
  const start = `${item.startDate}${item.startTime}`;
  const provider = '1234^BENCH^REFERRER';
  const msh = `MSH|^~\\&|${header.sendingApplication}|${header.sendingFacility}|${header.receivingApplication}|${header.receivingFacility}|${header.timestamp}||ORM^O01|${controlId}|P|2.3.1`;
  const pid = segment(
    {
      1: '1',
      3: `${item.patientId}^^^GENHOSP^MR`,
      5: `${item.patientFamilyName}^${item.patientGivenName}`,
      7: item.birthDate,
      8: item.sex,
    },
    'PID',
  );
  const pv1 = segment({ 1: '1', 2: 'O', 3: 'RAD^^^GENHOSP', 8: provider }, 'PV1');
  const orc = segment(
    {
      1: 'NW',
      2: item.placerOrderNumber,
      3: item.fillerOrderNumber,
      5: 'SC',
      7: `^^^${start}^^R`,
      9: header.timestamp,
      12: provider,
      18: item.stationAeTitle,
    },
    'ORC',
  );
  const obr = segment(
    {
      1: '1',
      2: item.placerOrderNumber,
      3: item.fillerOrderNumber,
      4: `${item.procedureCode}^${item.procedureDescription}^L`,
      7: header.timestamp,
      16: provider,
      18: item.accessionNumber,
      19: item.requestedProcedureId,
      20: item.stepId,
      21: item.stationAeTitle,
      24: item.modality,
      27: `^^^${start}^^R`,
    },
    'OBR',
  );
  const zds = `ZDS|${item.studyInstanceUid}^EDGE^Application^DICOM`;
  return [msh, pid, pv1, orc, obr, zds].join('\r') + '\r';
}
