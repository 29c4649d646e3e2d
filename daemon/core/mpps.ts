// Modality Performed Procedure Step (PS3.4 Annex F.7): the record the box keeps of a procedure step a
// modality performed, and its state machine. N-CREATE starts it IN PROGRESS; N-SET may change its
// attributes while it is IN PROGRESS and end it COMPLETED or DISCONTINUED, after which it is final.
// The dicom adapter decodes the wire and maps refusals to DIMSE statuses; nothing here knows the wire.
import type { CodedEntry, PatientIdentifier } from './order.ts';
import { type DataSet, itemsOf, textOf } from './dataset.ts';
import { Tag } from './data-dictionary.ts';
import type { NewOutboxEntry } from './outbox.ts';

export const MppsSopClass = '1.2.840.10008.3.1.2.3.3';

export const PpsStatus = { InProgress: 'IN PROGRESS', Completed: 'COMPLETED', Discontinued: 'DISCONTINUED' } as const;
export type PpsStatus = (typeof PpsStatus)[keyof typeof PpsStatus];
const FINAL: ReadonlySet<string> = new Set([PpsStatus.Completed, PpsStatus.Discontinued]);

/** One item of the Scheduled Step Attributes Sequence: what the modality says it performed. */
export interface ScheduledStepRef {
  readonly accessionNumber: string;
  readonly requestedProcedureId: string;
  readonly scheduledProcedureStepId: string;
  readonly studyInstanceUid: string;
}

/** The order a scheduled step reference resolved to, with what a status message to the RIS carries. */
export interface LinkedOrder {
  readonly placerOrderNumber: string;
  readonly placerIssuer: string;
  readonly fillerOrderNumber: string;
  readonly accessionNumber: string;
  readonly requestedProcedureId: string;
  readonly requestedProcedureDescription: string;
  readonly requestedProcedureCode: CodedEntry | undefined;
  readonly scheduledProcedureStepId: string;
  readonly studyInstanceUid: string;
  readonly patient: PatientIdentifier & { readonly name: string };
}

export interface PerformedSeries {
  readonly seriesInstanceUid: string;
  readonly instances: number;
}

