// The benchmark's synthetic worklist, shared by the box's HL7 loader and the anchor's .wl writer so
// both servers hold exactly the same items. Item i is a pure function of i and "today", which lets the
// box be loaded incrementally (first 1,000, then up to 10,000, then 100,000) while every prefix keeps
// the same shape.
//
// Shape: 20 stations x 30 days (today .. today+29). The queried slice (station ST01, today) always holds
// exactly SLICE_SIZE items: items 0..49. Every later item goes round-robin over the other 599
// (station, day) cells, so at N = 10,000 each other cell holds ~17 items and at N = 100,000 ~167. Keeping
// the slice fixed means the answer (50 responses) is the same at every N and the measured growth is
// the cost of the worklist's size alone, not of a longer answer.

export const STATION_COUNT = 20;
export const DAY_COUNT = 30;
export const SLICE_SIZE = 50;
export const QUERY_STATION = stationAeTitle(0);

const MODALITY_BY_STATION_GROUP = ['CT', 'MR', 'US', 'DX'] as const;

export interface PlannedItem {
  readonly index: number;
  readonly stationAeTitle: string;
  readonly modality: string;
  /** YYYYMMDD */
  readonly startDate: string;
  /** HHMMSS */
  readonly startTime: string;
  readonly placerOrderNumber: string;
  readonly fillerOrderNumber: string;
  readonly accessionNumber: string;
  readonly requestedProcedureId: string;
  readonly stepId: string;
  readonly patientId: string;
  /** DICOM PN / HL7 XPN components family^given */
  readonly patientFamilyName: string;
  readonly patientGivenName: string;
  readonly birthDate: string;
  readonly sex: 'F' | 'M';
  readonly procedureCode: string;
  readonly procedureDescription: string;
  readonly studyInstanceUid: string;
}

export function stationAeTitle(station: number): string {
  return `ST${String(station + 1).padStart(2, '0')}`;
}

function modalityOf(station: number): string {
  return MODALITY_BY_STATION_GROUP[Math.floor(station / 5) % MODALITY_BY_STATION_GROUP.length] ?? 'CT';
}

/** `today` as YYYYMMDD plus `days`, in UTC arithmetic on the calendar date (no time-zone drift). */
export function addDays(today: string, days: number): string {
  const y = Number(today.slice(0, 4));
  const m = Number(today.slice(4, 6));
  const d = Number(today.slice(6, 8));
  const t = new Date(Date.UTC(y, m - 1, d + days));
  return `${t.getUTCFullYear()}${String(t.getUTCMonth() + 1).padStart(2, '0')}${String(t.getUTCDate()).padStart(2, '0')}`;
}

/** The local calendar date, as a modality asking for "today" would send it. */
export function localToday(now = new Date()): string {
  return `${now.getFullYear()}${String(now.getMonth() + 1).padStart(2, '0')}${String(now.getDate()).padStart(2, '0')}`;
}

function cellOf(index: number): { station: number; day: number; slot: number } {
  if (index < SLICE_SIZE) return { station: 0, day: 0, slot: index };
  const otherCells = STATION_COUNT * DAY_COUNT - 1;
  const k = index - SLICE_SIZE;
  // Cell 0 is the queried slice; the rest are numbered 1..599 as day * 20 + station.
  const cell = (k % otherCells) + 1;
  return { station: cell % STATION_COUNT, day: Math.floor(cell / STATION_COUNT), slot: Math.floor(k / otherCells) };
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

export function plannedItem(index: number, today: string): PlannedItem {
  if (!Number.isSafeInteger(index) || index < 0 || index > 9_999_999) throw new RangeError(`item index out of range: ${index}`);
  const { station, day, slot } = cellOf(index);
  // Spread a cell's items over 07:00-17:59 in minutes; slots beyond 660 reuse times (harmless for matching).
  const minuteOfDay = 7 * 60 + ((slot * 7) % 660);
  const modality = modalityOf(station);
  const id = pad(index, 7);
  return {
    index,
    stationAeTitle: stationAeTitle(station),
    modality,
    startDate: addDays(today, day),
    startTime: `${pad(Math.floor(minuteOfDay / 60), 2)}${pad(minuteOfDay % 60, 2)}00`,
    placerOrderNumber: `BP${id}`,
    fillerOrderNumber: `BF${id}`,
    accessionNumber: `BA${id}`,
    requestedProcedureId: `RP${id}`,
    stepId: `SPS${id}`,
    patientId: `BPAT${id}`,
    patientFamilyName: 'BENCH',
    patientGivenName: `PATIENT${id}`,
    birthDate: `19${pad(40 + (index % 60), 2)}${pad((index % 12) + 1, 2)}${pad((index % 28) + 1, 2)}`,
    sex: index % 2 === 0 ? 'F' : 'M',
    procedureCode: `${modality}${pad(station + 1, 2)}`,
    procedureDescription: `${modality} BENCH EXAM ${station + 1}`,
    // UUID-derived root (PS3.5 B.2) with a fixed prefix: unique per item, stable across runs.
    studyInstanceUid: `2.25.${BigInt('0x5bd1e995000000000000000000000000') + BigInt(index)}`,
  };
}
