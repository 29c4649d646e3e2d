import test from 'ava';
import { itemsOf, textOf, type DataElement, type DataSet, type Vr } from './dataset.ts';
import { Tag } from './data-dictionary.ts';
import type { WorklistItem } from './order.ts';
import {
  deriveWorklistFilter,
  findWorklist,
  type FindWorklistOptions,
  type WorklistScope,
  worklistResponseOrigin,
} from './worklist-query.ts';
import { InMemoryOrderRepositoryForTests, worklistItemForTests } from './test-support/in-memory-order-repository.ts';

type Entry = readonly [number, Vr, string | readonly (readonly Entry[])[]];

function ds(entries: readonly Entry[]): DataSet {
  const out: DataSet = new Map();
  for (const [tag, vr, value] of entries) {
    out.set(tag, (typeof value === 'string' ? { vr, value } : { vr: 'SQ', value: value.map(ds) }) as DataElement);
  }
  return out;
}

const SPS = Tag.ScheduledProcedureStepSequence;
const sps = (entries: readonly Entry[]): Entry => [SPS, 'SQ', [entries]];

async function collect(
  repository: InMemoryOrderRepositoryForTests,
  identifier: DataSet,
  options: Partial<FindWorklistOptions> = {},
): Promise<DataSet[]> {
  const out: DataSet[] = [];
  for await (const response of findWorklist(repository, identifier, { maxResults: 100, ...options })) out.push(response);
  return out;
}

const item = (id: string, modality: string, station: string, startDate = '20240105'): WorklistItem =>
  worklistItemForTests({
    order: { accessionNumber: `ACC-${id}` },
    step: { id, modality, stationAeTitle: station, startDate },
  });

const accessions = (responses: readonly DataSet[]): (string | undefined)[] => responses.map((r) => textOf(r, Tag.AccessionNumber));

// --- filter derivation -------------------------------------------------------------------------------

const filterRows: readonly {
  readonly rule: string;
  readonly query: readonly Entry[];
  readonly scope?: WorklistScope;
  readonly expected: ReturnType<typeof deriveWorklistFilter>;
}[] = [
  { rule: 'no SPS keys: no filter', query: [[Tag.PatientName, 'PN', '']], expected: {} },
  {
    rule: 'single date A → A..A',
    query: [sps([[Tag.ScheduledProcedureStepStartDate, 'DA', '20240105']])],
    expected: { startDateFrom: '20240105', startDateTo: '20240105' },
  },
  {
    rule: 'range A-B',
    query: [sps([[Tag.ScheduledProcedureStepStartDate, 'DA', '20240101-20240131']])],
    expected: { startDateFrom: '20240101', startDateTo: '20240131' },
  },
  { rule: 'range A-', query: [sps([[Tag.ScheduledProcedureStepStartDate, 'DA', '20240101-']])], expected: { startDateFrom: '20240101' } },
  { rule: 'range -B', query: [sps([[Tag.ScheduledProcedureStepStartDate, 'DA', '-20240131']])], expected: { startDateTo: '20240131' } },
  {
    rule: 'station AE and modality single values',
    query: [
      sps([
        [Tag.ScheduledStationAETitle, 'AE', 'CT1'],
        [Tag.Modality, 'CS', 'CT'],
      ]),
    ],
    expected: { stationAeTitles: ['CT1'], modalities: ['CT'] },
  },
  {
    rule: 'wildcards do not pre-filter',
    query: [
      sps([
        [Tag.ScheduledStationAETitle, 'AE', 'CT*'],
        [Tag.Modality, 'CS', 'C?'],
      ]),
    ],
    expected: {},
  },
  {
    rule: 'universal keys do not pre-filter',
    query: [
      sps([
        [Tag.ScheduledStationAETitle, 'AE', ''],
        [Tag.Modality, 'CS', '*'],
      ]),
    ],
    expected: {},
  },
  { rule: 'multiple modalities', query: [sps([[Tag.Modality, 'CS', 'CT\\MR']])], expected: { modalities: ['CT', 'MR'] } },
  {
    rule: 'scope alone',
    query: [],
    scope: { stationAeTitles: ['CT1', 'CT2'], modalities: ['CT'] },
    expected: { stationAeTitles: ['CT1', 'CT2'], modalities: ['CT'] },
  },
  {
    rule: 'scope ∩ query',
    query: [sps([[Tag.Modality, 'CS', 'CT\\MR']])],
    scope: { modalities: ['CT', 'US'] },
    expected: { modalities: ['CT'] },
  },
  {
    rule: 'scope with a wildcard query stays the scope',
    query: [sps([[Tag.ScheduledStationAETitle, 'AE', 'CT*']])],
    scope: { stationAeTitles: ['CT1'] },
    expected: { stationAeTitles: ['CT1'] },
  },
  {
    rule: 'query outside the scope: nothing',
    query: [sps([[Tag.ScheduledStationAETitle, 'AE', 'CT2']])],
    scope: { stationAeTitles: ['CT1'] },
    expected: null,
  },
  { rule: 'empty scope: nothing', query: [], scope: { modalities: [] }, expected: null },
];