export interface PerformedProcedureStep {
  readonly sopInstanceUid: string;
  readonly status: PpsStatus;
  readonly ppsId: string;
  readonly modality: string;
  readonly performedStationAeTitle: string;
  readonly startDate: string;
  readonly startTime: string;
  readonly endDate: string;
  readonly endTime: string;
  readonly description: string;
  readonly scheduledSteps: readonly ScheduledStepRef[];
  readonly performedSeries: readonly PerformedSeries[];
  readonly discontinuationReason: CodedEntry | undefined;
  /** Orders the scheduled steps resolved to when the step was created; empty when unscheduled. */
  readonly linkedOrders: readonly LinkedOrder[];
  /** No scheduled step matched an order the box holds: kept, flagged, and not reported to the RIS. */
  readonly unscheduled: boolean;
  /** AE title of the association that created it. */
  readonly createdBy: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** Why a request is refused; the dicom adapter maps each reason to its DIMSE status. */
export const MppsRefusalReason = {
  /** N-CREATE of a SOP Instance UID the box already holds (0x0111). */
  Duplicate: 'duplicate',
  /** N-SET of an unknown SOP Instance UID (0x0112). */
  NoSuchInstance: 'no-such-instance',
  /** N-SET after COMPLETED or DISCONTINUED (0x0110, Error ID 0xC310). */
  FinalState: 'final-state',
  /** An attribute has a value the state machine does not allow (0x0106). */
  InvalidValue: 'invalid-value',
  /** A required attribute is missing (0x0120). */
  MissingAttribute: 'missing-attribute',
  /** N-SET of an attribute that may only be set by N-CREATE (0x0105). */
  NotSettable: 'not-settable',
} as const;
export type MppsRefusalReason = (typeof MppsRefusalReason)[keyof typeof MppsRefusalReason];

export interface MppsRefusal {
  readonly refused: MppsRefusalReason;
  /** Without patient data; becomes the DIMSE Error Comment. */
  readonly comment: string;
  /** The offending attribute, when there is one. */
  readonly tag?: number;
}

export function isMppsRefusal(x: unknown): x is MppsRefusal {
  return typeof x === 'object' && x !== null && 'refused' in x;
}

/** Attributes N-SET may not carry (PS3.4 Table F.7.2-1: "Not allowed" in N-SET). */
const NOT_SETTABLE: readonly number[] = [
  Tag.ScheduledStepAttributesSequence,
  Tag.PerformedProcedureStepID,
  Tag.PerformedProcedureStepStartDate,
  Tag.PerformedProcedureStepStartTime,
  Tag.PerformedStationAETitle,
  Tag.PatientID,
  Tag.SOPInstanceUID,
];

function text(ds: DataSet, tag: number): string {
  return (textOf(ds, tag) ?? '').trim();
}

function codedEntry(ds: DataSet | undefined): CodedEntry | undefined {
  if (ds === undefined) return undefined;
  const codeValue = text(ds, Tag.CodeValue);
  if (codeValue === '') return undefined;
  const version = text(ds, Tag.CodingSchemeVersion);
  return {
    codeValue,
    codingSchemeDesignator: text(ds, Tag.CodingSchemeDesignator),
    codeMeaning: text(ds, Tag.CodeMeaning),
    ...(version === '' ? {} : { codingSchemeVersion: version }),
  };
}

function performedSeriesOf(ds: DataSet): PerformedSeries[] {
  return (itemsOf(ds, Tag.PerformedSeriesSequence) ?? []).map((item) => ({
    seriesInstanceUid: text(item, Tag.SeriesInstanceUID),
    instances:
      (itemsOf(item, Tag.ReferencedImageSequence)?.length ?? 0) +
      (itemsOf(item, Tag.ReferencedNonImageCompositeSOPInstanceSequence)?.length ?? 0),
  }));
}

/** The step an N-CREATE describes, before it is linked to orders. */
export function stepFromNCreate(
  sopInstanceUid: string,
  ds: DataSet,
  ctx: { readonly callingAeTitle: string; readonly now: number },
): Omit<PerformedProcedureStep, 'linkedOrders' | 'unscheduled'> | MppsRefusal {
  const statusEl = ds.get(Tag.PerformedProcedureStepStatus);
  if (statusEl === undefined) {
    return {
      refused: MppsRefusalReason.MissingAttribute,
      comment: 'Performed Procedure Step Status missing',
      tag: Tag.PerformedProcedureStepStatus,
    };
  }
  const status = text(ds, Tag.PerformedProcedureStepStatus);
  if (status !== PpsStatus.InProgress) {
    return {
      refused: MppsRefusalReason.InvalidValue,
      comment: 'N-CREATE status must be IN PROGRESS',
      tag: Tag.PerformedProcedureStepStatus,
    };
  }
  const ssas = itemsOf(ds, Tag.ScheduledStepAttributesSequence);
  if (ssas === undefined || ssas.length === 0) {
    return {
      refused: MppsRefusalReason.MissingAttribute,
      comment: 'Scheduled Step Attributes Sequence missing',
      tag: Tag.ScheduledStepAttributesSequence,
    };
  }
  return {
    sopInstanceUid,
    status: PpsStatus.InProgress,
    ppsId: text(ds, Tag.PerformedProcedureStepID),
    modality: text(ds, Tag.Modality),
    performedStationAeTitle: text(ds, Tag.PerformedStationAETitle),
    startDate: text(ds, Tag.PerformedProcedureStepStartDate),
    startTime: text(ds, Tag.PerformedProcedureStepStartTime),
    endDate: text(ds, Tag.PerformedProcedureStepEndDate),
    endTime: text(ds, Tag.PerformedProcedureStepEndTime),
    description: text(ds, Tag.PerformedProcedureStepDescription),
    scheduledSteps: ssas.map((item) => ({
      accessionNumber: text(item, Tag.AccessionNumber),
      requestedProcedureId: text(item, Tag.RequestedProcedureID),
      scheduledProcedureStepId: text(item, Tag.ScheduledProcedureStepID),
      studyInstanceUid: text(item, Tag.StudyInstanceUID),
    })),
    performedSeries: performedSeriesOf(ds),
    discontinuationReason: codedEntry(itemsOf(ds, Tag.PerformedProcedureStepDiscontinuationReasonCodeSequence)?.[0]),
    createdBy: ctx.callingAeTitle,
    createdAt: ctx.now,
    updatedAt: ctx.now,
  };
}

/** What an N-SET does to a step: the new step, and whether it changed the status. */
export interface MppsTransition {
  readonly step: PerformedProcedureStep;
  readonly statusChanged: boolean;
}

/** Apply an N-SET modification list (PS3.4 F.7.2.2) to the stored step. */
export function applyNSet(prev: PerformedProcedureStep, ds: DataSet, now: number): MppsTransition | MppsRefusal {
  if (FINAL.has(prev.status)) {
    return { refused: MppsRefusalReason.FinalState, comment: `Performed Procedure Step Object may no longer be updated (${prev.status})` };
  }
  for (const tag of NOT_SETTABLE) {
    if (ds.has(tag)) return { refused: MppsRefusalReason.NotSettable, comment: 'attribute may not be set by N-SET', tag };
  }
  let status = prev.status;
  if (ds.has(Tag.PerformedProcedureStepStatus)) {
    const v = text(ds, Tag.PerformedProcedureStepStatus);
    if (v !== PpsStatus.InProgress && v !== PpsStatus.Completed && v !== PpsStatus.Discontinued) {
      return {
        refused: MppsRefusalReason.InvalidValue,
        comment: 'Performed Procedure Step Status has an invalid value',
        tag: Tag.PerformedProcedureStepStatus,
      };
    }
    status = v;
  }
  const set = (tag: number, before: string): string => (ds.has(tag) ? text(ds, tag) : before);
  const step: PerformedProcedureStep = {
    ...prev,
    status,
    modality: set(Tag.Modality, prev.modality),
    endDate: set(Tag.PerformedProcedureStepEndDate, prev.endDate),
    endTime: set(Tag.PerformedProcedureStepEndTime, prev.endTime),
    description: set(Tag.PerformedProcedureStepDescription, prev.description),
    performedSeries: ds.has(Tag.PerformedSeriesSequence) ? performedSeriesOf(ds) : prev.performedSeries,
    discontinuationReason: ds.has(Tag.PerformedProcedureStepDiscontinuationReasonCodeSequence)
      ? codedEntry(itemsOf(ds, Tag.PerformedProcedureStepDiscontinuationReasonCodeSequence)?.[0])
      : prev.discontinuationReason,
    updatedAt: now,
  };
  return { step, statusChanged: status !== prev.status };
}

/** The store of performed procedure steps (daemon/store/mpps-repository.ts implements it). */
export interface MppsRepository {
  /**
   * Store a new step and its status messages in one durable commit. Refuses a known SOP Instance UID
   * (checked inside the commit, so two racing N-CREATEs cannot both succeed).
   */
  create(step: PerformedProcedureStep, outbox: readonly NewOutboxEntry[]): Promise<'created' | MppsRefusal>;
  /** Read-check-write one step and queue its status messages, in one durable commit. */
  update(
    sopInstanceUid: string,
    change: (
      prev: PerformedProcedureStep,
    ) => { readonly step: PerformedProcedureStep; readonly outbox: readonly NewOutboxEntry[] } | MppsRefusal,
  ): Promise<PerformedProcedureStep | MppsRefusal>;
  get(sopInstanceUid: string): Promise<PerformedProcedureStep | undefined>;
}
