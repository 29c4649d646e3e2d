// The upstream worklist cache (the RIS's own Modality Worklist SCP, queried by the box): the query it
// sends, with explicit return keys (Scheduled Procedure Step Status among them: a provider that is not
// asked for it may leave it out, and an import that guesses the status gets it wrong); one Pending
// identifier → one order with one step, or a reason it cannot be represented (never half of it); and
// the plan that merges a whole answer into what the box holds, keyed on (Accession Number, Scheduled
// Procedure Step ID), idempotently.
import { createHash } from 'node:crypto';
import { type DataElement, type DataSet, itemsOf, textOf } from './dataset.ts';
import { DataDictionary, Tag, type Keyword } from './data-dictionary.ts';
import {
  type CodedEntry,
  type Order,
  OrderOrigin,
  OrderStatus,
  type Patient,
  type PatientIdentifier,
  type ScheduledProcedureStep,
  StepStatus,
  upstreamItemIdentity,
} from './order.ts';
import { worklistValueProblem } from './worklist-attributes.ts';

const UPSTREAM_MWL_ORIGIN = OrderOrigin.UpstreamMwl;

const TOP_LEVEL_KEYS: readonly Keyword[] = [
  'SpecificCharacterSet',
  'AccessionNumber',
  'ReferringPhysicianName',
  'PatientName',
  'PatientID',
  'IssuerOfPatientID',
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
  'RequestedProcedureID',
  'ReasonForTheRequestedProcedure',
  'RequestedProcedurePriority',
  'PlacerOrderNumberImagingServiceRequest',
  'FillerOrderNumberImagingServiceRequest',
];

const STEP_KEYS: readonly Keyword[] = [
  'Modality',
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
];

export interface UpstreamQueryFilter {
  /** Scheduled Procedure Step Start Date range (YYYYMMDD-YYYYMMDD); undefined = any date. */
  readonly startDateRange?: string;
  /** Modality; undefined = any. */
  readonly modality?: string;
}

/** The C-FIND identifier: every return key zero-length (universal matching) except the filter's keys. */
export function upstreamWorklistQuery(filter: UpstreamQueryFilter = {}): DataSet {
  const ds: DataSet = new Map();
  for (const k of TOP_LEVEL_KEYS) ds.set(DataDictionary[k].tag, empty(k));
  ds.set(Tag.SpecificCharacterSet, { vr: 'CS', value: 'ISO_IR 192' });
  const step: DataSet = new Map();
  for (const k of STEP_KEYS) step.set(DataDictionary[k].tag, empty(k));
  if (filter.startDateRange !== undefined) step.set(Tag.ScheduledProcedureStepStartDate, { vr: 'DA', value: filter.startDateRange });
  if (filter.modality !== undefined) step.set(Tag.Modality, { vr: 'CS', value: filter.modality });
  ds.set(Tag.ScheduledProcedureStepSequence, { vr: 'SQ', value: [sorted(step)] });
  return sorted(ds);
}

function empty(k: Keyword): DataElement {
  const vr = DataDictionary[k].vr;
  return (vr === 'SQ' ? { vr, value: [] } : { vr, value: '' }) as DataElement;
}

function sorted(ds: DataSet): DataSet {
  return new Map([...ds].sort(([a], [b]) => a - b));
}

/** Why a pulled item was not taken: the attribute at fault and what is wrong with it. */
export interface PulledItemProblem {
  readonly problem:
    | 'missing-key'
    | 'not-one-step'
    | 'multiple-values'
    | 'control-character'
    | 'too-long'
    | 'identifier-too-long'
    | 'bad-date'
    | 'bad-time'
    | 'bad-uid'
    | 'bad-sex'
    | 'unknown-status'
    | 'undecodable'
    | 'unsupported-character-set'
    | 'conflicting-duplicates';
  readonly attribute: string;
  /** For the operator's report (the control API), never for logs. */
  readonly accessionNumber: string;
  readonly spsId: string;
}

export interface PulledItem {
  readonly identity: string;
  readonly digest: string;
  readonly order: Order;
}

/** SPS Status values (PS3.3 C.4.10) and what each means for the item on the box's worklist. */
const STATUS_OF: Readonly<Record<string, { step: StepStatus; order: OrderStatus }>> = {
  '': { step: StepStatus.Scheduled, order: OrderStatus.Scheduled },
  SCHEDULED: { step: StepStatus.Scheduled, order: OrderStatus.Scheduled },
  ARRIVED: { step: StepStatus.Arrived, order: OrderStatus.Scheduled },
  READY: { step: StepStatus.Ready, order: OrderStatus.Scheduled },
  STARTED: { step: StepStatus.Started, order: OrderStatus.InProgress },
  DEPARTED: { step: StepStatus.Departed, order: OrderStatus.InProgress },
  // Not defined for MWL, but providers (dcm4chee among them) return them: the item leaves the worklist.
  COMPLETED: { step: StepStatus.Departed, order: OrderStatus.Completed },
  DISCONTINUED: { step: StepStatus.Departed, order: OrderStatus.Discontinued },
  CANCELED: { step: StepStatus.Scheduled, order: OrderStatus.Cancelled },
  CANCELLED: { step: StepStatus.Scheduled, order: OrderStatus.Cancelled },
};

