// One worklist item (an order's scheduled procedure step) as the Modality Worklist attributes of
// PS3.4 Table K.6-1, filled the way IHE RAD TF-2 (RAD-5, Query Modality Worklist) and its HL7 → DICOM
// mapping tables prescribe. Every supported attribute is present, zero-length when the RIS sent nothing
// (Type 2 semantics): matching reads a missing attribute as "not supported", an empty one as "unknown".
import { longExplicitVrs, MAX_SHORT_LENGTH_VALUE_BYTES, type DataElement, type DataSet, type Vr } from './dataset.ts';
import { DataDictionary, Tag, type Keyword } from './data-dictionary.ts';
import type { CodedEntry, PatientIdentifier, WorklistItem } from './order.ts';

/** Every attribute this mapping emits, at any nesting level. */
const EMITTED: readonly Keyword[] = [
  'SpecificCharacterSet',
  'AccessionNumber',
  'Modality',
  'ReferringPhysicianName',
  'CodeValue',
  'LongCodeValue',
  'CodingSchemeDesignator',
  'CodingSchemeVersion',
  'CodeMeaning',
  'ReferencedStudySequence',
  'ReferencedPatientSequence',
  'PatientName',
  'PatientID',
  'IssuerOfPatientID',
  'TypeOfPatientID',
  'PatientBirthDate',
  'PatientSex',
  'OtherPatientIDsSequence',
  'PatientSize',
  'PatientWeight',
  'MedicalAlerts',
  'Allergies',
  'PregnancyStatus',
  'StudyInstanceUID',
  'RequestingPhysician',
  'RequestedProcedureDescription',
  'RequestedProcedureCodeSequence',
  'AdmissionID',
  'CurrentPatientLocation',
  'ScheduledStationAETitle',
  'ScheduledProcedureStepStartDate',
  'ScheduledProcedureStepStartTime',
  'ScheduledPerformingPhysicianName',
  'ScheduledProcedureStepDescription',
  'ScheduledProtocolCodeSequence',
  'ScheduledProcedureStepID',
  'ScheduledStationName',
  'ScheduledProcedureStepLocation',
  'ScheduledProcedureStepStatus',
  'CommentsOnTheScheduledProcedureStep',
  'ScheduledProcedureStepSequence',
  'CommentsOnTheScheduledProcedureStep',
  'RequestedProcedureID',
  'ReasonForTheRequestedProcedure',
  'RequestedProcedurePriority',
  'PlacerOrderNumberImagingServiceRequest',
  'FillerOrderNumberImagingServiceRequest',
];

/** The VR of every attribute this mapping emits, at any nesting level, from the data dictionary. */
export const WORKLIST_VRS: ReadonlyMap<number, Vr> = new Map<number, Vr>(EMITTED.map((k) => [DataDictionary[k].tag, DataDictionary[k].vr]));

/**
 * The keywords a site may name in `returnKeys` (data minimisation): the attributes of PS3.4 Table K.6-1
 * and the Patient, Visit and Study attributes modalities ask for beside them. A key outside what the
 * mapping emits is returned zero-length, as an unsupported key.
 */
export const RETURN_KEY_KEYWORDS: ReadonlySet<Keyword> = new Set<Keyword>([
  'SpecificCharacterSet',
  'SOPClassUID',
  'SOPInstanceUID',
  'StudyDate',
  'StudyTime',
  'AccessionNumber',
  'IssuerOfAccessionNumberSequence',
  'Modality',
  'InstitutionName',
  'ReferringPhysicianName',
  'CodeValue',
  'CodingSchemeDesignator',
  'CodingSchemeVersion',
  'CodeMeaning',
  'TimezoneOffsetFromUTC',
  'StudyDescription',
  'ReferencedStudySequence',
  'ReferencedPatientSequence',
  'ReferencedSOPClassUID',
  'ReferencedSOPInstanceUID',
  'PatientName',
  'PatientID',
  'IssuerOfPatientID',
  'PatientBirthDate',
  'PatientSex',
  'OtherPatientIDsSequence',
  'PatientWeight',
  'PatientSize',
  'MedicalAlerts',
  'Allergies',
  'PregnancyStatus',
  'PatientComments',
  'StudyInstanceUID',
  'StudyID',
  'RequestingPhysician',
  'RequestingService',
  'RequestedProcedureDescription',
  'RequestedProcedureCodeSequence',
  'AdmissionID',
  'CurrentPatientLocation',
  'ScheduledStationAETitle',
  'ScheduledProcedureStepStartDate',
  'ScheduledProcedureStepStartTime',
  'ScheduledProcedureStepEndDate',
  'ScheduledProcedureStepEndTime',
  'ScheduledPerformingPhysicianName',
  'ScheduledProcedureStepDescription',
  'ScheduledProtocolCodeSequence',
  'ScheduledProcedureStepID',
  'ScheduledStationName',
  'ScheduledProcedureStepLocation',
  'PreMedication',
  'ScheduledProcedureStepStatus',
  'ScheduledProcedureStepSequence',
  'CommentsOnTheScheduledProcedureStep',
  'RequestedProcedureID',
  'ReasonForTheRequestedProcedure',
  'RequestedProcedurePriority',
  'PatientTransportArrangements',
  'PlacerOrderNumberImagingServiceRequest',
  'FillerOrderNumberImagingServiceRequest',
  'ConfidentialityConstraintOnPatientDataDescription',
]);

