// DICOM attribute matching of a C-FIND identifier against a candidate data set (PS3.4 C.2.2.2), as a
// Modality Worklist SCP applies it. A query is compiled once into a closure tree; matching a candidate
// then allocates no regular expressions and re-parses no key values.
//
// Decisions this SCP documents in its conformance statement:
// - An empty (zero-length) candidate value fails every matching key except Universal Matching and a
//   wildcard made only of `*` (PS3.4 K.2.2.1.1.1 and its Note 1; C.2.2.2.4 Note 1), and Empty Value
//   Matching (`""`, C.2.2.2.7), which matches only empty values.
// - A key the candidate does not carry at all is a key this SCP does not support: it is ignored for
//   matching (C.2.2.1) and the response returns it zero-length. The worklist mapping therefore always
//   emits every attribute it supports, empty when unknown.
// - PN (C.2.2.2.1 leaves literal matching of PN to the implementation): case-insensitive (NFC, then upper
//   case), not accent-insensitive; spaces around components and trailing empty components are ignored
//   (`DOE^JOHN^^` = `DOE^JOHN`); a trailing `^*` also matches a name without further components. With
//   several component groups (`=`), each non-empty query group must match the same group of the
//   candidate; a query of one group matches if any candidate group matches it, so a modality that sends
//   an ideographic name without the `=` still finds it.
// - Wildcards `*` and `?` apply to AE CS LO LT PN SH ST UC UR UT (C.2.2.2.4); elsewhere they are literal.
// - Backslash-separated values: UI → List of UID Matching (C.2.2.2.2); other multi-valued VRs →
//   Multiple Value Matching, true when any query value matches any candidate value.
// - DA/TM/DT → Range Matching (C.2.2.2.5); a single TM/DT value of reduced precision matches every
//   instant it covers. A date and a time key written in the same range form are matched as one
//   date-time range (C.2.2.2.5.4), which is how "from 22:00 today to 06:00 tomorrow" works.
// - Sequences (C.2.2.2.6): a zero-item sequence, or one whose item holds only universal keys, is
//   universal; otherwise all keys of the (first) query item must match within one candidate item.
// - Specific Character Set (0008,0005) and group lengths are never matched (C.2.2.2).
import { EdgeError } from './errors.ts';
import { tagHex, type DataElement, type DataSet, type Vr } from './dataset.ts';
import { Tag } from './data-dictionary.ts';
import { foldPersonName, personNameGroups, splitValues, trimPadding } from './dicom-text.ts';
import {
  candidatePoint,
  combineDateAndTime,
  combinedCandidatePoint,
  parseQueryBounds,
  withinBounds,
  type Bounds,
  type DateTimeVr,
} from './matching-date-time.ts';

export type CandidateMatcher = (candidate: DataSet) => boolean;

export interface CompileQueryOptions {
  /**
   * The VR each key is matched as. Defaults to the VR the identifier declares; pass the SCP's own
   * dictionary so an implicit-VR or UN-encoded identifier cannot change how a key is matched.
   */
  readonly vrOf?: (tag: number) => Vr | undefined;
  /** Top-level keys that may take part in matching; the rest are ignored as unsupported. Default: all. */
  readonly isMatchingKey?: (tag: number) => boolean;
  /** Match date+time key pairs as one date-time range (C.2.2.2.5.4). Default true. */
  readonly combinedDateTime?: boolean;
}

/** Pairs matched together under C.2.2.2.5.4 when both keys use the same range form. */
export const DATE_TIME_PAIRS: readonly (readonly [date: number, time: number])[] = [
  [Tag.ScheduledProcedureStepStartDate, Tag.ScheduledProcedureStepStartTime],
  [Tag.ScheduledProcedureStepEndDate, Tag.ScheduledProcedureStepEndTime],
  [Tag.StudyDate, Tag.StudyTime],
];

/** VRs on which `*` and `?` are wildcards (C.2.2.2.4). */
export const WILDCARD_VRS: ReadonlySet<Vr> = new Set<Vr>(['AE', 'CS', 'LO', 'LT', 'PN', 'SH', 'ST', 'UC', 'UR', 'UT']);

const NUMERIC_VRS: ReadonlySet<Vr> = new Set<Vr>(['DS', 'IS', 'US', 'UL', 'SS', 'SL', 'FL', 'FD', 'SV', 'UV']);
const TEXT_ONLY = /[*?]/u;
const EMPTY_VALUE_KEY = '""';

