// The Modality Worklist C-FIND, in domain terms: derive a cheap store pre-filter from the identifier,
// enforce the calling modality's scope, match every candidate (PS3.4 C.2.2.2), and answer with only the
// requested keys (C.2.2.1, attribute minimisation). The dicom adapter turns each yielded data set into a
// Pending response and owns the DIMSE status codes.
//
// Decisions:
// - Scope is checked on each item from the store too, not only through the filter: the store may return
//   more than asked, and a modality must never see an item outside its scope. An item without a station
//   AE title is outside a scope that lists station AE titles.
// - Keys outside `returnKeys` are treated as unsupported: not matched (so they cannot be used to probe
//   hidden values) and returned zero-length.
// - Specific Character Set (0008,0005) is returned only when a returned text value is not ASCII, so
//   modalities that only know the default repertoire keep working for ASCII worklists. It is the set the
//   query named (or the modality's configured one) when every value of the response fits it, so a Latin-1
//   console reads MÜLLER, not MÃœLLER; otherwise ISO_IR 192, and the fallback is reported.
// - The limit is reported only when a further matching item exists, not when exactly maxResults match.
import type { DataElement, DataSet, Vr } from './dataset.ts';
import { Tag } from './data-dictionary.ts';
import { isAscii, splitValues, trimPadding } from './dicom-text.ts';
import { compileQuery, hasWildcard, isUniversalValue, type CandidateMatcher, type CompileQueryOptions } from './matching.ts';
import { parseQueryBounds } from './matching-date-time.ts';
import { WORKLIST_STATUSES, type WorklistItem } from './order.ts';
import type { OrderRepository, WorklistFilter } from './ports.ts';
import { worklistItemToDataSet, worklistVrOf, type WorklistAttributesOptions } from './worklist-attributes.ts';
import { EdgeError } from './errors.ts';
import { characterSetOf, resolveSpecificCharacterSet, Utf8, type DicomCharacterSet } from './dicom-character-sets.ts';

/** What a calling modality may see, from its configuration; undefined = no restriction on that axis. */
export interface WorklistScope {
  readonly stationAeTitles?: readonly string[];
  readonly modalities?: readonly string[];
}

export interface FindWorklistOptions {
  readonly scope?: WorklistScope;
  /** Configured top-level keys a modality may receive (attribute minimisation); undefined = all supported. */
  readonly returnKeys?: ReadonlySet<number>;
  /** At most this many responses; a positive integer. */
  readonly maxResults: number;
  /** Aborted on C-CANCEL or association loss: the search stops without waiting for the store. */
  readonly signal?: AbortSignal;
  /** Called once, after maxResults responses, when another item would have matched. */
  readonly onLimit?: () => void;
  readonly attributes?: WorklistAttributesOptions;
  /**
   * The Specific Character Set to answer in (the modality's configured one); undefined = the query's
   * (0008,0005). Either way a response that does not fit it is answered in ISO_IR 192.
   */
  readonly characterSet?: string;
  /** Called for each response answered in ISO_IR 192 because a value did not fit the wanted set. */
  readonly onCharacterSetFallback?: (wanted: string) => void;
}

/** Which order and step a response identifier was made from (identifiers only, no patient data). */
export interface WorklistResponseOrigin {
  readonly placerOrderNumber: string;
  readonly placerIssuer: string;
  readonly accessionNumber: string;
  readonly scheduledProcedureStepId: string;
  readonly patient: { readonly id: string; readonly issuer: string };
}

// Kept beside the data sets rather than in them, so attribute minimisation stays exact.
const origins = new WeakMap<DataSet, WorklistResponseOrigin>();

/** The order behind a data set `findWorklist` yielded, so an adapter that cannot send it can name it. */
export function worklistResponseOrigin(response: DataSet): WorklistResponseOrigin | undefined {
  return origins.get(response);
}

