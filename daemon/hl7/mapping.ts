// Parsed HL7 message → domain commands, following IHE RAD TF-2 (RAD-1/4/12/13) and the published
// dcm4chee-arc HL7 conformance statement for the HL7 → Modality Worklist mapping:
//   ORM^O01 (v2.3.1): OBR-18 accession, OBR-19 requested procedure id, OBR-20 SPS id, OBR-24 modality,
//     OBR-27.4 (else ORC-7.4) SPS start, ZDS-1 Study Instance UID, ORC-18.1 (else OBR-21) station AE.
//   OMI^O23 (v2.5.1): one step per IPC: IPC-1 accession, IPC-2 requested procedure id, IPC-3 Study
//     Instance UID, IPC-4 SPS id, IPC-5 modality, IPC-6 protocol codes, IPC-7 station name, IPC-8 SPS
//     location, IPC-9 station AE; TQ1-7 (else OBR-27.4) SPS start, TQ1-9 priority.
//   ADT^A01/A04/A08 → patient-update; ADT^A40 → patient-merge (PID surviving, MRG-1 prior).
// Validation failures name the field (HL7 table 0357 condition + location) for the ACK's ERR segment.
import { randomUUID } from 'node:crypto';
import type { ErrorCode } from '../core/errors.ts';
import type {
  CodedEntry,
  Order,
  OrderCommand,
  OrderSource,
  OrderStatus,
  Patient,
  PatientIdentifier,
  ScheduledProcedureStep,
} from '../core/order.ts';
import { OrderStatus as Status, StepStatus } from '../core/order.ts';
import { Tag } from '../core/data-dictionary.ts';
import { assignStation, type StationAssignment } from '../core/station-assignment.ts';
import { isCutInAnswers, worklistValueProblem } from '../core/worklist-attributes.ts';
import type { ErrorLocation } from './ack.ts';
import { formatLocation, MessageErrorCondition } from './ack.ts';
import type { Hl7Message, Hl7Segment } from './message.ts';
import { cnComponentToPersonName, xcnToPersonName, xpnToPersonName } from './person-name.ts';
import { hl7DateToDa, parseHl7Timestamp } from './timestamp.ts';

export interface MappingFailure {
  readonly condition: MessageErrorCondition;
  readonly location: ErrorLocation;
  /** The box's error code for logs and audit. */
  readonly errorCode: ErrorCode;
}

export type MappingResult =
  | {
      readonly ok: true;
      readonly commands: readonly OrderCommand[];
      /** Free-text values longer than their VR allows: kept whole in the order, cut in worklist answers. */
      readonly cutValues: number;
    }
  | { readonly ok: false; readonly failure: MappingFailure };

export interface MappingContext {
  readonly receivedAt: number;
  /** Source of generated Study Instance UIDs (tests pass a fixed one). */
  readonly newStudyInstanceUid?: () => string;
  /** Station rules and default for steps the order names no station for (rules in `orderedRules` order). */
  readonly stations?: StationAssignment;
}

/** Message types and trigger events the box accepts; everything else is rejected (deny by default). */
export const SUPPORTED_MESSAGES: Readonly<Record<string, readonly string[]>> = {
  ORM: ['O01'],
  OMI: ['O23'],
  ADT: ['A01', 'A04', 'A08', 'A40'],
};
const SUPPORTED_VERSIONS = new Set(['2.3', '2.3.1', '2.4', '2.5', '2.5.1']);
/** OMI exists from v2.5 on. */
const OMI_VERSIONS = new Set(['2.5', '2.5.1']);