for (const row of filterRows) {
  test(`filter: ${row.rule}`, (t) => {
    t.deepEqual(deriveWorklistFilter(ds(row.query), row.scope), row.expected);
  });
}

test('filter: the store receives the derived filter', async (t) => {
  const repository = new InMemoryOrderRepositoryForTests([item('1', 'CT', 'CT1')]);
  await collect(
    repository,
    ds([
      sps([
        [Tag.ScheduledProcedureStepStartDate, 'DA', '20240105'],
        [Tag.Modality, 'CS', 'CT'],
      ]),
    ]),
  );
  t.deepEqual(repository.filters, [{ startDateFrom: '20240105', startDateTo: '20240105', modalities: ['CT'] }]);
});

// --- scope -------------------------------------------------------------------------------------------

test('scope: items outside the scope are dropped even when the store returns them', async (t) => {
  const repository = new InMemoryOrderRepositoryForTests([
    item('1', 'CT', 'CT1'),
    item('2', 'CT', 'CT2'),
    item('3', 'CT', ''),
    item('4', 'MR', 'CT1'),
  ]);
  const responses = await collect(repository, ds([[Tag.AccessionNumber, 'SH', '']]), {
    scope: { stationAeTitles: ['CT1'], modalities: ['CT'] },
  });
  t.deepEqual(accessions(responses), ['ACC-1']);
});

test('scope: asking for another station gives nothing and does not touch the store', async (t) => {
  const repository = new InMemoryOrderRepositoryForTests([item('1', 'CT', 'CT1'), item('2', 'CT', 'CT2')]);
  const responses = await collect(repository, ds([sps([[Tag.ScheduledStationAETitle, 'AE', 'CT2']])]), {
    scope: { stationAeTitles: ['CT1'] },
  });
  t.deepEqual(responses, []);
  t.deepEqual(repository.filters, []);
});

test('scope: items that are not on the worklist any more are dropped', async (t) => {
  const cancelled = worklistItemForTests({ order: { status: 'cancelled', accessionNumber: 'ACC-X' } });
  const repository = new InMemoryOrderRepositoryForTests([cancelled, item('1', 'CT', 'CT1')]);
  t.deepEqual(accessions(await collect(repository, ds([[Tag.AccessionNumber, 'SH', '']]))), ['ACC-1']);
});

// --- matching through the query ------------------------------------------------------------------------

test('query: full matching runs on what the store returns', async (t) => {
  const repository = new InMemoryOrderRepositoryForTests([
    item('1', 'CT', 'CT1', '20240105'),
    item('2', 'CT', 'CT1', '20240106'),
    item('3', 'MR', 'MR1', '20240105'),
  ]);
  const responses = await collect(
    repository,
    ds([
      [Tag.AccessionNumber, 'SH', ''],
      sps([
        [Tag.ScheduledProcedureStepStartDate, 'DA', '20240105'],
        [Tag.Modality, 'CS', 'C*'],
      ]),
    ]),
  );
  t.deepEqual(accessions(responses), ['ACC-1']);
});

// --- response shape --------------------------------------------------------------------------------------

