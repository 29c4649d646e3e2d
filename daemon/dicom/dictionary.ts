// The data dictionary subset the box needs to read Implicit VR Little Endian, which carries no VRs on
// the wire (PS3.5 A.1). Entries follow PS3.6 (data elements) and PS3.7 E.1 (command elements); tags
// missing here decode as UN, which keeps their bytes intact for re-encoding.
import type { Vr } from '../core/dataset.ts';
import { Tag } from '../core/dataset.ts';

const worklistVrs: Readonly<Record<keyof typeof Tag, Vr>> = {
  SpecificCharacterSet: 'CS',
  SOPClassUID: 'UI',
  SOPInstanceUID: 'UI',
  StudyDate: 'DA',
  StudyTime: 'TM',
  AccessionNumber: 'SH',
  IssuerOfAccessionNumberSequence: 'SQ',
  Modality: 'CS',
  InstitutionName: 'LO',
  ReferringPhysicianName: 'PN',
  CodeValue: 'SH',
  CodingSchemeDesignator: 'SH',
  CodingSchemeVersion: 'SH',
  CodeMeaning: 'LO',
  TimezoneOffsetFromUTC: 'SH',
  StudyDescription: 'LO',
  ReferencedStudySequence: 'SQ',
  ReferencedPatientSequence: 'SQ',
  ReferencedSOPClassUID: 'UI',
  ReferencedSOPInstanceUID: 'UI',
  PatientName: 'PN',
  PatientID: 'LO',
  IssuerOfPatientID: 'LO',
  PatientBirthDate: 'DA',
  PatientSex: 'CS',
  OtherPatientIDsSequence: 'SQ',
  PatientWeight: 'DS',
  PatientSize: 'DS',
  MedicalAlerts: 'LO',
  Allergies: 'LO',
  PregnancyStatus: 'US',
  PatientComments: 'LT',
  StudyInstanceUID: 'UI',
  StudyID: 'SH',
  RequestingPhysician: 'PN',
  RequestingService: 'LO',
  RequestedProcedureDescription: 'LO',
  RequestedProcedureCodeSequence: 'SQ',
  AdmissionID: 'LO',
  CurrentPatientLocation: 'LO',
  ScheduledStationAETitle: 'AE',
  ScheduledProcedureStepStartDate: 'DA',
  ScheduledProcedureStepStartTime: 'TM',
  ScheduledProcedureStepEndDate: 'DA',
  ScheduledProcedureStepEndTime: 'TM',
  ScheduledPerformingPhysicianName: 'PN',
  ScheduledProcedureStepDescription: 'LO',
  ScheduledProtocolCodeSequence: 'SQ',
  ScheduledProcedureStepID: 'SH',
  ScheduledStationName: 'SH',
  ScheduledProcedureStepLocation: 'SH',
  PreMedication: 'LO',
  ScheduledProcedureStepStatus: 'CS',
  ScheduledProcedureStepSequence: 'SQ',
  CommentsOnTheScheduledProcedureStep: 'LT',
  RequestedProcedureID: 'SH',
  ReasonForTheRequestedProcedure: 'LO',
  RequestedProcedurePriority: 'SH',
  PatientTransportArrangements: 'LO',
  PlacerOrderNumberImagingServiceRequest: 'LO',
  FillerOrderNumberImagingServiceRequest: 'LO',
  ConfidentialityConstraintOnPatientDataDescription: 'LO',
};

/** Command set elements (PS3.7 E.1), named as in the standard. */
export const CommandTag = {
  CommandGroupLength: 0x00000000,
  AffectedSOPClassUID: 0x00000002,
  RequestedSOPClassUID: 0x00000003,
  CommandField: 0x00000100,
  MessageID: 0x00000110,
  MessageIDBeingRespondedTo: 0x00000120,
  MoveDestination: 0x00000600,
  Priority: 0x00000700,
  CommandDataSetType: 0x00000800,
  Status: 0x00000900,
  OffendingElement: 0x00000901,
  ErrorComment: 0x00000902,
  ErrorID: 0x00000903,
  AffectedSOPInstanceUID: 0x00001000,
  RequestedSOPInstanceUID: 0x00001001,
  EventTypeID: 0x00001002,
  AttributeIdentifierList: 0x00001005,
  ActionTypeID: 0x00001008,
  NumberOfRemainingSuboperations: 0x00001020,
  NumberOfCompletedSuboperations: 0x00001021,
  NumberOfFailedSuboperations: 0x00001022,
  NumberOfWarningSuboperations: 0x00001023,
  MoveOriginatorApplicationEntityTitle: 0x00001030,
  MoveOriginatorMessageID: 0x00001031,
} as const;