export function worklistVrOf(tag: number): Vr | undefined {
  return WORKLIST_VRS.get(tag);
}

/**
 * Control characters no worklist attribute may hold: C0 (NUL included), DEL and C1. The worklist's VRs
 * (AE, CS, DA, DS, LO, PN, SH, TM, UC, UI, US) exclude every control character except ESC (PS3.5 6.1.2,
 * Table 6.2-1), and ESC only introduces ISO 2022 code extensions, which the box's UTF-8 (ISO_IR 192)
 * output never uses.
 */
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/u;

export type WorklistValueProblem = 'control-character' | 'too-long' | 'identifier-too-long';

/**
 * Maximum lengths in characters of the worklist's character-string VRs (PS3.5 Table 6.2-1); PN counts
 * per component group. UC and UT have none that matters here; DA, TM, DS are built by the box.
 */
const VR_MAX_CHARACTERS: Partial<Record<Vr, number>> = { AE: 16, CS: 16, SH: 16, LO: 64, PN: 64, UI: 64 };

/**
 * Identifiers: a modality matches, links (MPPS) and files images by them, so a cut one would name
 * another patient, order or study. Over its VR's length it is refused at intake, never truncated.
 */
const IDENTIFIER_TAGS: ReadonlySet<number> = new Set<number>([
  Tag.AccessionNumber,
  Tag.PatientID,
  Tag.IssuerOfPatientID,
  Tag.RequestedProcedureID,
  Tag.ScheduledProcedureStepID,
  Tag.StudyInstanceUID,
  Tag.PlacerOrderNumberImagingServiceRequest,
  Tag.FillerOrderNumberImagingServiceRequest,
  Tag.AdmissionID,
  Tag.ScheduledStationAETitle,
  Tag.Modality,
  Tag.CodingSchemeDesignator,
]);

/**
 * Why a text value cannot be put into the worklist attribute `tag` as the box encodes it, or undefined
 * when it can: a control character; an identifier over its VR's maximum length in characters; a value
 * longer than its VR's 16-bit Explicit VR length field. Free text over its VR's maximum length in
 * characters is no problem here: it is kept whole in the order and cut in answers (`fitToVr`).
 */
export function worklistValueProblem(tag: number, value: string): WorklistValueProblem | undefined {
  if (CONTROL_CHARACTER.test(value)) return 'control-character';
  const vr = WORKLIST_VRS.get(tag);
  if (vr !== undefined && IDENTIFIER_TAGS.has(tag) && overVrLength(vr, value)) return 'identifier-too-long';
  // Code values over 16 characters go to Long Code Value (UC), which has a 32-bit length.
  const effective = tag === Tag.CodeValue && value.length > 16 ? 'UC' : vr;
  if (effective !== undefined && !longExplicitVrs.has(effective) && utf8Length(value) > MAX_SHORT_LENGTH_VALUE_BYTES) return 'too-long';
  return undefined;
}

/** Whether a free-text value is longer than its VR allows and will be cut in worklist answers. */
export function isCutInAnswers(tag: number, value: string): boolean {
  const vr = WORKLIST_VRS.get(tag);
  return vr !== undefined && !IDENTIFIER_TAGS.has(tag) && tag !== Tag.CodeValue && overVrLength(vr, value);
}