test('response: only the requested keys, nested as asked, unknown keys zero-length', async (t) => {
  const repository = new InMemoryOrderRepositoryForTests([item('1', 'CT', 'CT1')]);
  const [response] = await collect(
    repository,
    ds([
      [Tag.SpecificCharacterSet, 'CS', 'ISO_IR 100'],
      [Tag.PatientName, 'PN', ''],
      [Tag.PatientComments, 'LT', ''],
      [0x00091010, 'LO', ''], // a private key this SCP does not know
      sps([
        [Tag.Modality, 'CS', ''],
        [Tag.ScheduledStationAETitle, 'AE', 'CT1'],
        [Tag.CommentsOnTheScheduledProcedureStep, 'LT', ''],
      ]),
    ]),
  );
  if (response === undefined) return t.fail('no response');
  t.deepEqual([...response.keys()], [Tag.PatientName, Tag.PatientComments, 0x00091010, SPS]);
  t.is(textOf(response, Tag.PatientName), 'DOE^JANE^M');
  t.deepEqual(response.get(Tag.PatientComments), { vr: 'LT', value: '' });
  t.deepEqual(response.get(0x00091010), { vr: 'LO', value: '' });
  const spsItems = itemsOf(response, SPS) ?? [];
  t.is(spsItems.length, 1);
  const [step] = spsItems;
  t.deepEqual([...(step?.keys() ?? [])], [Tag.Modality, Tag.ScheduledStationAETitle, Tag.CommentsOnTheScheduledProcedureStep]);
  t.is(step && textOf(step, Tag.Modality), 'CT');
  t.deepEqual(step?.get(Tag.CommentsOnTheScheduledProcedureStep), { vr: 'LT', value: '' });
});

test('response: a zero-item sequence key returns the whole sequence', async (t) => {
  const repository = new InMemoryOrderRepositoryForTests([item('1', 'CT', 'CT1')]);
  const [response] = await collect(repository, ds([[SPS, 'SQ', []]]));
  const [step] = (response && itemsOf(response, SPS)) ?? [];
  t.is(step && textOf(step, Tag.ScheduledProcedureStepID), '1');
  t.true((step?.size ?? 0) >= 11);
});

test('response: only the matching items of a multi-item sequence are returned', async (t) => {
  const base = worklistItemForTests({
    patient: {
      otherIds: [
        { id: 'A', issuer: 'ONE' },
        { id: 'B', issuer: 'TWO' },
      ],
    },
  });
  const repository = new InMemoryOrderRepositoryForTests([base]);
  const [response] = await collect(
    repository,
    ds([
      [
        Tag.OtherPatientIDsSequence,
        'SQ',
        [
          [
            [Tag.PatientID, 'LO', ''],
            [Tag.IssuerOfPatientID, 'LO', 'TWO'],
          ],
        ],
      ],
    ]),
  );
  const others = (response && itemsOf(response, Tag.OtherPatientIDsSequence)) ?? [];
  t.deepEqual(
    others.map((o) => textOf(o, Tag.PatientID)),
    ['B'],
  );
});

test('response: Specific Character Set only when a returned value is not ASCII', async (t) => {
  const repository = new InMemoryOrderRepositoryForTests([
    item('1', 'CT', 'CT1'),
    worklistItemForTests({ patient: { name: 'MÜLLER^JÖRG' }, order: { accessionNumber: 'ACC-2' } }),
  ]);
  const responses = await collect(
    repository,
    ds([
      [Tag.PatientName, 'PN', ''],
      [Tag.AccessionNumber, 'SH', ''],
    ]),
  );
  t.false(responses[0]?.has(Tag.SpecificCharacterSet));
  t.deepEqual(responses[1]?.get(Tag.SpecificCharacterSet), { vr: 'CS', value: 'ISO_IR 192' });
  t.is([...(responses[1]?.keys() ?? [])][0], Tag.SpecificCharacterSet);
});

