// Test doubles for the worklist: an OrderRepository held in memory, and a builder of worklist items.
// For tests only; the real repository lives in daemon/store.
import type { ApplyOutcome, OrderRepository, WorklistFilter } from '../ports.ts';
import type { Order, Patient, ScheduledProcedureStep, WorklistItem } from '../order.ts';

export interface InMemoryOrderRepositoryForTestsOptions {
  /** Before handing out the item at this index, wait until `release()` (to test aborts). */
  readonly blockBeforeIndex?: number;
}

/**
 * Returns every stored item whatever the filter says, like a store whose index cannot narrow the query
 * (the port allows "more, never less"), and records what it was asked and how far it was read.
 */
export class InMemoryOrderRepositoryForTests implements OrderRepository {
  readonly filters: WorklistFilter[] = [];
  /** Items handed out so far, over all calls. */
  pulled = 0;
  /** Iterations closed (completed or returned early). */
  closed = 0;
  readonly #items: readonly WorklistItem[];
  readonly #blockBeforeIndex: number | undefined;
  #release: () => void = () => {};
  readonly #released: Promise<void>;
  #onBlocked: () => void = () => {};
  /** Resolves when the iteration reaches the blocking index. */
  readonly blocked: Promise<void>;

  constructor(items: readonly WorklistItem[], options: InMemoryOrderRepositoryForTestsOptions = {}) {
    this.#items = items;
    this.#blockBeforeIndex = options.blockBeforeIndex;
    this.#released = new Promise((resolve) => {
      this.#release = resolve;
    });
    this.blocked = new Promise((resolve) => {
      this.#onBlocked = resolve;
    });
  }

  release(): void {
    this.#release();
  }

  apply(): Promise<ApplyOutcome> {
    return Promise.reject(new Error('InMemoryOrderRepositoryForTests does not apply commands'));
  }

  async *worklist(filter: WorklistFilter): AsyncGenerator<WorklistItem> {
    this.filters.push(filter);
    try {
      for (const [index, item] of this.#items.entries()) {
        if (index === this.#blockBeforeIndex) {
          this.#onBlocked();
          await this.#released;
        }
        this.pulled++;
        yield item;
      }
    } finally {
      this.closed++;
    }
  }
}

export interface WorklistItemOverridesForTests {
  readonly order?: Partial<Order>;
  readonly patient?: Partial<Patient>;
  readonly step?: Partial<ScheduledProcedureStep>;
}

/** A complete, realistic worklist item (ASCII only); override what a test is about. */
export function worklistItemForTests(overrides: WorklistItemOverridesForTests = {}): WorklistItem {
  const patient: Patient = {
    id: 'PID-0001',
    issuer: 'HOSP',
    name: 'DOE^JANE^M',
    birthDate: '19800214',
    sex: 'F',
    otherIds: [{ id: 'NAT-42', issuer: 'NATIONAL' }],
    medicalAlerts: 'LATEX',
    allergies: 'IODINE',
    weightKg: '61.5',
    sizeM: '1.68',
    pregnancyStatus: '0004',
    ...overrides.patient,
  };
  const step: ScheduledProcedureStep = {
    id: 'SPS-1',
    modality: 'CT',
    stationAeTitle: 'CT1',
    stationName: 'CT ROOM 1',
    location: 'RAD-B1',
    startDate: '20240105',
    startTime: '093000',
    description: 'CT HEAD W/O CONTRAST',
    protocolCodes: [{ codeValue: 'P-HEAD', codingSchemeDesignator: '99LOCAL', codeMeaning: 'Head routine' }],
    performingPhysician: 'TECH^TOM',
    status: 'SCHEDULED',
    ...overrides.step,
  };
  const order: Order = {
    placerOrderNumber: 'PLC-1',
    placerIssuer: 'RIS',
    fillerOrderNumber: 'FIL-1',
    accessionNumber: 'ACC-1',
    requestedProcedureId: 'RP-1',
    requestedProcedureDescription: 'CT head',
    requestedProcedureCode: { codeValue: 'CTHEAD', codingSchemeDesignator: '99RIS', codeMeaning: 'CT head' },
    requestedProcedurePriority: 'ROUTINE',
    reasonForRequestedProcedure: 'Headache',
    studyInstanceUid: '1.2.826.0.1.3680043.10.1.1',
    studyInstanceUidGenerated: false,
    referringPhysicianName: 'REF^ROSA',
    requestingPhysician: 'REQ^RAY',
    admissionId: 'ADM-1',
    currentPatientLocation: 'WARD 3',
    patient,
    steps: [step],
    status: 'scheduled',
    source: { sendingApplication: 'RIS', sendingFacility: 'HOSP', controlId: 'MSG-1', receivedAt: 0 },
    ...overrides.order,
  };
  return { order, step };
}