class Unrepresentable extends Error {
  readonly problem: PulledItemProblem['problem'];
  readonly attribute: string;
  constructor(problem: PulledItemProblem['problem'], attribute: string) {
    super(`${attribute}: ${problem}`);
    this.problem = problem;
    this.attribute = attribute;
  }
}

const SINGLE_VALUED = new Set<number>([
  Tag.AccessionNumber,
  Tag.PatientID,
  Tag.IssuerOfPatientID,
  Tag.PatientBirthDate,
  Tag.PatientSex,
  Tag.StudyInstanceUID,
  Tag.RequestedProcedureID,
  Tag.Modality,
  Tag.ScheduledProcedureStepID,
  Tag.ScheduledStationAETitle,
  Tag.ScheduledProcedureStepStartDate,
  Tag.ScheduledProcedureStepStartTime,
  Tag.ScheduledProcedureStepStatus,
  Tag.PlacerOrderNumberImagingServiceRequest,
  Tag.FillerOrderNumberImagingServiceRequest,
]);

function keywordOf(tag: number): string {
  for (const [k, d] of Object.entries(DataDictionary)) if (d.tag === tag) return k;
  return `(${tag.toString(16).padStart(8, '0')})`;
}

function text(ds: DataSet, tag: number): string {
  const v = (textOf(ds, tag) ?? '').trim();
  const problem = worklistValueProblem(tag, v);
  if (problem !== undefined) throw new Unrepresentable(problem, keywordOf(tag));
  if (SINGLE_VALUED.has(tag) && v.includes('\\')) throw new Unrepresentable('multiple-values', keywordOf(tag));
  return v;
}

function required(ds: DataSet, tag: number): string {
  const v = text(ds, tag);
  if (v === '') throw new Unrepresentable('missing-key', keywordOf(tag));
  return v;
}

function checked(ds: DataSet, tag: number, pattern: RegExp, problem: PulledItemProblem['problem']): string {
  const v = text(ds, tag);
  if (v !== '' && !pattern.test(v)) throw new Unrepresentable(problem, keywordOf(tag));
  return v;
}

const DATE = /^\d{8}$/;
const TIME = /^\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?$/;
const UID = /^(0|[1-9]\d*)(\.(0|[1-9]\d*))+$/;

function code(item: DataSet): CodedEntry {
  const long = text(item, Tag.LongCodeValue);
  const version = text(item, Tag.CodingSchemeVersion);
  return {
    codeValue: long !== '' ? long : text(item, Tag.CodeValue),
    codingSchemeDesignator: text(item, Tag.CodingSchemeDesignator),
    codeMeaning: text(item, Tag.CodeMeaning),
    ...(version === '' ? {} : { codingSchemeVersion: version }),
  };
}

function optionalText(ds: DataSet, tag: number): string | undefined {
  const v = text(ds, tag);
  return v === '' ? undefined : v;
}

/** A Study Instance UID for an item the provider sent without one, the same on every pull (PS3.5 B.2). */
function derivedStudyUid(provider: string, accessionNumber: string): string {
  const h = createHash('sha256').update(`${provider}\u0000${accessionNumber}`).digest('hex').slice(0, 32);
  return `2.25.${BigInt(`0x${h}`).toString(10)}`;
}

/**
 * One Pending identifier of the provider as an order with one step, or why it cannot be represented.
 * `provider` names the source (its AE title) in the order's source and in derived UIDs.
 */