/** Check MSH-9 and MSH-12 against what the box supports; undefined when supported. */
export function checkMessageType(message: Hl7Message): MappingFailure | undefined {
  const code = message.messageCode;
  const events = SUPPORTED_MESSAGES[code];
  if (events === undefined) {
    return fail(MessageErrorCondition.UnsupportedMessageType, 'MSH', 1, 9, 1, 'EDGE_HL7_UNSUPPORTED_MESSAGE');
  }
  if (!events.includes(message.triggerEvent)) {
    return fail(MessageErrorCondition.UnsupportedEventCode, 'MSH', 1, 9, 2, 'EDGE_HL7_UNSUPPORTED_MESSAGE');
  }
  const version = message.versionId;
  if (!SUPPORTED_VERSIONS.has(version) || (code === 'OMI' && !OMI_VERSIONS.has(version))) {
    return fail(MessageErrorCondition.UnsupportedVersionId, 'MSH', 1, 12, undefined, 'EDGE_HL7_UNSUPPORTED_MESSAGE');
  }
  return undefined;
}

/** A Study Instance UID under the UUID root (PS3.5 B.2): `2.25.` + the UUID as one decimal integer. */
export function generateStudyInstanceUid(): string {
  return `2.25.${BigInt(`0x${randomUUID().replaceAll('-', '')}`).toString(10)}`;
}

/** Map a message whose type `checkMessageType` accepted. */
export function mapMessage(message: Hl7Message, context: MappingContext): MappingResult {
  try {
    const mapper = new Mapper(message, context);
    const commands = mapper.map();
    return { ok: true, commands, cutValues: mapper.cutValues };
  } catch (err) {
    if (err instanceof Invalid) return { ok: false, failure: err.failure };
    throw err;
  }
}

class Invalid extends Error {
  readonly failure: MappingFailure;
  constructor(failure: MappingFailure) {
    super(formatLocation(failure.location));
    this.failure = failure;
  }
}

function fail(
  condition: MessageErrorCondition,
  segment: string,
  sequence: number,
  field: number | undefined,
  component: number | undefined,
  errorCode: ErrorCode,
): MappingFailure {
  const location: ErrorLocation = {
    segment,
    sequence,
    ...(field === undefined ? {} : { field }),
    ...(component === undefined ? {} : { component }),
  };
  return { condition, location, errorCode };
}

interface OrderGroup {
  readonly orc: Hl7Segment;
  obr?: Hl7Segment;
  tq1?: Hl7Segment;
  zds?: Hl7Segment;
  readonly ipcs: Hl7Segment[];
}

const PRIORITY: Readonly<Record<string, string>> = {
  S: 'STAT',
  A: 'HIGH',
  P: 'HIGH',
  C: 'HIGH',
  R: 'ROUTINE',
  T: 'MEDIUM',
};

const ORDER_STATUS_FROM_ORC5: Readonly<Record<string, OrderStatus>> = {
  IP: Status.InProgress,
  CM: Status.Completed,
  HD: Status.Held,
  SC: Status.Scheduled,
  CA: Status.Cancelled,
  DC: Status.Discontinued,
};

const UID = /^(0|[1-9]\d*)(\.(0|[1-9]\d*))+$/;
/** Layout controls (from \.br\ and \.sp\ escapes, or sent raw): no worklist VR allows them (PS3.5 6.1.2). */
const LAYOUT_CONTROLS = /[\t\n\v\f\r]/gu;

class Mapper {
  readonly #msg: Hl7Message;
  readonly #ctx: MappingContext;
  /** Occurrence number (1-based) of each segment among segments of its name, for ERR locations. */
  readonly #sequence = new Map<Hl7Segment, number>();
  readonly #source: OrderSource;
  #cutValues = 0;

