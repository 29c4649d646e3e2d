import test from 'ava';
import { worklistDump } from './anchor-worklist.ts';
import { benchConfig } from './bench-site.ts';
import { ormO01 } from './orm-message.ts';
import { formatTable, perQueryMs } from './report.ts';
import { addDays, DAY_COUNT, plannedItem, QUERY_STATION, SLICE_SIZE, STATION_COUNT } from './worklist-plan.ts';

const today = '20261125';

function sliceSize(n: number): number {
  let count = 0;
  for (let i = 0; i < n; i++) {
    const item = plannedItem(i, today);
    if (item.stationAeTitle === QUERY_STATION && item.startDate === today) count++;
  }
  return count;
}

test('the queried slice (ST01, today) holds 50 items at every size', (t) => {
  for (const n of [50, 1_000, 10_000, 30_000]) t.is(sliceSize(n), SLICE_SIZE, `N=${n}`);
});

test('items cover 20 stations and 30 days', (t) => {
  const stations = new Set<string>();
  const days = new Set<string>();
  for (let i = 0; i < 2_000; i++) {
    const item = plannedItem(i, today);
    stations.add(item.stationAeTitle);
    days.add(item.startDate);
  }
  t.is(stations.size, STATION_COUNT);
  t.is(days.size, DAY_COUNT);
  t.true(days.has(addDays(today, DAY_COUNT - 1)));
});

test('identifiers are unique and fit their VRs', (t) => {
  const accessions = new Set<string>();
  for (let i = 0; i < 5_000; i++) {
    const item = plannedItem(i, today);
    accessions.add(item.accessionNumber);
    t.true(item.accessionNumber.length <= 16 && item.stepId.length <= 16 && item.studyInstanceUid.length <= 64);
  }
  t.is(accessions.size, 5_000);
  t.is(plannedItem(99_999, today).accessionNumber, 'BA0099999');
});

test('addDays crosses month and year ends', (t) => {
  t.is(addDays('20261231', 1), '20270101');
  t.is(addDays('20240228', 1), '20240229');
});

test('ORM^O01 puts the step where the box maps it from', (t) => {
  const item = plannedItem(7, today);
  const message = ormO01(
    item,
    {
      sendingApplication: 'RIS',
      sendingFacility: 'GENHOSP',
      receivingApplication: 'EDGE',
      receivingFacility: 'RAD1',
      timestamp: '20261125080000',
    },
    'B1X7',
  );
  const segments = new Map(
    message
      .split('\r')
      .filter((s) => s !== '')
      .map((s) => [s.slice(0, 3), s.split('|')]),
  );
  t.is(segments.get('MSH')?.[9], 'B1X7');
  const obr = segments.get('OBR') ?? [];
  t.is(obr[18], item.accessionNumber);
  t.is(obr[20], item.stepId);
  t.is(obr[24], item.modality);
  t.is(obr[27], `^^^${today}${item.startTime}^^R`);
  t.is(segments.get('ORC')?.[18], QUERY_STATION);
});

test('the anchor dump carries the same step', (t) => {
  const dump = worklistDump(plannedItem(3, today));
  t.regex(dump, /\(0040,0001\) AE \[ST01\]/);
  t.regex(dump, new RegExp(`\\(0040,0002\\) DA \\[${today}\\]`));
});

test('bench site: a scoped plain modality per station, TLS modality answers for ST01', (t) => {
  const config = benchConfig({
    hl7: { maxConnectionsPerPeer: 4 },
    dicom: { modalities: [{ name: 'ct1', aeTitle: 'CT01', transport: 'tls', worklistScope: { modalities: ['CT'] } }] },
  });
  t.is(config.hl7.maxConnectionsPerPeer, 16);
  t.is(config.dicom.modalities.length, 1 + STATION_COUNT);
  t.deepEqual(config.dicom.modalities[0]?.worklistScope, { stationAeTitles: [QUERY_STATION] });
  t.deepEqual(config.dicom.modalities.find((m) => m.aeTitle === 'ST07')?.worklistScope, { stationAeTitles: ['ST07'] });
});

test('per query = (21 queries - 1 query) / 20, and the table marks misses', (t) => {
  const run = (median: number) => ({ command: '', median, min: median, max: median, mean: median, stddev: 0 });
  t.true(Math.abs(perQueryMs(run(0.03), run(0.07)) - 2) < 1e-9);
  const table = formatTable([
    {
      id: 'x',
      metric: 'm',
      unit: 'ms',
      box: 2,
      anchor: 100,
      anchorLabel: 'wlmscpfs',
      ratio: 50,
      ratioLabel: 'anchor/box',
      target: '>= 100x',
      met: false,
    },
  ]);
  t.regex(table, /NO$/m);
});
