import test from 'ava';
import { assignStation, orderedRules, overlappingRules, type StationRule } from './station-assignment.ts';

const rule = (name: string, when: StationRule['when'], stationAeTitle: string, priority = 0, stationName = ''): StationRule => ({
  name,
  when,
  stationAeTitle,
  stationName,
  priority,
});
const facts = { modality: 'CT', procedureCode: 'CTCHEST', location: 'ER', sendingFacility: 'GENHOSP' };

test('the first rule that holds assigns the station; all its conditions must hold; else the fallback', (t) => {
  const rules = orderedRules([
    rule('er-ct', { modalities: ['CT'], locations: ['ER'] }, 'CT_ER', 0, 'CT EMERGENCY'),
    rule('ct', { modalities: ['CT'] }, 'CT01'),
    rule('mr', { modalities: ['MR'] }, 'MR01'),
  ]);
  const fallback = { aeTitle: 'UNKNOWN', name: '' };
  t.deepEqual(assignStation({ rules, fallback }, facts), { aeTitle: 'CT_ER', name: 'CT EMERGENCY', rule: 'er-ct' });
  t.like(assignStation({ rules, fallback }, { ...facts, location: 'WARD' }), { aeTitle: 'CT01', rule: 'ct' });
  t.deepEqual(assignStation({ rules, fallback }, { ...facts, modality: 'US' }), fallback);
});

test('priority beats the order of the list', (t) => {
  const rules = orderedRules([rule('any', {}, 'ANY'), rule('chest', { procedureCodes: ['CTCHEST'] }, 'CT02', 10)]);
  t.like(assignStation({ rules, fallback: { aeTitle: 'X', name: '' } }, facts), { aeTitle: 'CT02' });
});

test('overlapping rules: equal priority, a possible common order, different stations', (t) => {
  const rules = [
    rule('ct', { modalities: ['CT'] }, 'CT01'),
    rule('genhosp', { sendingFacilities: ['GENHOSP'] }, 'CT02'),
    rule('mr', { modalities: ['MR'] }, 'MR01'),
    rule('ct-high', { modalities: ['CT'] }, 'CT03', 5),
    rule('ct-same', { modalities: ['CT', 'MR'] }, 'CT01'),
  ];
  t.deepEqual(overlappingRules(rules), [
    [0, 1],
    [1, 2],
    [1, 4],
    [2, 4],
  ]);
});