export function pulledItemOf(ds: DataSet, provider: string, receivedAt: number): PulledItem | PulledItemProblem {
  const accessionNumber = (textOf(ds, Tag.AccessionNumber) ?? '').trim();
  const steps = itemsOf(ds, Tag.ScheduledProcedureStepSequence) ?? [];
  const spsId = steps.length === 1 ? (textOf(steps[0]!, Tag.ScheduledProcedureStepID) ?? '').trim() : '';
  try {
    if (steps.length !== 1) throw new Unrepresentable('not-one-step', 'ScheduledProcedureStepSequence');
    const sps = steps[0]!;
    const accession = required(ds, Tag.AccessionNumber);
    const stepId = required(sps, Tag.ScheduledProcedureStepID);
    const statusText = text(sps, Tag.ScheduledProcedureStepStatus).toUpperCase();
    const status = STATUS_OF[statusText];
    if (status === undefined) throw new Unrepresentable('unknown-status', 'ScheduledProcedureStepStatus');
    const sex = text(ds, Tag.PatientSex).toUpperCase();
    if (!['', 'M', 'F', 'O'].includes(sex)) throw new Unrepresentable('bad-sex', 'PatientSex');
    const issuerOf = (item: DataSet): PatientIdentifier => ({ id: text(item, Tag.PatientID), issuer: text(item, Tag.IssuerOfPatientID) });
    const weightKg = optionalText(ds, Tag.PatientWeight);
    const sizeM = optionalText(ds, Tag.PatientSize);
    const medicalAlerts = optionalText(ds, Tag.MedicalAlerts);
    const allergies = optionalText(ds, Tag.Allergies);
    const pregnancyStatus = optionalText(ds, Tag.PregnancyStatus);
    const patient: Patient = {
      id: required(ds, Tag.PatientID),
      issuer: text(ds, Tag.IssuerOfPatientID),
      name: text(ds, Tag.PatientName),
      birthDate: checked(ds, Tag.PatientBirthDate, DATE, 'bad-date'),
      sex,
      otherIds: (itemsOf(ds, Tag.OtherPatientIDsSequence) ?? []).map(issuerOf),
      ...(medicalAlerts === undefined ? {} : { medicalAlerts }),
      ...(allergies === undefined ? {} : { allergies }),
      ...(weightKg === undefined ? {} : { weightKg }),
      ...(sizeM === undefined ? {} : { sizeM }),
      ...(pregnancyStatus === undefined ? {} : { pregnancyStatus }),
    };
    const step: ScheduledProcedureStep = {
      id: stepId,
      modality: required(sps, Tag.Modality),
      stationAeTitle: text(sps, Tag.ScheduledStationAETitle),
      stationName: text(sps, Tag.ScheduledStationName),
      location: text(sps, Tag.ScheduledProcedureStepLocation),
      startDate: checked(sps, Tag.ScheduledProcedureStepStartDate, DATE, 'bad-date'),
      startTime: checked(sps, Tag.ScheduledProcedureStepStartTime, TIME, 'bad-time'),
      description: text(sps, Tag.ScheduledProcedureStepDescription),
      protocolCodes: (itemsOf(sps, Tag.ScheduledProtocolCodeSequence) ?? []).map(code),
      performingPhysician: text(sps, Tag.ScheduledPerformingPhysicianName),
      status: status.step,
    };
    const studyUid = checked(ds, Tag.StudyInstanceUID, UID, 'bad-uid');
    const procedureCode = itemsOf(ds, Tag.RequestedProcedureCodeSequence)?.[0];
    const order: Order = {
      placerOrderNumber: text(ds, Tag.PlacerOrderNumberImagingServiceRequest),
      placerIssuer: '',
      fillerOrderNumber: text(ds, Tag.FillerOrderNumberImagingServiceRequest),
      accessionNumber: accession,
      requestedProcedureId: text(ds, Tag.RequestedProcedureID),
      requestedProcedureDescription: text(ds, Tag.RequestedProcedureDescription),
      requestedProcedureCode: procedureCode === undefined ? undefined : code(procedureCode),
      requestedProcedurePriority: text(ds, Tag.RequestedProcedurePriority),
      reasonForRequestedProcedure: text(ds, Tag.ReasonForTheRequestedProcedure),
      studyInstanceUid: studyUid !== '' ? studyUid : derivedStudyUid(provider, accession),
      studyInstanceUidGenerated: studyUid === '',
      referringPhysicianName: text(ds, Tag.ReferringPhysicianName),
      requestingPhysician: text(ds, Tag.RequestingPhysician),
      admissionId: text(ds, Tag.AdmissionID),
      currentPatientLocation: text(ds, Tag.CurrentPatientLocation),
      patient,
      steps: [step],
      status: status.order,
      source: { sendingApplication: UPSTREAM_MWL_ORIGIN, sendingFacility: provider, controlId: '', receivedAt },
      origin: UPSTREAM_MWL_ORIGIN,
    };
    // The digest covers what the provider said, not when: an unchanged item is not rewritten.
    const { source: _source, ...content } = order;
    const digest = createHash('sha256').update(JSON.stringify(content)).digest('hex');
    return { identity: upstreamItemIdentity(accession, stepId), digest, order };
  } catch (err) {
    if (!(err instanceof Unrepresentable)) throw err;
    return { problem: err.problem, attribute: err.attribute, accessionNumber, spsId };
  }
}