/** Finds the worklist items matching a C-FIND identifier and yields one response identifier per item. */
export async function* findWorklist(
  repository: OrderRepository,
  identifier: DataSet,
  options: FindWorklistOptions,
): AsyncGenerator<DataSet, void, undefined> {
  const { maxResults, signal, returnKeys } = options;
  if (!Number.isSafeInteger(maxResults) || maxResults < 1) throw new TypeError('maxResults must be a positive integer');
  const matchOptions: CompileQueryOptions = {
    vrOf: worklistVrOf,
    ...(returnKeys === undefined ? {} : { isMatchingKey: (tag: number) => returnKeys.has(tag) }),
  };
  const matches = compileQuery(identifier, matchOptions);
  const plan = responsePlan(identifier, returnKeys, true);
  const filter = deriveWorklistFilter(identifier, options.scope, returnKeys);
  if (filter === null || signal?.aborted === true) return;
  const inScope = scopePredicate(options.scope);
  const wanted = responseCharacterSet(identifier, options.characterSet);
  const fallback = options.onCharacterSetFallback;

  const iterator = repository.worklist(filter)[Symbol.asyncIterator]();
  let finished = false;
  let aborted = false;
  let sent = 0;
  try {
    for (;;) {
      const next = await nextUnlessAborted(iterator, signal);
      if (next === ABORTED) {
        aborted = true;
        return;
      }
      if (next.done === true) {
        finished = true;
        return;
      }
      const item = next.value;
      if (!WORKLIST_STATUSES.has(item.order.status) || !inScope(item)) continue;
      const candidate = worklistItemToDataSet(item, options.attributes);
      if (!matches(candidate)) continue;
      if (sent === maxResults) {
        options.onLimit?.();
        return;
      }
      sent++;
      const response = withCharacterSet(respond(plan, candidate), wanted, fallback);
      const { order } = item;
      origins.set(response, {
        placerOrderNumber: order.placerOrderNumber,
        placerIssuer: order.placerIssuer,
        accessionNumber: order.accessionNumber,
        scheduledProcedureStepId: item.step.id,
        patient: { id: order.patient.id, issuer: order.patient.issuer },
      });
      yield response;
      if (isAborted(signal)) return; // the consumer may have been paused across an abort
    }
  } finally {
    if (!finished) {
      const closing = iterator.return?.();
      // After an abort the store may still be busy inside next(); waiting for it would delay C-CANCEL.
      if (aborted) void closing?.then(undefined, () => undefined);
      else await closing;
    }
  }
}

/**
 * The store pre-filter for an identifier within a scope, or null when the scope and the query exclude
 * every item (so the store need not be touched). Only single values and ranges narrow the filter; a
 * wildcard, Universal or Empty Value Matching leaves that axis to the scope alone.
 */
export function deriveWorklistFilter(
  identifier: DataSet,
  scope: WorklistScope | undefined,
  returnKeys?: ReadonlySet<number>,
): WorklistFilter | null {
  const spsElement =
    returnKeys === undefined || returnKeys.has(Tag.ScheduledProcedureStepSequence)
      ? identifier.get(Tag.ScheduledProcedureStepSequence)
      : undefined;
  const sps = spsElement?.vr === 'SQ' ? spsElement.value[0] : undefined;
  const stationAeTitles = intersect(exactValues(sps, Tag.ScheduledStationAETitle, 'AE'), scope?.stationAeTitles);
  const modalities = intersect(exactValues(sps, Tag.Modality, 'CS'), scope?.modalities);
  if (stationAeTitles?.length === 0 || modalities?.length === 0) return null;
  return {
    ...startDateBounds(sps),
    ...(stationAeTitles === undefined ? {} : { stationAeTitles }),
    ...(modalities === undefined ? {} : { modalities }),
  };
}

function exactValues(sps: DataSet | undefined, tag: number, vr: Vr): string[] | undefined {
  const value = sps?.get(tag)?.value;
  if (typeof value !== 'string' || isUniversalValue(vr, value) || hasWildcard(vr, value)) return undefined;
  if (trimPadding(vr, value) === '""') return undefined;
  const values = splitValues(vr, value).filter((v) => v !== '');
  return values.length === 0 ? undefined : [...new Set(values)];
}

function intersect(query: string[] | undefined, scope: readonly string[] | undefined): string[] | undefined {
  if (scope === undefined) return query;
  if (query === undefined) return [...scope];
  const allowed = new Set(scope);
  return query.filter((v) => allowed.has(v));
}

function startDateBounds(sps: DataSet | undefined): Pick<WorklistFilter, 'startDateFrom' | 'startDateTo'> {
  const value = sps?.get(Tag.ScheduledProcedureStepStartDate)?.value;
  if (typeof value !== 'string') return {};
  const v = trimPadding('DA', value);
  if (v === '' || v === '""' || v.includes('\\')) return {};
  const bounds = parseQueryBounds('DA', v);
  if (bounds === undefined) throw new EdgeError('EDGE_WORKLIST_QUERY_INVALID', 'invalid DA key value in (0040,0002)');
  return {
    ...(bounds.lo === undefined ? {} : { startDateFrom: bounds.lo }),
    ...(bounds.hi === undefined ? {} : { startDateTo: bounds.hi }),
  };
}

function scopePredicate(scope: WorklistScope | undefined): (item: WorklistItem) => boolean {
  const stations = scope?.stationAeTitles === undefined ? undefined : new Set(scope.stationAeTitles);
  const modalities = scope?.modalities === undefined ? undefined : new Set(scope.modalities);
  return (item) =>
    (stations === undefined || stations.has(item.step.stationAeTitle)) && (modalities === undefined || modalities.has(item.step.modality));
}

const ABORTED = Symbol('aborted');

function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