function overVrLength(vr: Vr, value: string): boolean {
  const max = VR_MAX_CHARACTERS[vr];
  // Code units never undercount code points, so the common short value costs one comparison.
  if (max === undefined || value.length <= max) return false;
  if (vr === 'PN') return value.split('=').some((group) => codePoints(group) > max);
  return codePoints(value) > max;
}

/**
 * `value` cut to its VR's maximum length in characters (PN: each component group), at a character
 * boundary: a surrogate pair, and so a UTF-8 sequence, is never split. Identifiers are never cut.
 */
export function fitToVr(tag: number, vr: Vr, value: string): string {
  const max = VR_MAX_CHARACTERS[vr];
  if (max === undefined || value.length <= max || IDENTIFIER_TAGS.has(tag)) return value;
  if (vr === 'PN')
    return value.includes('=')
      ? value
          .split('=')
          .map((g) => cutAt(g, max))
          .join('=')
      : cutAt(value, max);
  return cutAt(value, max);
}

function cutAt(value: string, max: number): string {
  if (value.length <= max) return value;
  let units = 0;
  let count = 0;
  for (const ch of value) {
    if (count === max) return value.slice(0, units).trimEnd();
    units += ch.length;
    count++;
  }
  return value;
}

function codePoints(value: string): number {
  let n = 0;
  for (const _ of value) n++;
  return n;
}

/** UTF-8 bytes of `text` without allocating them. */
function utf8Length(text: string): number {
  let n = 0;
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
  }
  return n;
}

export interface WorklistAttributesOptions {
  /**
   * Issuer of Patient ID for patients whose RIS sent no assigning authority (PID-3.4), so modalities
   * that qualify IDs (IHE PIX-aware) still get one. Site configuration; '' or undefined = leave empty.
   */
  readonly defaultIssuerOfPatientId?: string;
  /**
   * A test or training box's mark (e.g. `TEST:`): put before the Scheduled Procedure Step Description
   * and as the step's comments, so the person at the modality cannot take the item for a real order.
   */
  readonly servedPrefix?: string;
}

/** Scheduled Procedure Step Description is LO: at most 64 characters. */
const LO_MAX = 64;

export function markedDescription(prefix: string, description: string): string {
  return `${prefix} ${description}`.slice(0, LO_MAX).trimEnd();
}

export function markedComments(prefix: string): string {
  return `${prefix} not a real order; this system is not for clinical use`;
}