export function isPulledItemProblem(x: PulledItem | PulledItemProblem): x is PulledItemProblem {
  return 'problem' in x;
}

/** What the box remembers of each pulled item between queries (sealed in the store). */
export interface UpstreamItemRecord {
  readonly identity: string;
  readonly digest: string;
  /** When a complete answer first lacked the item; undefined while the provider lists it. */
  readonly missingSince?: number;
}

export type UpstreamChange =
  /** Write the order (new or changed) and its record. */
  | { readonly type: 'put'; readonly order: Order; readonly record: UpstreamItemRecord }
  /** Only the record changes (the item went missing, or came back unchanged). */
  | { readonly type: 'mark'; readonly record: UpstreamItemRecord }
  /** The order and its record leave. */
  | { readonly type: 'remove'; readonly identity: string };

export interface UpstreamMergeCounts {
  readonly created: number;
  readonly updated: number;
  readonly removed: number;
  readonly unchanged: number;
  /** Missing from the provider's answer, kept until the removal delay has passed. */
  readonly pendingRemoval: number;
  /** Not taken because an order from HL7 has the same key. */
  readonly shadowed: number;
  readonly skipped: number;
}

export interface UpstreamMergePlan {
  readonly changes: readonly UpstreamChange[];
  readonly counts: UpstreamMergeCounts;
  readonly skipped: readonly PulledItemProblem[];
}

export interface UpstreamMergeInput {
  readonly answer: readonly (PulledItem | PulledItemProblem)[];
  /** True when the provider ended with Success: only then may absence mean removal. */
  readonly complete: boolean;
  readonly held: ReadonlyMap<string, UpstreamItemRecord>;
  /** Identities an HL7-fed order already has (it takes precedence). */
  readonly coveredByHl7: ReadonlySet<string>;
  readonly now: number;
  readonly removeAfterMs: number;
}

/**
 * The changes that make the box's cache agree with one answer. Idempotent: planning the same answer
 * against the result changes nothing. Two different items under one key are both refused and the held
 * item is kept as it is; a skipped item is never treated as removed.
 */
export function planUpstreamMerge(input: UpstreamMergeInput): UpstreamMergePlan {
  const skipped: PulledItemProblem[] = [];
  const byIdentity = new Map<string, PulledItem>();
  const conflicting = new Set<string>();
  const present = new Set<string>();
  for (const a of input.answer) {
    if (isPulledItemProblem(a)) {
      skipped.push(a);
      // An item that names its key but cannot be read is still there upstream.
      if (a.accessionNumber !== '' && a.spsId !== '') present.add(upstreamItemIdentity(a.accessionNumber, a.spsId));
      continue;
    }
    present.add(a.identity);
    const seen = byIdentity.get(a.identity);
    if (seen === undefined) {
      if (!conflicting.has(a.identity)) byIdentity.set(a.identity, a);
    } else if (seen.digest !== a.digest) {
      byIdentity.delete(a.identity);
      conflicting.add(a.identity);
      skipped.push({
        problem: 'conflicting-duplicates',
        attribute: 'AccessionNumber+ScheduledProcedureStepID',
        accessionNumber: a.order.accessionNumber,
        spsId: a.order.steps[0]?.id ?? '',
      });
    }
  }
  const changes: UpstreamChange[] = [];
  let created = 0;
  let updated = 0;
  let removed = 0;
  let unchanged = 0;
  let pendingRemoval = 0;
  let shadowed = 0;
  for (const [identity, item] of byIdentity) {
    const held = input.held.get(identity);
    if (input.coveredByHl7.has(identity)) {
      shadowed++;
      if (held !== undefined) changes.push({ type: 'remove', identity });
      continue;
    }
    if (held === undefined) {
      created++;
      changes.push({ type: 'put', order: item.order, record: { identity, digest: item.digest } });
    } else if (held.digest !== item.digest) {
      updated++;
      changes.push({ type: 'put', order: item.order, record: { identity, digest: item.digest } });
    } else {
      unchanged++;
      if (held.missingSince !== undefined) changes.push({ type: 'mark', record: { identity, digest: held.digest } });
    }
  }
  if (input.complete) {
    for (const [identity, held] of input.held) {
      if (present.has(identity)) continue;
      const since = held.missingSince ?? input.now;
      if (input.now - since >= input.removeAfterMs) {
        removed++;
        changes.push({ type: 'remove', identity });
      } else {
        pendingRemoval++;
        if (held.missingSince === undefined) changes.push({ type: 'mark', record: { ...held, missingSince: input.now } });
      }
    }
  }
  return { changes, counts: { created, updated, removed, unchanged, pendingRemoval, shadowed, skipped: skipped.length }, skipped };
}
