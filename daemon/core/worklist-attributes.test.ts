import test from 'ava';
import { itemsOf, textOf, type DataSet } from './dataset.ts';
import { Tag } from './data-dictionary.ts';
import { fitToVr, isCutInAnswers, WORKLIST_VRS, worklistItemToDataSet, worklistValueProblem } from './worklist-attributes.ts';
import { worklistItemForTests } from './test-support/in-memory-order-repository.ts';

function only<T>(values: readonly T[] | undefined): T {
  if (values?.length !== 1 || values[0] === undefined) throw new Error(`expected exactly one item, got ${values?.length}`);
  return values[0];
}

test('mapping: top-level attributes carry the order, patient and visit values', (t) => {
  const ds = worklistItemToDataSet(worklistItemForTests());
  const expected: [number, string][] = [
    [Tag.SpecificCharacterSet, 'ISO_IR 192'],
    [Tag.PatientName, 'DOE^JANE^M'],
    [Tag.PatientID, 'PID-0001'],
    [Tag.IssuerOfPatientID, 'HOSP'],
    [Tag.PatientBirthDate, '19800214'],
    [Tag.PatientSex, 'F'],
    [Tag.MedicalAlerts, 'LATEX'],
    [Tag.Allergies, 'IODINE'],
    [Tag.PatientWeight, '61.5'],
    [Tag.PatientSize, '1.68'],
    [Tag.PregnancyStatus, '0004'],
    [Tag.AdmissionID, 'ADM-1'],
    [Tag.CurrentPatientLocation, 'WARD 3'],
    [Tag.AccessionNumber, 'ACC-1'],
    [Tag.ReferringPhysicianName, 'REF^ROSA'],
    [Tag.RequestingPhysician, 'REQ^RAY'],
    [Tag.PlacerOrderNumberImagingServiceRequest, 'PLC-1'],
    [Tag.FillerOrderNumberImagingServiceRequest, 'FIL-1'],
    [Tag.RequestedProcedureID, 'RP-1'],
    [Tag.RequestedProcedureDescription, 'CT head'],
    [Tag.StudyInstanceUID, '1.2.826.0.1.3680043.10.1.1'],
    [Tag.RequestedProcedurePriority, 'ROUTINE'],
    [Tag.ReasonForTheRequestedProcedure, 'Headache'],
  ];
  for (const [tag, value] of expected) t.is(textOf(ds, tag), value, tag.toString(16));
  t.deepEqual(itemsOf(ds, Tag.ReferencedStudySequence), []);
  t.deepEqual(itemsOf(ds, Tag.ReferencedPatientSequence), []);
});

test('mapping: every element has the VR of PS3.6 and tags ascend at every level', (t) => {
  const check = (ds: DataSet): void => {
    const tags = [...ds.keys()];
    t.deepEqual(
      tags,
      [...tags].sort((a, b) => a - b),
    );
    for (const [tag, element] of ds) {
      t.is(element.vr, WORKLIST_VRS.get(tag) ?? 'UN', tag.toString(16));
      if (element.vr === 'SQ') element.value.forEach(check);
    }
  };
  check(worklistItemToDataSet(worklistItemForTests()));
});

test('mapping: the scheduled procedure step is one item with the step values', (t) => {
  const sps = only(itemsOf(worklistItemToDataSet(worklistItemForTests()), Tag.ScheduledProcedureStepSequence));
  t.is(textOf(sps, Tag.Modality), 'CT');
  t.is(textOf(sps, Tag.ScheduledStationAETitle), 'CT1');
  t.is(textOf(sps, Tag.ScheduledStationName), 'CT ROOM 1');
  t.is(textOf(sps, Tag.ScheduledProcedureStepLocation), 'RAD-B1');
  t.is(textOf(sps, Tag.ScheduledProcedureStepStartDate), '20240105');
  t.is(textOf(sps, Tag.ScheduledProcedureStepStartTime), '093000');
  t.is(textOf(sps, Tag.ScheduledPerformingPhysicianName), 'TECH^TOM');
  t.is(textOf(sps, Tag.ScheduledProcedureStepDescription), 'CT HEAD W/O CONTRAST');
  t.is(textOf(sps, Tag.ScheduledProcedureStepID), 'SPS-1');
  t.is(textOf(sps, Tag.ScheduledProcedureStepStatus), 'SCHEDULED');
  const protocol = only(itemsOf(sps, Tag.ScheduledProtocolCodeSequence));
  t.is(textOf(protocol, Tag.CodeValue), 'P-HEAD');
  t.is(textOf(protocol, Tag.CodingSchemeDesignator), '99LOCAL');
  t.is(textOf(protocol, Tag.CodeMeaning), 'Head routine');
  t.false(protocol.has(Tag.CodingSchemeVersion));
});