/** The Modality Worklist attributes of one item, in ascending tag order. */
export function worklistItemToDataSet(item: WorklistItem, opts: WorklistAttributesOptions = {}): DataSet {
  const { order, step } = item;
  const { patient } = order;
  const mark = opts.servedPrefix;
  const issuer = (id: PatientIdentifier): string => (id.issuer !== '' ? id.issuer : (opts.defaultIssuerOfPatientId ?? ''));
  const ds: DataSet = new Map();
  // Values are decoded JavaScript strings, so the adapter encodes them as UTF-8 (PS3.5 6.1.2.3).
  put(ds, Tag.SpecificCharacterSet, 'ISO_IR 192');

  // Patient identification, demographics and medical (K.6-1 Patient modules).
  put(ds, Tag.PatientName, patient.name);
  put(ds, Tag.PatientID, patient.id);
  put(ds, Tag.IssuerOfPatientID, issuer(patient));
  put(ds, Tag.PatientBirthDate, patient.birthDate);
  put(ds, Tag.PatientSex, patient.sex);
  ds.set(Tag.OtherPatientIDsSequence, {
    vr: 'SQ',
    value: patient.otherIds.map((other) =>
      items([
        [Tag.PatientID, other.id],
        [Tag.IssuerOfPatientID, issuer(other)],
        // PS3.3 C.7.1.1: TEXT for identifiers that are character strings.
        [Tag.TypeOfPatientID, 'TEXT'],
      ]),
    ),
  });
  put(ds, Tag.MedicalAlerts, patient.medicalAlerts ?? '');
  put(ds, Tag.Allergies, patient.allergies ?? '');
  put(ds, Tag.PatientWeight, patient.weightKg ?? '');
  put(ds, Tag.PatientSize, patient.sizeM ?? '');
  put(ds, Tag.PregnancyStatus, patient.pregnancyStatus ?? '');

  // Visit.
  put(ds, Tag.AdmissionID, order.admissionId);
  put(ds, Tag.CurrentPatientLocation, order.currentPatientLocation);

  // Imaging service request.
  put(ds, Tag.AccessionNumber, order.accessionNumber);
  put(ds, Tag.ReferringPhysicianName, order.referringPhysicianName);
  put(ds, Tag.RequestingPhysician, order.requestingPhysician);
  put(ds, Tag.PlacerOrderNumberImagingServiceRequest, order.placerOrderNumber);
  put(ds, Tag.FillerOrderNumberImagingServiceRequest, order.fillerOrderNumber);

  // Requested procedure.
  put(ds, Tag.RequestedProcedureID, order.requestedProcedureId);
  put(ds, Tag.RequestedProcedureDescription, order.requestedProcedureDescription);
  ds.set(Tag.RequestedProcedureCodeSequence, {
    vr: 'SQ',
    value: order.requestedProcedureCode === undefined ? [] : [codeItem(order.requestedProcedureCode)],
  });
  put(ds, Tag.StudyInstanceUID, order.studyInstanceUid);
  put(ds, Tag.RequestedProcedurePriority, order.requestedProcedurePriority);
  put(ds, Tag.ReasonForTheRequestedProcedure, order.reasonForRequestedProcedure);
  // Type 2 in K.6-1; the RIS gives no prior study or patient SOP instance references.
  ds.set(Tag.ReferencedStudySequence, { vr: 'SQ', value: [] });
  ds.set(Tag.ReferencedPatientSequence, { vr: 'SQ', value: [] });

  // Scheduled procedure step: exactly one item per worklist item (K.6.1.2).
  const sps = items([
    [Tag.Modality, step.modality],
    [Tag.ScheduledStationAETitle, step.stationAeTitle],
    [Tag.ScheduledProcedureStepStartDate, step.startDate],
    [Tag.ScheduledProcedureStepStartTime, step.startTime],
    [Tag.ScheduledPerformingPhysicianName, step.performingPhysician],
    [Tag.ScheduledProcedureStepDescription, mark === undefined ? step.description : markedDescription(mark, step.description)],
    [Tag.ScheduledProcedureStepID, step.id],
    [Tag.ScheduledStationName, step.stationName],
    [Tag.ScheduledProcedureStepLocation, step.location],
    [Tag.ScheduledProcedureStepStatus, step.status],
  ]);
  sps.set(Tag.ScheduledProtocolCodeSequence, { vr: 'SQ', value: step.protocolCodes.map(codeItem) });
  // Type 3: only where there is something to say (a test box's mark; a downtime order tells the technologist so).
  const comments = [mark === undefined ? undefined : markedComments(mark), step.comments]
    .filter((c) => c !== undefined && c !== '')
    .join(' ');
  if (comments !== '') put(sps, Tag.CommentsOnTheScheduledProcedureStep, comments);
  ds.set(Tag.ScheduledProcedureStepSequence, { vr: 'SQ', value: [sorted(sps)] });

  return sorted(ds);
}

/** Code Sequence Macro item (PS3.3 Table 8.8-1); values over 16 characters go to Long Code Value. */
export function codeItem(code: CodedEntry): DataSet {
  const ds = items([
    code.codeValue.length > 16 ? [Tag.LongCodeValue, code.codeValue] : [Tag.CodeValue, code.codeValue],
    [Tag.CodingSchemeDesignator, code.codingSchemeDesignator],
    [Tag.CodeMeaning, code.codeMeaning],
  ]);
  // Type 1C: only when the designator alone does not identify the scheme version.
  if (code.codingSchemeVersion !== undefined && code.codingSchemeVersion !== '') {
    put(ds, Tag.CodingSchemeVersion, code.codingSchemeVersion);
  }
  return sorted(ds);
}

function put(ds: DataSet, tag: number, value: string): void {
  const vr = WORKLIST_VRS.get(tag);
  if (vr === undefined || vr === 'SQ') throw new TypeError(`no text VR registered for tag ${tag.toString(16)}`);
  ds.set(tag, { vr, value: fitToVr(tag, vr, value) } as DataElement);
}

function items(entries: readonly (readonly [number, string])[]): DataSet {
  const ds: DataSet = new Map();
  for (const [tag, value] of entries) put(ds, tag, value);
  return ds;
}

function sorted(ds: DataSet): DataSet {
  return new Map([...ds].sort(([a], [b]) => a - b));
}