type Predicate = (ds: DataSet) => boolean;
/** Tests one candidate value (already split and trimmed). */
type SingleTest = (value: string) => boolean;
const UNIVERSAL = 'universal';

/** Compiles a C-FIND identifier into a matcher. Throws EDGE_WORKLIST_QUERY_INVALID on a malformed DA/TM/DT key. */
export function compileQuery(identifier: DataSet, options: CompileQueryOptions = {}): CandidateMatcher {
  return compileLevel(identifier, options, true) ?? (() => true);
}

/** True when a key value requests Universal Matching: zero length, or only `*` on a wildcard VR. */
export function isUniversalValue(vr: Vr, value: string): boolean {
  const v = trimPadding(vr, value);
  return v === '' || (WILDCARD_VRS.has(vr) && /^\*+$/u.test(v));
}

/** True when `*` or `?` in the value would be read as wildcards. */
export function hasWildcard(vr: Vr, value: string): boolean {
  return WILDCARD_VRS.has(vr) && TEXT_ONLY.test(value);
}

function compileLevel(level: DataSet, options: CompileQueryOptions, topLevel: boolean): Predicate | undefined {
  const predicates: Predicate[] = [];
  const consumed = new Set<number>();
  if (options.combinedDateTime !== false) {
    for (const [dateTag, timeTag] of DATE_TIME_PAIRS) {
      const combined = compileCombinedPair(level, dateTag, timeTag, options, topLevel);
      if (combined === undefined) continue;
      predicates.push(combined);
      consumed.add(dateTag).add(timeTag);
    }
  }
  for (const [tag, element] of level) {
    if (consumed.has(tag) || !isCandidateKey(tag, options, topLevel)) continue;
    const predicate = compileKey(tag, element, options);
    if (predicate !== undefined) predicates.push(predicate);
  }
  if (predicates.length === 0) return undefined;
  if (predicates.length === 1) return predicates[0];
  return (ds) => predicates.every((p) => p(ds));
}

function isCandidateKey(tag: number, options: CompileQueryOptions, topLevel: boolean): boolean {
  if (tag === Tag.SpecificCharacterSet || (tag & 0xffff) === 0) return false;
  return !topLevel || options.isMatchingKey === undefined || options.isMatchingKey(tag);
}

function compileKey(tag: number, element: DataElement, options: CompileQueryOptions): Predicate | undefined {
  if (element.vr === 'SQ') return compileSequenceKey(tag, element.value, options);
  if (typeof element.value !== 'string') return undefined; // binary keys are not matchable; returned only
  const vr = options.vrOf?.(tag) ?? element.vr;
  if (vr === 'SQ') return undefined;
  const test = compileValue(tag, vr, element.value);
  if (test === UNIVERSAL) return undefined;
  return (ds) => {
    const candidate = ds.get(tag);
    if (candidate === undefined || typeof candidate.value !== 'string') return true; // unsupported key
    return test(candidate.value);
  };
}

function compileSequenceKey(tag: number, items: readonly DataSet[], options: CompileQueryOptions): Predicate | undefined {
  const queryItem = items[0];
  if (queryItem === undefined) return undefined;
  const itemMatches = compileLevel(queryItem, options, false);
  if (itemMatches === undefined) return undefined;
  return (ds) => {
    const candidate = ds.get(tag);
    if (candidate === undefined || candidate.vr !== 'SQ') return true; // unsupported key
    return candidate.value.some(itemMatches);
  };
}

/** A whole-element test: splits the candidate value and applies K.2.2.1.1.1 to empty values. */
function compileValue(tag: number, vr: Vr, raw: string): ((candidate: string) => boolean) | typeof UNIVERSAL {
  if (isUniversalValue(vr, raw)) return UNIVERSAL;
  if (trimPadding(vr, raw) === EMPTY_VALUE_KEY) return (candidate) => splitValues(vr, candidate).every((v) => v === '');
  const tests: SingleTest[] = [];
  for (const value of splitValues(vr, raw)) {
    const test = compileSingle(tag, vr, value);
    if (test === UNIVERSAL) return UNIVERSAL;
    tests.push(test);
  }
  return (candidate) => {
    const values = splitValues(vr, candidate);
    return values.some((v) => v !== '' && tests.some((t) => t(v)));
  };
}