const commandVrs: Readonly<Record<keyof typeof CommandTag, Vr>> = {
  CommandGroupLength: 'UL',
  AffectedSOPClassUID: 'UI',
  RequestedSOPClassUID: 'UI',
  CommandField: 'US',
  MessageID: 'US',
  MessageIDBeingRespondedTo: 'US',
  MoveDestination: 'AE',
  Priority: 'US',
  CommandDataSetType: 'US',
  Status: 'US',
  OffendingElement: 'AT',
  ErrorComment: 'LO',
  ErrorID: 'US',
  AffectedSOPInstanceUID: 'UI',
  RequestedSOPInstanceUID: 'UI',
  EventTypeID: 'US',
  AttributeIdentifierList: 'AT',
  ActionTypeID: 'US',
  NumberOfRemainingSuboperations: 'US',
  NumberOfCompletedSuboperations: 'US',
  NumberOfFailedSuboperations: 'US',
  NumberOfWarningSuboperations: 'US',
  MoveOriginatorApplicationEntityTitle: 'AE',
  MoveOriginatorMessageID: 'US',
};

// Common elements met in worklist queries, MPPS and storage that `Tag` does not name.
const otherVrs: ReadonlyArray<readonly [number, Vr]> = [
  [0x00080008, 'CS'], // ImageType
  [0x00080012, 'DA'], // InstanceCreationDate
  [0x00080013, 'TM'], // InstanceCreationTime
  [0x00080014, 'UI'], // InstanceCreatorUID
  [0x00080021, 'DA'], // SeriesDate
  [0x00080022, 'DA'], // AcquisitionDate
  [0x00080023, 'DA'], // ContentDate
  [0x00080031, 'TM'], // SeriesTime
  [0x00080032, 'TM'], // AcquisitionTime
  [0x00080033, 'TM'], // ContentTime
  [0x00080052, 'CS'], // QueryRetrieveLevel
  [0x00080054, 'AE'], // RetrieveAETitle
  [0x00080056, 'CS'], // InstanceAvailability
  [0x00080061, 'CS'], // ModalitiesInStudy
  [0x00080070, 'LO'], // Manufacturer
  [0x00080081, 'ST'], // InstitutionAddress
  [0x00080092, 'ST'], // ReferringPhysicianAddress
  [0x00080094, 'SH'], // ReferringPhysicianTelephoneNumbers
  [0x00080096, 'SQ'], // ReferringPhysicianIdentificationSequence
  [0x00080105, 'CS'], // MappingResource
  [0x00080106, 'DT'], // ContextGroupVersion
  [0x0008010b, 'CS'], // ContextGroupExtensionFlag
  [0x0008010f, 'CS'], // ContextIdentifier
  [0x00081010, 'SH'], // StationName
  [0x00081032, 'SQ'], // ProcedureCodeSequence
  [0x0008103e, 'LO'], // SeriesDescription
  [0x00081040, 'LO'], // InstitutionalDepartmentName
  [0x00081050, 'PN'], // PerformingPhysicianName
  [0x00081060, 'PN'], // NameOfPhysiciansReadingStudy
  [0x00081070, 'PN'], // OperatorsName
  [0x00081080, 'LO'], // AdmittingDiagnosesDescription
  [0x00081084, 'SQ'], // AdmittingDiagnosesCodeSequence
  [0x00081090, 'LO'], // ManufacturerModelName
  [0x00081111, 'SQ'], // ReferencedPerformedProcedureStepSequence
  [0x00081115, 'SQ'], // ReferencedSeriesSequence
  [0x00081140, 'SQ'], // ReferencedImageSequence
  [0x00081199, 'SQ'], // ReferencedSOPSequence
  [0x00100024, 'SQ'], // IssuerOfPatientIDQualifiersSequence
  [0x00100032, 'TM'], // PatientBirthTime
  [0x00101000, 'LO'], // OtherPatientIDs
  [0x00101001, 'PN'], // OtherPatientNames
  [0x00101005, 'PN'], // PatientBirthName
  [0x00101010, 'AS'], // PatientAge
  [0x00101040, 'LO'], // PatientAddress
  [0x00101060, 'PN'], // PatientMotherBirthName
  [0x00102154, 'SH'], // PatientTelephoneNumbers
  [0x00102160, 'SH'], // EthnicGroup
  [0x00102180, 'SH'], // Occupation
  [0x001021a0, 'CS'], // SmokingStatus
  [0x001021b0, 'LT'], // AdditionalPatientHistory
  [0x001021d0, 'DA'], // LastMenstrualDate
  [0x001021f0, 'LO'], // PatientReligiousPreference
  [0x00180015, 'CS'], // BodyPartExamined
  [0x0020000e, 'UI'], // SeriesInstanceUID
  [0x00200011, 'IS'], // SeriesNumber
  [0x00200013, 'IS'], // InstanceNumber
  [0x00280002, 'US'], // SamplesPerPixel
  [0x00280004, 'CS'], // PhotometricInterpretation
  [0x00280010, 'US'], // Rows
  [0x00280011, 'US'], // Columns
  [0x00280100, 'US'], // BitsAllocated
  [0x00280101, 'US'], // BitsStored
  [0x00280102, 'US'], // HighBit
  [0x00280103, 'US'], // PixelRepresentation
  [0x0032000a, 'CS'], // StudyStatusID
  [0x00321000, 'DA'], // ScheduledStudyStartDate
  [0x00321001, 'TM'], // ScheduledStudyStartTime
  [0x00321020, 'LO'], // ScheduledStudyLocation
  [0x00321021, 'AE'], // ScheduledStudyLocationAETitle
  [0x00321034, 'SQ'], // RequestingServiceCodeSequence
  [0x00324000, 'LT'], // StudyComments
  [0x00380008, 'CS'], // VisitStatusID
  [0x00380014, 'SQ'], // IssuerOfAdmissionIDSequence
  [0x00380050, 'LO'], // SpecialNeeds
  [0x00380500, 'LO'], // PatientState
  [0x00400006, 'PN'], // ScheduledPerformingPhysicianName (kept here too for clarity)
  [0x0040000a, 'SQ'], // StageCodeSequence
  [0x0040000b, 'SQ'], // ScheduledPerformingPhysicianIdentificationSequence
  [0x00400026, 'SQ'], // OrderPlacerIdentifierSequence
  [0x00400027, 'SQ'], // OrderFillerIdentifierSequence
  [0x00400031, 'UT'], // LocalNamespaceEntityID
  [0x00400032, 'UT'], // UniversalEntityID
  [0x00400033, 'CS'], // UniversalEntityIDType
  [0x00400241, 'AE'], // PerformedStationAETitle
  [0x00400242, 'SH'], // PerformedStationName
  [0x00400243, 'SH'], // PerformedLocation
  [0x00400244, 'DA'], // PerformedProcedureStepStartDate
  [0x00400245, 'TM'], // PerformedProcedureStepStartTime
  [0x00400250, 'DA'], // PerformedProcedureStepEndDate
  [0x00400251, 'TM'], // PerformedProcedureStepEndTime
  [0x00400252, 'CS'], // PerformedProcedureStepStatus
  [0x00400253, 'SH'], // PerformedProcedureStepID
  [0x00400254, 'LO'], // PerformedProcedureStepDescription
  [0x00400255, 'LO'], // PerformedProcedureTypeDescription
  [0x00400260, 'SQ'], // PerformedProtocolCodeSequence
  [0x00400270, 'SQ'], // ScheduledStepAttributesSequence
  [0x00400280, 'ST'], // CommentsOnThePerformedProcedureStep
  [0x00400281, 'SQ'], // PerformedProcedureStepDiscontinuationReasonCodeSequence
  [0x00400340, 'SQ'], // PerformedSeriesSequence
  [0x00401005, 'LO'], // RequestedProcedureLocation
  [0x00401008, 'LO'], // ConfidentialityCode
  [0x00401010, 'PN'], // NamesOfIntendedRecipientsOfResults
  [0x00401400, 'LT'], // RequestedProcedureComments
  [0x00402001, 'LO'], // ReasonForTheImagingServiceRequest
  [0x00402004, 'DA'], // IssueDateOfImagingServiceRequest
  [0x00402005, 'TM'], // IssueTimeOfImagingServiceRequest
  [0x00402008, 'PN'], // OrderEnteredBy
  [0x00402009, 'SH'], // OrderEntererLocation
  [0x00402010, 'SH'], // OrderCallbackPhoneNumber
  [0x00402400, 'LT'], // ImagingServiceRequestComments
  [0x0040a370, 'SQ'], // ReferencedRequestSequence
  [0x7fe00010, 'OW'], // PixelData
];

const dictionary: ReadonlyMap<number, Vr> = new Map<number, Vr>([
  ...(Object.keys(worklistVrs) as (keyof typeof Tag)[]).map((k) => [Tag[k], worklistVrs[k]] as const),
  ...(Object.keys(commandVrs) as (keyof typeof CommandTag)[]).map((k) => [CommandTag[k], commandVrs[k]] as const),
  ...otherVrs,
]);

/** The VR Implicit VR Little Endian implies for `tag`; UN when unknown or private. */
export function vrOf(tag: number): Vr {
  const group = tag >>> 16;
  if ((group & 1) === 1) return 'UN';
  if ((tag & 0xffff) === 0) return 'UL'; // group length (PS3.5 7.2)
  return dictionary.get(tag) ?? 'UN';
}