test('response: in the query’s character set when every value fits it, else ISO_IR 192 with the fallback reported', async (t) => {
  const repository = new InMemoryOrderRepositoryForTests([
    worklistItemForTests({ patient: { name: 'MÜLLER^JÖRG' }, order: { accessionNumber: 'ACC-1' } }),
    worklistItemForTests({ patient: { name: 'WÓJCIK^ŁUKASZ' }, order: { accessionNumber: 'ACC-2' } }),
    worklistItemForTests({ patient: { name: '山田^太郎' }, order: { accessionNumber: 'ACC-3' } }),
  ]);
  const ask = async (charset: string | undefined, configured?: string) => {
    const fallbacks: string[] = [];
    const responses = await collect(
      repository,
      ds([
        ...(charset === undefined ? [] : [[Tag.SpecificCharacterSet, 'CS', charset] as Entry]),
        [Tag.PatientName, 'PN', ''],
        [Tag.AccessionNumber, 'SH', ''],
      ]),
      { onCharacterSetFallback: (w) => fallbacks.push(w), ...(configured === undefined ? {} : { characterSet: configured }) },
    );
    return { sets: responses.map((r) => textOf(r, Tag.SpecificCharacterSet)), fallbacks };
  };
  t.deepEqual(await ask('ISO_IR 100'), { sets: ['ISO_IR 100', 'ISO_IR 192', 'ISO_IR 192'], fallbacks: ['ISO_IR 100', 'ISO_IR 100'] });
  t.deepEqual(
    await ask('ISO_IR 101'),
    { sets: ['ISO_IR 101', 'ISO_IR 101', 'ISO_IR 192'], fallbacks: ['ISO_IR 101'] },
    'Ü, Ö, Ó and Ł are all in 8859-2',
  );
  t.deepEqual(
    await ask(undefined),
    { sets: ['ISO_IR 192', 'ISO_IR 192', 'ISO_IR 192'], fallbacks: [] },
    'no set asked: UTF-8, nothing to report',
  );
  t.deepEqual(await ask('ISO_IR 192'), { sets: ['ISO_IR 192', 'ISO_IR 192', 'ISO_IR 192'], fallbacks: [] });
  t.deepEqual((await ask(undefined, 'ISO_IR 100')).sets, ['ISO_IR 100', 'ISO_IR 192', 'ISO_IR 192'], 'the modality’s configured set');
  t.deepEqual((await ask('ISO_IR 192', 'ISO_IR 148')).sets, ['ISO_IR 148', 'ISO_IR 192', 'ISO_IR 192'], 'configured beats the query');
});

test('response: a query that asks for (0008,0005) gets the set the answer is in', async (t) => {
  const repository = new InMemoryOrderRepositoryForTests([worklistItemForTests({ patient: { name: 'MÜLLER^JÖRG' } })]);
  const [r] = await collect(
    repository,
    ds([
      [Tag.SpecificCharacterSet, 'CS', 'ISO_IR 100'],
      [Tag.PatientName, 'PN', ''],
    ]),
  );
  t.is(textOf(r!, Tag.SpecificCharacterSet), 'ISO_IR 100');
});

// --- attribute minimisation -----------------------------------------------------------------------------

test('minimisation: keys outside returnKeys come back zero-length and are not matched', async (t) => {
  const repository = new InMemoryOrderRepositoryForTests([item('1', 'CT', 'CT1')]);
  const responses = await collect(
    repository,
    ds([
      [Tag.PatientName, 'PN', ''],
      [Tag.PatientBirthDate, 'DA', '19000101'],
      [Tag.OtherPatientIDsSequence, 'SQ', []],
    ]),
    { returnKeys: new Set([Tag.PatientName, SPS]) },
  );
  t.is(responses.length, 1, 'a hidden key cannot be used to probe values');
  const [response] = responses;
  t.is(response && textOf(response, Tag.PatientName), 'DOE^JANE^M');
  t.deepEqual(response?.get(Tag.PatientBirthDate), { vr: 'DA', value: '' });
  t.deepEqual(response?.get(Tag.OtherPatientIDsSequence), { vr: 'SQ', value: [] });
});

test('minimisation: a hidden SPS sequence does not narrow the store filter', async (t) => {
  const repository = new InMemoryOrderRepositoryForTests([item('1', 'CT', 'CT1')]);
  await collect(repository, ds([sps([[Tag.Modality, 'CS', 'MR']])]), { returnKeys: new Set([Tag.PatientName]) });
  t.deepEqual(repository.filters, [{}]);
});

// --- limits and cancellation ----------------------------------------------------------------------------