test('mapping: code sequences, other patient ids and long code values', (t) => {
  const ds = worklistItemToDataSet(
    worklistItemForTests({
      order: {
        requestedProcedureCode: {
          codeValue: 'A-VERY-LONG-CODE-VALUE-1',
          codingSchemeDesignator: 'LN',
          codeMeaning: 'Long',
          codingSchemeVersion: '2.7',
        },
      },
    }),
  );
  const code = only(itemsOf(ds, Tag.RequestedProcedureCodeSequence));
  t.false(code.has(Tag.CodeValue));
  t.is(textOf(code, Tag.LongCodeValue), 'A-VERY-LONG-CODE-VALUE-1');
  t.is(textOf(code, Tag.CodingSchemeVersion), '2.7');
  const other = only(itemsOf(ds, Tag.OtherPatientIDsSequence));
  t.is(textOf(other, Tag.PatientID), 'NAT-42');
  t.is(textOf(other, Tag.IssuerOfPatientID), 'NATIONAL');
  t.is(textOf(other, Tag.TypeOfPatientID), 'TEXT');
});

test('mapping: unknown values are present and zero-length (Type 2)', (t) => {
  const ds = worklistItemToDataSet(
    worklistItemForTests({
      order: { requestedProcedureCode: undefined, admissionId: '', referringPhysicianName: '' },
      patient: {
        birthDate: '',
        issuer: '',
        otherIds: [],
        medicalAlerts: undefined,
        allergies: undefined,
        weightKg: undefined,
        sizeM: undefined,
        pregnancyStatus: undefined,
      },
      step: { stationAeTitle: '', protocolCodes: [] },
    }),
  );
  for (const tag of [
    Tag.PatientBirthDate,
    Tag.IssuerOfPatientID,
    Tag.MedicalAlerts,
    Tag.Allergies,
    Tag.PatientWeight,
    Tag.PatientSize,
    Tag.PregnancyStatus,
    Tag.AdmissionID,
    Tag.ReferringPhysicianName,
  ]) {
    t.is(textOf(ds, tag), '', tag.toString(16));
  }
  t.deepEqual(itemsOf(ds, Tag.RequestedProcedureCodeSequence), []);
  t.deepEqual(itemsOf(ds, Tag.OtherPatientIDsSequence), []);
  const sps = only(itemsOf(ds, Tag.ScheduledProcedureStepSequence));
  t.is(textOf(sps, Tag.ScheduledStationAETitle), '');
  t.deepEqual(itemsOf(sps, Tag.ScheduledProtocolCodeSequence), []);
});

test('mapping: a site default issuer fills only missing issuers', (t) => {
  const ds = worklistItemToDataSet(worklistItemForTests({ patient: { issuer: '', otherIds: [{ id: 'X', issuer: 'OTHER' }] } }), {
    defaultIssuerOfPatientId: 'SITE',
  });
  t.is(textOf(ds, Tag.IssuerOfPatientID), 'SITE');
  t.is(textOf(only(itemsOf(ds, Tag.OtherPatientIDsSequence)), Tag.IssuerOfPatientID), 'OTHER');
});

test('mapping: each step of a multi-step order becomes its own item', (t) => {
  const base = worklistItemForTests();
  const second = { ...base.step, id: 'SPS-2', modality: 'MR' };
  const ds = worklistItemToDataSet({ order: { ...base.order, steps: [base.step, second] }, step: second });
  const sps = only(itemsOf(ds, Tag.ScheduledProcedureStepSequence));
  t.is(textOf(sps, Tag.ScheduledProcedureStepID), 'SPS-2');
  t.is(textOf(sps, Tag.Modality), 'MR');
});

test('worklistValueProblem: what the encoding cannot carry, per VR', (t) => {
  t.is(worklistValueProblem(Tag.RequestedProcedureDescription, 'D'.repeat(65_534)), undefined);
  t.is(worklistValueProblem(Tag.RequestedProcedureDescription, 'D'.repeat(65_535)), 'too-long', 'odd lengths are padded to 65,536');
  t.is(worklistValueProblem(Tag.PatientName, 'É'.repeat(32_767)), undefined);
  t.is(worklistValueProblem(Tag.PatientName, 'É'.repeat(32_768)), 'too-long', 'two UTF-8 bytes each');
  t.is(worklistValueProblem(Tag.PatientName, '😀'.repeat(16_384)), 'too-long', 'four UTF-8 bytes each');
  // Code values over 16 characters become Long Code Value (UC), whose length field has 32 bits.
  t.is(worklistValueProblem(Tag.CodeValue, 'C'.repeat(70_000)), undefined);
  t.is(worklistValueProblem(Tag.LongCodeValue, 'C'.repeat(70_000)), undefined);
  for (const c of ['\u0000', '\u0009', '\u000a', '\u001b', '\u007f', '\u0080', '\u0085', '\u009f']) {
    t.is(worklistValueProblem(Tag.PatientName, `DOE${c}^JANE`), 'control-character', `U+${c.codePointAt(0)!.toString(16)}`);
  }
  t.is(worklistValueProblem(Tag.PatientName, 'DOE^JANE=山田^太郎'), undefined);
  t.is(worklistValueProblem(Tag.PatientName, 'DOE\u00a0JANE'), undefined, 'U+00A0 is a graphic character');
});