function compileSingle(tag: number, vr: Vr, value: string): SingleTest | typeof UNIVERSAL {
  if (value === '' || (WILDCARD_VRS.has(vr) && /^\*+$/u.test(value))) return UNIVERSAL;
  if (vr === 'DA' || vr === 'TM' || vr === 'DT') {
    const bounds = parseBoundsOrThrow(tag, vr, value);
    if (bounds.form === 'open') return UNIVERSAL;
    return (candidate) => {
      const point = candidatePoint(vr, candidate);
      return point !== undefined && withinBounds(point, bounds);
    };
  }
  if (vr === 'PN') return compilePersonName(value);
  if (hasWildcard(vr, value)) {
    const pattern = wildcardRegExp(value, false);
    return (candidate) => pattern.test(candidate);
  }
  if (NUMERIC_VRS.has(vr)) {
    const expected = Number(value);
    if (Number.isFinite(expected)) return (candidate) => candidate === value || Number(candidate) === expected;
  }
  return (candidate) => candidate === value;
}

function compilePersonName(value: string): SingleTest | typeof UNIVERSAL {
  const groups = personNameGroups(foldPersonName(value)).map(compilePersonNameGroup);
  if (groups.every((g) => g === undefined)) return UNIVERSAL;
  if (groups.length === 1) {
    const only = groups[0];
    if (only === undefined) return UNIVERSAL;
    return (candidate) => personNameGroups(foldPersonName(candidate)).some(only);
  }
  return (candidate) => {
    const candidateGroups = personNameGroups(foldPersonName(candidate));
    return groups.every((g, i) => g === undefined || g(candidateGroups[i] ?? ''));
  };
}

/** Undefined = this group constrains nothing (empty or only `*`). */
function compilePersonNameGroup(group: string): SingleTest | undefined {
  if (group === '' || /^\*+$/u.test(group)) return undefined;
  if (!TEXT_ONLY.test(group)) return (candidate) => candidate === group;
  const pattern = wildcardRegExp(group, true);
  return (candidate) => pattern.test(candidate);
}

function wildcardRegExp(value: string, personName: boolean): RegExp {
  let source = '';
  const chars = [...value];
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i] ?? '';
    if (personName && c === '^' && i === chars.length - 2 && chars[i + 1] === '*') {
      source += '(?:\\^.*)?'; // `DOE^*` also matches `DOE`, whose trailing empty components were dropped
      break;
    }
    source += c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.*+?^${}()|[\]\\/-]/gu, '\\$&');
  }
  return new RegExp(`^${source}$`, 'su');
}

function parseBoundsOrThrow(tag: number, vr: DateTimeVr, value: string): Bounds {
  const bounds = parseQueryBounds(vr, value);
  if (bounds === undefined) {
    // The value itself may be patient data (a birth date), so only the tag goes into the error.
    throw new EdgeError('EDGE_WORKLIST_QUERY_INVALID', `invalid ${vr} key value in ${tagHex(tag)}`, {
      detail: { tag: tagHex(tag), vr },
    });
  }
  return bounds;
}

function compileCombinedPair(
  level: DataSet,
  dateTag: number,
  timeTag: number,
  options: CompileQueryOptions,
  topLevel: boolean,
): Predicate | undefined {
  if (!isCandidateKey(dateTag, options, topLevel) || !isCandidateKey(timeTag, options, topLevel)) return undefined;
  const date = level.get(dateTag);
  const time = level.get(timeTag);
  if (date === undefined || time === undefined || typeof date.value !== 'string' || typeof time.value !== 'string') {
    return undefined;
  }
  const dateValue = trimPadding('DA', date.value);
  const timeValue = trimPadding('TM', time.value);
  if (dateValue.includes('\\') || timeValue.includes('\\') || !dateValue.includes('-') || !timeValue.includes('-')) {
    return undefined;
  }
  const combined = combineDateAndTime(parseBoundsOrThrow(dateTag, 'DA', dateValue), parseBoundsOrThrow(timeTag, 'TM', timeValue));
  if (combined === undefined) return undefined;
  return (ds) => {
    const d = ds.get(dateTag);
    const t = ds.get(timeTag);
    if (d === undefined || t === undefined || typeof d.value !== 'string' || typeof t.value !== 'string') return true;
    const point = combinedCandidatePoint(trimPadding('DA', d.value), trimPadding('TM', t.value));
    return point !== undefined && withinBounds(point, combined);
  };
}
