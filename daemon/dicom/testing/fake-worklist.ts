// Test double for the worklist handler: fixed items, records the identifiers it was asked and whether
// its iterator was closed early.
import type { DataSet } from '../../core/dataset.ts';
import { Tag } from '../../core/data-dictionary.ts';
import type { WorklistFindHandler } from '../worklist-find-service.ts';

export const FAKE_PATIENT_NAME = 'Müller^Zoë=山田^太郎';

export function fakeWorklistItem(n: number): DataSet {
  const sps: DataSet = new Map([
    [Tag.Modality, { vr: 'CS', value: 'CT' }],
    [Tag.ScheduledStationAETitle, { vr: 'AE', value: 'MODALITY1' }],
    [Tag.ScheduledProcedureStepStartDate, { vr: 'DA', value: '20250102' }],
    [Tag.ScheduledProcedureStepStartTime, { vr: 'TM', value: '0930' }],
    [Tag.ScheduledProcedureStepDescription, { vr: 'LO', value: 'Thorax ohne KM' }],
    [Tag.ScheduledProcedureStepID, { vr: 'SH', value: `SPS${n}` }],
  ]);
  return new Map([
    [Tag.SpecificCharacterSet, { vr: 'CS', value: 'ISO_IR 192' }],
    [Tag.AccessionNumber, { vr: 'SH', value: `ACC${n}` }],
    [Tag.PatientName, { vr: 'PN', value: FAKE_PATIENT_NAME }],
    [Tag.PatientID, { vr: 'LO', value: `PID${n}` }],
    [Tag.PatientBirthDate, { vr: 'DA', value: '19700101' }],
    [Tag.PatientSex, { vr: 'CS', value: 'F' }],
    [Tag.StudyInstanceUID, { vr: 'UI', value: `1.2.826.0.1.3680043.10.999.${n}` }],
    [Tag.RequestedProcedureDescription, { vr: 'LO', value: 'CT Thorax' }],
    [Tag.ScheduledProcedureStepSequence, { vr: 'SQ', value: [sps] }],
    [Tag.RequestedProcedureID, { vr: 'SH', value: `RP${n}` }],
  ]);
}

export interface FakeWorklist {
  readonly handler: WorklistFindHandler;
  readonly identifiers: DataSet[];
  /** Items handed out so far. */
  yielded: number;
  /** True when the consumer stopped early (iterator return()). */
  closedEarly: boolean;
  /** Resolves when the iterator finished, either way. */
  readonly finished: Promise<void>;
}

/** `count` items; with `failAfter`, throws after that many. `delayMs` pauses between items. */
export function fakeWorklist(options: { count: number; failAfter?: number; delayMs?: number }): FakeWorklist {
  let resolveFinished!: () => void;
  const state: FakeWorklist = {
    identifiers: [],
    yielded: 0,
    closedEarly: false,
    finished: new Promise((resolve) => {
      resolveFinished = resolve;
    }),
    handler: (identifier) => {
      state.identifiers.push(identifier);
      return (async function* () {
        let completed = false;
        try {
          for (let i = 1; i <= options.count; i++) {
            if (options.failAfter !== undefined && i > options.failAfter) throw new Error('worklist store unavailable');
            if (options.delayMs !== undefined) await new Promise((r) => setTimeout(r, options.delayMs));
            state.yielded++;
            yield fakeWorklistItem(i);
          }
          completed = true;
        } finally {
          if (!completed) state.closedEarly = true;
          resolveFinished();
        }
      })();
    },
  };
  return state;
}