test("a test or training box's mark leads the SPS Description (within LO's 64 characters) and is the step's comments", (t) => {
  const plain = only(itemsOf(worklistItemToDataSet(worklistItemForTests()), Tag.ScheduledProcedureStepSequence));
  t.is(plain.get(Tag.CommentsOnTheScheduledProcedureStep), undefined, 'a production item carries no comments of ours');
  const description = textOf(plain, Tag.ScheduledProcedureStepDescription);
  const marked = only(
    itemsOf(worklistItemToDataSet(worklistItemForTests(), { servedPrefix: 'TEST:' }), Tag.ScheduledProcedureStepSequence),
  );
  t.is(textOf(marked, Tag.ScheduledProcedureStepDescription), `TEST: ${description}`);
  t.regex(textOf(marked, Tag.CommentsOnTheScheduledProcedureStep) ?? '', /^TEST: not a real order/);
  t.deepEqual(
    [...marked.keys()],
    [...marked.keys()].toSorted((a, b) => a - b),
    'ascending tag order',
  );
  const long = worklistItemForTests();
  const longStep = { ...long.step, description: 'X'.repeat(64) };
  const clipped = only(
    itemsOf(worklistItemToDataSet({ ...long, step: longStep }, { servedPrefix: 'TRAINING:' }), Tag.ScheduledProcedureStepSequence),
  );
  t.is(textOf(clipped, Tag.ScheduledProcedureStepDescription), `TRAINING: ${'X'.repeat(54)}`);
});

test('worklistValueProblem: identifiers over their VR length are a problem, free text is not', (t) => {
  t.is(worklistValueProblem(Tag.AccessionNumber, 'A'.repeat(16)), undefined);
  t.is(worklistValueProblem(Tag.AccessionNumber, 'A'.repeat(22)), 'identifier-too-long');
  t.is(worklistValueProblem(Tag.PatientID, 'P'.repeat(65)), 'identifier-too-long');
  t.is(worklistValueProblem(Tag.StudyInstanceUID, `1.${'2'.repeat(63)}`), 'identifier-too-long');
  t.is(worklistValueProblem(Tag.AccessionNumber, 'Ü'.repeat(16)), undefined, 'characters, not UTF-8 bytes');
  t.is(worklistValueProblem(Tag.RequestedProcedureDescription, 'D'.repeat(20_000)), undefined);
  t.true(isCutInAnswers(Tag.RequestedProcedureDescription, 'D'.repeat(65)));
  t.false(isCutInAnswers(Tag.RequestedProcedureDescription, 'D'.repeat(64)));
  t.false(isCutInAnswers(Tag.AccessionNumber, 'A'.repeat(22)), 'identifiers are never cut');
});

test('fitToVr: free text is cut at a character boundary, PN per component group', (t) => {
  t.is(fitToVr(Tag.RequestedProcedureDescription, 'LO', 'D'.repeat(100)), 'D'.repeat(64));
  // 63 ASCII characters then an astral character (two UTF-16 units, four UTF-8 bytes): it stays whole.
  const astral = `${'D'.repeat(63)}😀😀`;
  t.is(fitToVr(Tag.RequestedProcedureDescription, 'LO', astral), `${'D'.repeat(63)}😀`);
  t.true(
    Buffer.from(fitToVr(Tag.RequestedProcedureDescription, 'LO', astral), 'utf8')
      .toString('utf8')
      .endsWith('😀'),
  );
  const ideographic = '山'.repeat(70);
  t.is(fitToVr(Tag.PatientName, 'PN', `${'A'.repeat(70)}=${ideographic}`), `${'A'.repeat(64)}=${'山'.repeat(64)}`);
  t.is(fitToVr(Tag.AccessionNumber, 'SH', 'A'.repeat(22)), 'A'.repeat(22), 'an identifier is never cut');
});

test('mapping: free text over its VR length is cut in the data set, the order keeps it', (t) => {
  const long = 'É'.repeat(20_000);
  const item = worklistItemForTests({ order: { requestedProcedureDescription: long } });
  const ds = worklistItemToDataSet(item);
  t.is(textOf(ds, Tag.RequestedProcedureDescription), 'É'.repeat(64));
  t.is(item.order.requestedProcedureDescription, long);
});