test('limit: stops at maxResults and reports that more matched', async (t) => {
  const repository = new InMemoryOrderRepositoryForTests([1, 2, 3, 4, 5].map((n) => item(String(n), 'CT', 'CT1')));
  let limited = 0;
  const responses = await collect(repository, ds([[Tag.AccessionNumber, 'SH', '']]), {
    maxResults: 2,
    onLimit: () => limited++,
  });
  t.deepEqual(accessions(responses), ['ACC-1', 'ACC-2']);
  t.is(limited, 1);
  t.is(repository.pulled, 3, 'reads one item past the limit, no further');
  t.is(repository.closed, 1, 'the store iteration is closed');
});

test('limit: exactly maxResults matches is not a truncation', async (t) => {
  const repository = new InMemoryOrderRepositoryForTests([1, 2].map((n) => item(String(n), 'CT', 'CT1')));
  let limited = 0;
  const responses = await collect(repository, ds([]), { maxResults: 2, onLimit: () => limited++ });
  t.is(responses.length, 2);
  t.is(limited, 0);
});

test('limit: maxResults must be a positive integer', async (t) => {
  const repository = new InMemoryOrderRepositoryForTests([]);
  await t.throwsAsync(collect(repository, ds([]), { maxResults: 0 }), { instanceOf: TypeError });
});

test('abort: C-CANCEL while the store is busy ends the search without waiting for it', async (t) => {
  const repository = new InMemoryOrderRepositoryForTests(
    [1, 2, 3].map((n) => item(String(n), 'CT', 'CT1')),
    { blockBeforeIndex: 1 },
  );
  const controller = new AbortController();
  const search = findWorklist(repository, ds([[Tag.AccessionNumber, 'SH', '']]), {
    maxResults: 10,
    signal: controller.signal,
  });
  const first = await search.next();
  t.is(first.done, false);
  const pending = search.next();
  await repository.blocked;
  controller.abort();
  t.deepEqual(await pending, { done: true, value: undefined });
  t.is(repository.pulled, 1);
  repository.release(); // let the double finish its queued close
});

test('abort: an already aborted signal never touches the store', async (t) => {
  const repository = new InMemoryOrderRepositoryForTests([item('1', 'CT', 'CT1')]);
  const responses = await collect(repository, ds([]), { signal: AbortSignal.abort() });
  t.deepEqual(responses, []);
  t.deepEqual(repository.filters, []);
});

test('abort: aborting between responses stops before the next store read', async (t) => {
  const repository = new InMemoryOrderRepositoryForTests([1, 2, 3].map((n) => item(String(n), 'CT', 'CT1')));
  const controller = new AbortController();
  const seen: DataSet[] = [];
  for await (const response of findWorklist(repository, ds([]), { maxResults: 10, signal: controller.signal })) {
    seen.push(response);
    controller.abort();
  }
  t.is(seen.length, 1);
  t.is(repository.pulled, 1);
  t.is(repository.closed, 1);
});

test('errors: a malformed date key is refused before the store is read', async (t) => {
  const repository = new InMemoryOrderRepositoryForTests([item('1', 'CT', 'CT1')]);
  await t.throwsAsync(collect(repository, ds([sps([[Tag.ScheduledProcedureStepStartDate, 'DA', 'today']])])), {
    message: /\(0040,0002\)/u,
  });
  t.deepEqual(repository.filters, []);
});

test('each response names the order it came from, even when minimisation leaves its identifiers out', async (t) => {
  const repository = new InMemoryOrderRepositoryForTests([item('SPS-A', 'CT', 'CT1'), item('SPS-B', 'CT', 'CT1')]);
  const responses = await collect(repository, ds([[Tag.PatientName, 'PN', '']]));
  t.is(responses.length, 2);
  t.false(responses[0]!.has(Tag.AccessionNumber), 'not asked, not returned');
  t.deepEqual(
    responses.map((r) => [worklistResponseOrigin(r)?.accessionNumber, worklistResponseOrigin(r)?.scheduledProcedureStepId]),
    [
      ['ACC-SPS-A', 'SPS-A'],
      ['ACC-SPS-B', 'SPS-B'],
    ],
  );
  t.is(worklistResponseOrigin(new Map()), undefined);
});