  constructor(message: Hl7Message, context: MappingContext) {
    this.#msg = message;
    this.#ctx = context;
    const counts = new Map<string, number>();
    for (const s of message.segments) {
      const n = (counts.get(s.name) ?? 0) + 1;
      counts.set(s.name, n);
      this.#sequence.set(s, n);
    }
    this.#source = {
      sendingApplication: message.msh.get(3),
      sendingFacility: message.msh.get(4),
      controlId: message.controlId,
      receivedAt: context.receivedAt,
    };
  }

  map(): OrderCommand[] {
    if (this.#msg.controlId === '') this.#required(this.#msg.msh, 10);
    switch (this.#msg.messageCode) {
      case 'ORM':
        return this.#mapOrders(false);
      case 'OMI':
        return this.#mapOrders(true);
      case 'ADT':
        return this.#msg.triggerEvent === 'A40' ? this.#mapMerge() : this.#mapPatientUpdate();
      default:
        throw new Invalid(fail(MessageErrorCondition.UnsupportedMessageType, 'MSH', 1, 9, 1, 'EDGE_HL7_UNSUPPORTED_MESSAGE'));
    }
  }

  // ---- failures -------------------------------------------------------------------------------

  #seq(segment: Hl7Segment): number {
    return this.#sequence.get(segment) ?? 1;
  }

  get cutValues(): number {
    return this.#cutValues;
  }

  #required(segment: Hl7Segment, field: number, component?: number): never {
    throw new Invalid(
      fail(MessageErrorCondition.RequiredFieldMissing, segment.name, this.#seq(segment), field, component, 'EDGE_HL7_REQUIRED_FIELD'),
    );
  }

  #malformed(segment: Hl7Segment, field: number, component?: number): never {
    throw new Invalid(
      fail(MessageErrorCondition.DataTypeError, segment.name, this.#seq(segment), field, component, 'EDGE_HL7_INVALID_FIELD'),
    );
  }

  #tooLong(segment: Hl7Segment, field: number): never {
    throw new Invalid(
      fail(MessageErrorCondition.DataTypeError, segment.name, this.#seq(segment), field, undefined, 'EDGE_HL7_VALUE_TOO_LONG'),
    );
  }

  #unknownValue(segment: Hl7Segment, field: number): never {
    throw new Invalid(
      fail(MessageErrorCondition.TableValueNotFound, segment.name, this.#seq(segment), field, undefined, 'EDGE_HL7_INVALID_FIELD'),
    );
  }

  /**
   * A value bound for the worklist attribute `tag`: layout controls become spaces; a value with any other
   * control character, or too long for the attribute's Explicit VR length field, fails at its HL7 field
   * (102, data type error), because it could never be answered to a modality.
   */
  #dicom(tag: number, value: string, segment: Hl7Segment, field: number, component?: number): string {
    const text = value.replace(LAYOUT_CONTROLS, ' ');
    const problem = worklistValueProblem(tag, text);
    if (problem === undefined) {
      if (isCutInAnswers(tag, text)) this.#cutValues++;
      return text;
    }
    const code = problem === 'identifier-too-long' ? 'EDGE_HL7_VALUE_TOO_LONG' : 'EDGE_HL7_INVALID_FIELD';
    throw new Invalid(fail(MessageErrorCondition.DataTypeError, segment.name, this.#seq(segment), field, component, code));
  }

  #missingSegment(name: string, sequence = 1): never {
    throw new Invalid(fail(MessageErrorCondition.SegmentSequenceError, name, sequence, undefined, undefined, 'EDGE_HL7_REQUIRED_FIELD'));
  }

  // ---- ADT --------------------------------------------------------------------------------------

  #mapPatientUpdate(): OrderCommand[] {
    const pid = this.#msg.segment('PID') ?? this.#missingSegment('PID');
    return [{ type: 'patient-update', patient: this.#patient(pid), source: this.#source }];
  }

  #mapMerge(): OrderCommand[] {
    // ADT_A39 structure: one or more PATIENT groups of PID [PD1] MRG [PV1].
    const commands: OrderCommand[] = [];
    let pid: Hl7Segment | undefined;
    for (const s of this.#msg.segments) {
      if (s.name === 'PID') {
        if (pid !== undefined) this.#missingSegment('MRG', this.#msg.all('MRG').length + 1);
        pid = s;
      } else if (s.name === 'MRG') {
        if (pid === undefined) this.#missingSegment('PID', this.#msg.all('PID').length + 1);
        const found = this.#identifier(s, 1);
        if (found === undefined) this.#required(s, 1);
        const prior = { id: found.id, issuer: found.issuer };
        commands.push({ type: 'patient-merge', surviving: this.#patient(pid), prior, source: this.#source });
        pid = undefined;
      }
    }
    if (pid !== undefined) this.#missingSegment('MRG', this.#msg.all('MRG').length + 1);
    if (commands.length === 0) this.#missingSegment('PID');
    return commands;
  }

  // ---- patient ----------------------------------------------------------------------------------

  /** CX (id^check digit^scheme^assigning authority (HD)): first repetition with an id. */
  #identifier(segment: Hl7Segment, field: number): PatientIdentifier | undefined {
    return this.#identifiers(segment, field)[0];
  }

  #identifiers(segment: Hl7Segment, field: number): PatientIdentifier[] {
    const ids: PatientIdentifier[] = [];
    for (const rep of segment.repetitions(field)) {
      const id = (rep[0]?.[0] ?? '').trim();
      if (id !== '') ids.push({ id, issuer: (rep[3]?.[0] ?? '').trim(), asReceived: trimEmptyTail(rep) });
    }
    return ids;
  }

  #patient(pid: Hl7Segment): Patient {
    const ids = this.#identifiers(pid, 3).map((x) => ({
      id: this.#dicom(Tag.PatientID, x.id, pid, 3, 1),
      issuer: this.#dicom(Tag.IssuerOfPatientID, x.issuer, pid, 3, 4),
      asReceived: x.asReceived,
    }));
    const primary = ids[0];
    if (primary === undefined) this.#required(pid, 3);
    const birthDate = hl7DateToDa(pid.get(7));
    if (birthDate === undefined) this.#malformed(pid, 7);
    const sex = pid.get(8).trim().toUpperCase();
    return {
      id: primary.id,
      issuer: primary.issuer,
      ...(primary.asReceived === undefined ? {} : { asReceived: primary.asReceived }),
      name: this.#dicom(Tag.PatientName, xpnToPersonName(pid, 5), pid, 5),
      birthDate,
      sex: sex === 'M' || sex === 'F' || sex === 'O' ? sex : '',
      otherIds: ids.slice(1).map(({ id, issuer }) => ({ id, issuer })),
    };
  }

  // ---- orders -----------------------------------------------------------------------------------

  #groups(): OrderGroup[] {
    const groups: OrderGroup[] = [];
    let current: OrderGroup | undefined;
    for (const s of this.#msg.segments) {
      switch (s.name) {
        case 'ORC':
          current = { orc: s, ipcs: [] };
          groups.push(current);
          break;
        case 'OBR':
        case 'TQ1':
        case 'ZDS':
        case 'IPC': {
          if (current === undefined) this.#missingSegment('ORC');
          if (s.name === 'IPC') current.ipcs.push(s);
          else if (s.name === 'OBR' && current.obr !== undefined) {
            // One OBR per ORC group in ORM_O01/OMI_O23 as the box supports them.
            this.#missingSegment('ORC', this.#msg.all('ORC').length + 1);
          } else if (s.name === 'OBR') current.obr = s;
          else if (s.name === 'TQ1') current.tq1 ??= s;
          else current.zds = s;
          break;
        }
        default:
          break;
      }
    }
    if (groups.length === 0) this.#missingSegment('ORC');
    return groups;
  }

  #mapOrders(omi: boolean): OrderCommand[] {
    const pid = this.#msg.segment('PID');
    const pv1 = this.#msg.segment('PV1');
    let patient: Patient | undefined;
    const commands: OrderCommand[] = [];
    for (const group of this.#groups()) {
      const { orc, obr } = group;
      const control = orc.get(1).trim();
      if (control === '') this.#required(orc, 1);
      const placer = orc.get(2, 1, 1).trim() || (obr?.get(2, 1, 1).trim() ?? '');
      if (placer === '') this.#required(orc, 2);
      const placerIssuer = orc.get(2, 1, 2).trim() || (obr?.get(2, 1, 2).trim() ?? '');
      let status: OrderStatus;
      switch (control) {
        case 'NW':
        case 'XO': {
          if (pid === undefined) this.#missingSegment('PID');
          patient ??= this.#patient(pid);
          commands.push({ type: 'order-upsert', order: this.#order(group, placer, placerIssuer, patient, pv1, omi) });
          continue;
        }
        case 'CA':
          status = Status.Cancelled;
          break;
        case 'DC':
          status = Status.Discontinued;
          break;
        case 'SC': {
          const s = ORDER_STATUS_FROM_ORC5[orc.get(5).trim()];
          if (s === undefined) {
            if (orc.get(5).trim() === '') this.#required(orc, 5);
            this.#unknownValue(orc, 5);
          }
          status = s;
          break;
        }
        default:
          this.#unknownValue(orc, 1);
      }
      commands.push({ type: 'order-status', placerOrderNumber: placer, placerIssuer, status, source: this.#source });
    }
    return commands;
  }

  #order(
    group: OrderGroup,
    placerOrderNumber: string,
    placerIssuer: string,
    patient: Patient,
    pv1: Hl7Segment | undefined,
    omi: boolean,
  ): Order {
    const { orc, tq1, zds, ipcs } = group;
    const obr = group.obr ?? this.#missingSegment('OBR', this.#msg.all('OBR').length + 1);
    if (obr.get(4, 1, 1).trim() === '' && obr.get(4, 1, 2).trim() === '') this.#required(obr, 4);

    // Start of the scheduled steps and priority: TQ1 in v2.5.1, the TQ of OBR-27 / ORC-7 before.
    let startSegment = obr;
    let startField = 27;
    let startValue = obr.get(27, 1, 4).trim();
    if (omi && tq1 !== undefined && tq1.get(7).trim() !== '') {
      startSegment = tq1;
      startField = 7;
      startValue = tq1.get(7).trim();
    } else if (startValue === '' && orc.get(7, 1, 4).trim() !== '') {
      startSegment = orc;
      startField = 7;
      startValue = orc.get(7, 1, 4).trim();
    }
    if (startValue === '') {
      if (omi) this.#required(tq1 ?? this.#missingSegment('TQ1', this.#msg.all('TQ1').length + 1), 7);
      this.#required(obr, 27, 4);
    }
    const start = parseHl7Timestamp(startValue);
    if (!start.ok) this.#malformed(startSegment, startField, startField === 7 && startSegment === tq1 ? undefined : 4);

    const priorityCode =
      (omi ? tq1?.get(9, 1, 1).trim() : undefined) || obr.get(27, 1, 6).trim() || orc.get(7, 1, 6).trim() || obr.get(5).trim();
    const requestedProcedureCode = this.#coded(obr, 44) ?? this.#coded(obr, 4);
    const description = this.#dicom(Tag.RequestedProcedureDescription, obr.get(4, 1, 2).trim(), obr, 4, 2);
    const protocol = obr.get(4, 1, 4).trim() !== '' ? this.#coded(obr, 4, 3) : this.#coded(obr, 4);
    const stepDescription =
      obr.get(4, 1, 5).trim() !== '' ? this.#dicom(Tag.ScheduledProcedureStepDescription, obr.get(4, 1, 5).trim(), obr, 4, 5) : description;

    const stepBase = {
      startDate: start.date,
      startTime: start.time,
      description: stepDescription,
      performingPhysician: this.#dicom(Tag.ScheduledPerformingPhysicianName, cnComponentToPersonName(obr, 34, 1), obr, 34, 1),
      status: StepStatus.Scheduled,
    };

    let accessionNumber: string;
    let requestedProcedureId: string;
    let studyInstanceUid: string;
    let studyInstanceUidGenerated = false;
    const steps: ScheduledProcedureStep[] = [];

    if (omi) {
      const first = ipcs[0] ?? this.#missingSegment('IPC', this.#msg.all('IPC').length + 1);
      accessionNumber = this.#dicom(Tag.AccessionNumber, first.get(1, 1, 1).trim(), first, 1, 1);
      requestedProcedureId = this.#dicom(Tag.RequestedProcedureID, first.get(2, 1, 1).trim(), first, 2, 1);
      studyInstanceUid = first.get(3, 1, 1).trim();
      for (const ipc of ipcs) {
        for (const field of [1, 2, 3, 4, 5]) if (ipc.get(field, 1, 1).trim() === '') this.#required(ipc, field);
        // One ORC/OBR is one requested procedure: its IPCs must agree on the procedure's identifiers.
        if (ipc.get(1, 1, 1).trim() !== accessionNumber) this.#malformed(ipc, 1);
        if (ipc.get(2, 1, 1).trim() !== requestedProcedureId) this.#malformed(ipc, 2);
        if (ipc.get(3, 1, 1).trim() !== studyInstanceUid) this.#malformed(ipc, 3);
        if (studyInstanceUid.length > MAX_UID_LENGTH) this.#tooLong(ipc, 3);
        if (!isUid(studyInstanceUid)) this.#malformed(ipc, 3);
        const protocolCodes: CodedEntry[] = [];
        for (let r = 1; r <= ipc.repetitions(6).length; r++) {
          const code = this.#coded(ipc, 6, 0, r);
          if (code !== undefined) protocolCodes.push(code);
        }
        steps.push({
          ...stepBase,
          id: this.#dicom(Tag.ScheduledProcedureStepID, ipc.get(4, 1, 1).trim(), ipc, 4, 1),
          modality: this.#dicom(Tag.Modality, ipc.get(5, 1, 1).trim(), ipc, 5, 1),
          stationName: this.#dicom(Tag.ScheduledStationName, ipc.get(7, 1, 1).trim(), ipc, 7, 1),
          location: this.#dicom(Tag.ScheduledProcedureStepLocation, ipc.get(8, 1, 1).trim(), ipc, 8, 1),
          stationAeTitle: this.#dicom(Tag.ScheduledStationAETitle, ipc.get(9).trim(), ipc, 9),
          protocolCodes: protocolCodes.length > 0 ? protocolCodes : protocol === undefined ? [] : [protocol],
        });
      }
    } else {
      const modality = this.#dicom(Tag.Modality, obr.get(24).trim(), obr, 24);
      if (modality === '') this.#required(obr, 24);
      accessionNumber = this.#dicom(Tag.AccessionNumber, obr.get(18).trim(), obr, 18);
      requestedProcedureId = this.#dicom(Tag.RequestedProcedureID, obr.get(19).trim(), obr, 19);
      studyInstanceUid = zds?.get(1, 1, 1).trim() ?? '';
      if (studyInstanceUid.length > MAX_UID_LENGTH) this.#tooLong(zds!, 1);
      if (studyInstanceUid !== '' && !isUid(studyInstanceUid)) this.#malformed(zds!, 1);
      steps.push({
        ...stepBase,
        id: this.#dicom(Tag.ScheduledProcedureStepID, obr.get(20).trim(), obr, 20),
        modality,
        stationName: '',
        location: '',
        stationAeTitle:
          orc.get(18, 1, 1).trim() !== ''
            ? this.#dicom(Tag.ScheduledStationAETitle, orc.get(18, 1, 1).trim(), orc, 18, 1)
            : this.#dicom(Tag.ScheduledStationAETitle, obr.get(21).trim(), obr, 21),
        protocolCodes: protocol === undefined ? [] : [protocol],
      });
    }
    const assigned = this.#assignStations(steps, requestedProcedureCode, pv1);
    if (studyInstanceUid === '') {
      studyInstanceUid = (this.#ctx.newStudyInstanceUid ?? generateStudyInstanceUid)();
      studyInstanceUidGenerated = true;
    }

    const reasonComponent = obr.get(31, 1, 2).trim() !== '' ? 2 : 1;
    const reason = this.#dicom(Tag.ReasonForTheRequestedProcedure, obr.get(31, 1, reasonComponent).trim(), obr, 31, reasonComponent);
    const placerFrom = orc.get(2, 1, 1).trim() !== '' ? orc : obr;
    const fillerFrom = orc.get(3, 1, 1).trim() !== '' ? orc : obr;
    const requestingFrom = xcnToPersonName(obr, 16) !== '' ? obr : orc;
    return {
      placerOrderNumber: this.#dicom(Tag.PlacerOrderNumberImagingServiceRequest, placerOrderNumber, placerFrom, 2, 1),
      placerIssuer,
      fillerOrderNumber: this.#dicom(Tag.FillerOrderNumberImagingServiceRequest, fillerFrom.get(3, 1, 1).trim(), fillerFrom, 3, 1),
      accessionNumber,
      requestedProcedureId,
      requestedProcedureDescription: description,
      requestedProcedureCode,
      requestedProcedurePriority: PRIORITY[priorityCode.toUpperCase()] ?? '',
      reasonForRequestedProcedure: reason,
      studyInstanceUid,
      studyInstanceUidGenerated,
      referringPhysicianName: pv1 === undefined ? '' : this.#dicom(Tag.ReferringPhysicianName, xcnToPersonName(pv1, 8), pv1, 8),
      requestingPhysician: this.#dicom(
        Tag.RequestingPhysician,
        xcnToPersonName(requestingFrom, requestingFrom === obr ? 16 : 12),
        requestingFrom,
        requestingFrom === obr ? 16 : 12,
      ),
      admissionId: pv1 === undefined ? '' : this.#dicom(Tag.AdmissionID, pv1.get(19, 1, 1).trim(), pv1, 19, 1),
      currentPatientLocation: pv1 === undefined ? '' : this.#dicom(Tag.CurrentPatientLocation, pointOfCare(pv1), pv1, 3),
      patient,
      steps: assigned,
      status: Status.Scheduled,
      source: this.#source,
    };
  }

  /** Steps whose order names no station get one from the site's rules, else its default (never empty). */
  #assignStations(
    steps: readonly ScheduledProcedureStep[],
    code: CodedEntry | undefined,
    pv1: Hl7Segment | undefined,
  ): ScheduledProcedureStep[] {
    const stations = this.#ctx.stations;
    if (stations === undefined) return [...steps];
    return steps.map((step) => {
      if (step.stationAeTitle !== '') return step;
      const station = assignStation(stations, {
        modality: step.modality,
        procedureCode: code?.codeValue ?? '',
        location: pv1?.get(3, 1, 1).trim() ?? '',
        sendingFacility: this.#source.sendingFacility,
      });
      return { ...step, stationAeTitle: station.aeTitle, stationName: step.stationName || station.name };
    });
  }

  /** CE/CWE (identifier^text^coding system) starting at component `offset + 1`. */
  #coded(segment: Hl7Segment, field: number, offset = 0, rep = 1): CodedEntry | undefined {
    const codeValue = segment.get(field, rep, offset + 1).trim();
    if (codeValue === '') return undefined;
    const text = (tag: number, component: number): string =>
      this.#dicom(tag, segment.get(field, rep, component).trim(), segment, field, component);
    return {
      codeValue: text(codeValue.length > 16 ? Tag.LongCodeValue : Tag.CodeValue, offset + 1),
      codeMeaning: text(Tag.CodeMeaning, offset + 2),
      // HL7 table 0396 'L' (local) when the RIS names no coding system: DICOM requires a designator.
      codingSchemeDesignator: text(Tag.CodingSchemeDesignator, offset + 3) || 'L',
    };
  }
}

/** A CX repetition without its empty trailing components and sub-components. */
function trimEmptyTail(rep: readonly (readonly string[])[]): readonly (readonly string[])[] {
  const components = rep.map((subs) => {
    const kept = [...subs];
    while (kept.length > 1 && kept[kept.length - 1] === '') kept.pop();
    return kept;
  });
  while (components.length > 1 && components[components.length - 1]!.every((x) => x === '')) components.pop();
  return components;
}

/** UI: 64 characters (PS3.5 Table 6.2-1). */
const MAX_UID_LENGTH = 64;

function isUid(value: string): boolean {
  return value.length <= MAX_UID_LENGTH && UID.test(value);
}

/** PV1-3 PL: point of care, room, bed. */
function pointOfCare(pv1: Hl7Segment): string {
  return [1, 2, 3]
    .map((c) => pv1.get(3, 1, c).trim())
    .filter((v) => v !== '')
    .join(' ');
}
