// The DICOM data model the core works with, independent of any wire encoding.
// Text values are decoded JavaScript strings (multiple values joined by `\`, as in PS3.5 6.4);
// the dicom adapter handles transfer syntaxes and Specific Character Set.

export type Vr =
  | 'AE' | 'AS' | 'AT' | 'CS' | 'DA' | 'DS' | 'DT' | 'FD' | 'FL' | 'IS' | 'LO' | 'LT' | 'OB' | 'OD'
  | 'OF' | 'OL' | 'OV' | 'OW' | 'PN' | 'SH' | 'SL' | 'SQ' | 'SS' | 'ST' | 'SV' | 'TM' | 'UC' | 'UI'
  | 'UL' | 'UN' | 'UR' | 'US' | 'UT' | 'UV';

/** VRs with a 2-byte reserved field and a 4-byte length in Explicit VR (PS3.5 Table 7.1-1). */
export const longExplicitVrs: ReadonlySet<string> = new Set<Vr>(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);

/**
 * The longest value of the other VRs in Explicit VR: their length field has 16 bits and a value has an
 * even length (PS3.5 7.1.1), so 0xFFFE bytes, padding included.
 */
export const MAX_SHORT_LENGTH_VALUE_BYTES = 0xfffe;

/** A data element. `value` is a string for text VRs, an array of items for SQ, bytes otherwise. */
export type DataElement =
  | { readonly vr: Exclude<Vr, 'SQ' | 'OB' | 'OD' | 'OF' | 'OL' | 'OV' | 'OW' | 'UN'>; readonly value: string }
  | { readonly vr: 'SQ'; readonly value: readonly DataSet[] }
  | { readonly vr: 'OB' | 'OD' | 'OF' | 'OL' | 'OV' | 'OW' | 'UN'; readonly value: Uint8Array };

/** A data set keyed by tag (group << 16 | element). */
export type DataSet = Map<number, DataElement>;

/** Tags the worklist uses, named as in PS3.6. */
export const Tag = {
  SpecificCharacterSet: 0x00080005,
  SOPClassUID: 0x00080016,
  SOPInstanceUID: 0x00080018,
  StudyDate: 0x00080020,
  StudyTime: 0x00080030,
  AccessionNumber: 0x00080050,
  IssuerOfAccessionNumberSequence: 0x00080051,
  Modality: 0x00080060,
  InstitutionName: 0x00080080,
  ReferringPhysicianName: 0x00080090,
  CodeValue: 0x00080100,
  CodingSchemeDesignator: 0x00080102,
  CodingSchemeVersion: 0x00080103,
  CodeMeaning: 0x00080104,
  TimezoneOffsetFromUTC: 0x00080201,
  StudyDescription: 0x00081030,
  ReferencedStudySequence: 0x00081110,
  ReferencedPatientSequence: 0x00081120,
  ReferencedSOPClassUID: 0x00081150,
  ReferencedSOPInstanceUID: 0x00081155,
  PatientName: 0x00100010,
  PatientID: 0x00100020,
  IssuerOfPatientID: 0x00100021,
  PatientBirthDate: 0x00100030,
  PatientSex: 0x00100040,
  OtherPatientIDsSequence: 0x00101002,
  PatientWeight: 0x00101030,
  PatientSize: 0x00101020,
  MedicalAlerts: 0x00102000,
  Allergies: 0x00102110,
  PregnancyStatus: 0x001021c0,
  PatientComments: 0x00104000,
  StudyInstanceUID: 0x0020000d,
  StudyID: 0x00200010,
  RequestingPhysician: 0x00321032,
  RequestingService: 0x00321033,
  RequestedProcedureDescription: 0x00321060,
  RequestedProcedureCodeSequence: 0x00321064,
  AdmissionID: 0x00380010,
  CurrentPatientLocation: 0x00380300,
  ScheduledStationAETitle: 0x00400001,
  ScheduledProcedureStepStartDate: 0x00400002,
  ScheduledProcedureStepStartTime: 0x00400003,
  ScheduledProcedureStepEndDate: 0x00400004,
  ScheduledProcedureStepEndTime: 0x00400005,
  ScheduledPerformingPhysicianName: 0x00400006,
  ScheduledProcedureStepDescription: 0x00400007,
  ScheduledProtocolCodeSequence: 0x00400008,
  ScheduledProcedureStepID: 0x00400009,
  ScheduledStationName: 0x00400010,
  ScheduledProcedureStepLocation: 0x00400011,
  PreMedication: 0x00400012,
  ScheduledProcedureStepStatus: 0x00400020,
  ScheduledProcedureStepSequence: 0x00400100,
  CommentsOnTheScheduledProcedureStep: 0x00400400,
  RequestedProcedureID: 0x00401001,
  ReasonForTheRequestedProcedure: 0x00401002,
  RequestedProcedurePriority: 0x00401003,
  PatientTransportArrangements: 0x00401004,
  PlacerOrderNumberImagingServiceRequest: 0x00402016,
  FillerOrderNumberImagingServiceRequest: 0x00402017,
  ConfidentialityConstraintOnPatientDataDescription: 0x00403001,
} as const;
export type TagName = keyof typeof Tag;

/** Text value of a tag, or undefined when absent or not text. */
export function textOf(ds: DataSet, tag: number): string | undefined {
  const el = ds.get(tag);
  return el !== undefined && typeof el.value === 'string' ? el.value : undefined;
}

/** Items of a sequence, or undefined when absent or not a sequence. */
export function itemsOf(ds: DataSet, tag: number): readonly DataSet[] | undefined {
  const el = ds.get(tag);
  return el !== undefined && el.vr === 'SQ' ? el.value : undefined;
}

export function tagHex(tag: number): string {
  const h = tag.toString(16).toUpperCase().padStart(8, '0');
  return `(${h.slice(0, 4)},${h.slice(4)})`;
}