function nextUnlessAborted<T>(iterator: AsyncIterator<T>, signal: AbortSignal | undefined): Promise<IteratorResult<T> | typeof ABORTED> {
  if (signal === undefined) return iterator.next();
  if (signal.aborted) return Promise.resolve(ABORTED);
  const next = iterator.next();
  return new Promise((resolve, reject) => {
    const onAbort = (): void => resolve(ABORTED);
    signal.addEventListener('abort', onAbort, { once: true });
    // Both handlers stay attached after an abort, so a late rejection from the store is not unhandled.
    next.then(
      (result) => {
        signal.removeEventListener('abort', onAbort);
        resolve(result);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

/** How to build the response for one requested key, decided once per query. */
type ResponseKey =
  | { readonly kind: 'value'; readonly tag: number; readonly vr: Vr }
  | { readonly kind: 'hidden'; readonly tag: number; readonly vr: Vr }
  | { readonly kind: 'sequence'; readonly tag: number; readonly item: ItemPlan | undefined };

interface ItemPlan {
  readonly matches: CandidateMatcher;
  readonly keys: readonly ResponseKey[];
}

function responsePlan(level: DataSet, returnKeys: ReadonlySet<number> | undefined, topLevel: boolean): ResponseKey[] {
  const keys: ResponseKey[] = [];
  for (const [tag, element] of level) {
    if (tag === Tag.SpecificCharacterSet || (tag & 0xffff) === 0) continue;
    const vr = worklistVrOf(tag) ?? element.vr;
    if (topLevel && returnKeys !== undefined && !returnKeys.has(tag)) {
      keys.push({ kind: 'hidden', tag, vr });
    } else if (vr === 'SQ') {
      // C.2.2.2.6: a sequence key without item keys asks for the whole sequence.
      const queryItem = element.vr === 'SQ' ? element.value[0] : undefined;
      const item =
        queryItem === undefined || queryItem.size === 0
          ? undefined
          : { matches: compileQuery(queryItem, { vrOf: worklistVrOf }), keys: responsePlan(queryItem, undefined, false) };
      keys.push({ kind: 'sequence', tag, item });
    } else {
      keys.push({ kind: 'value', tag, vr });
    }
  }
  return keys;
}

function respond(keys: readonly ResponseKey[], candidate: DataSet): DataSet {
  const out: DataSet = new Map();
  for (const key of keys) {
    const element = candidate.get(key.tag);
    switch (key.kind) {
      case 'hidden':
        out.set(key.tag, emptyElement(key.vr));
        break;
      case 'value':
        out.set(key.tag, element !== undefined && element.vr !== 'SQ' ? element : emptyElement(key.vr));
        break;
      case 'sequence': {
        if (element === undefined || element.vr !== 'SQ') {
          out.set(key.tag, { vr: 'SQ', value: [] });
        } else if (key.item === undefined) {
          out.set(key.tag, element);
        } else {
          const { matches, keys: itemKeys } = key.item;
          out.set(key.tag, { vr: 'SQ', value: element.value.filter(matches).map((i) => respond(itemKeys, i)) });
        }
        break;
      }
    }
  }
  return out;
}

function emptyElement(vr: Vr): DataElement {
  switch (vr) {
    case 'SQ':
      return { vr, value: [] };
    case 'OB':
    case 'OD':
    case 'OF':
    case 'OL':
    case 'OV':
    case 'OW':
    case 'UN':
      return { vr, value: new Uint8Array(0) };
    default:
      return { vr, value: '' };
  }
}

/** The set a response should be in: the configured one, else the query's first (0008,0005) value. */
function responseCharacterSet(identifier: DataSet, configured: string | undefined): DicomCharacterSet {
  if (configured !== undefined) return characterSetOf(configured) ?? Utf8;
  const value = identifier.get(Tag.SpecificCharacterSet)?.value;
  const { charset } = resolveSpecificCharacterSet(typeof value === 'string' ? value : undefined);
  return charset;
}

function withCharacterSet(response: DataSet, wanted: DicomCharacterSet, onFallback: ((wanted: string) => void) | undefined): DataSet {
  if (allAscii(response)) return response;
  let charset = wanted;
  if (wanted.kind === 'default' || !allFit(response, wanted)) {
    if (wanted.kind === 'latin1' || wanted.kind === 'single-byte') onFallback?.(wanted.term);
    charset = Utf8;
  }
  // First, and replacing the item's own: a query that asks for (0008,0005) gets the set the answer is in.
  const out = new Map<number, DataElement>([[Tag.SpecificCharacterSet, { vr: 'CS', value: charset.term }]]);
  for (const [tag, element] of response) if (tag !== Tag.SpecificCharacterSet) out.set(tag, element);
  return out;
}

function allFit(ds: DataSet, charset: DicomCharacterSet): boolean {
  for (const element of ds.values()) {
    if (element.vr === 'SQ') {
      if (!element.value.every((item) => allFit(item, charset))) return false;
    } else if (typeof element.value === 'string' && !isAscii(element.value) && !charset.canEncode(element.value)) {
      return false;
    }
  }
  return true;
}

function allAscii(ds: DataSet): boolean {
  for (const element of ds.values()) {
    if (element.vr === 'SQ') {
      if (!element.value.every(allAscii)) return false;
    } else if (typeof element.value === 'string' && !isAscii(element.value)) {
      return false;
    }
  }
  return true;
}
