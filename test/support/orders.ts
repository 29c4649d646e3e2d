// Builders for domain orders in tests (fictional patients).
import type { Order, Patient, ScheduledProcedureStep } from '../../daemon/core/order.ts';

export function testPatient(over: Partial<Patient> = {}): Patient {
  return { id: 'PAT1', issuer: 'GENHOSP', name: 'DOE^JANE', birthDate: '19800101', sex: 'F', otherIds: [], ...over };
}

export function testStep(over: Partial<ScheduledProcedureStep> = {}): ScheduledProcedureStep {
  return {
    id: 'SPS1',
    modality: 'CT',
    stationAeTitle: 'CT01',
    stationName: 'CT ROOM 1',
    location: '',
    startDate: '20261125',
    startTime: '090000',
    description: 'CT CHEST',
    protocolCodes: [{ codeValue: 'CTCHEST', codingSchemeDesignator: 'L', codeMeaning: 'CT CHEST' }],
    performingPhysician: '',
    status: 'SCHEDULED',
    ...over,
  };
}

export function testOrder(n: number | string, over: Partial<Order> = {}): Order {
  return {
    placerOrderNumber: `PLC${n}`,
    placerIssuer: '',
    fillerOrderNumber: `FIL${n}`,
    accessionNumber: `ACC${n}`,
    requestedProcedureId: `RP${n}`,
    requestedProcedureDescription: 'CT CHEST W/O CONTRAST',
    requestedProcedureCode: { codeValue: 'CTCHEST', codingSchemeDesignator: 'L', codeMeaning: 'CT CHEST W/O CONTRAST' },
    requestedProcedurePriority: 'ROUTINE',
    reasonForRequestedProcedure: '',
    studyInstanceUid: `1.2.826.0.1.3680043.9.7433.1.${typeof n === 'number' ? n : 1}`,
    studyInstanceUidGenerated: false,
    referringPhysicianName: 'WELBY^MARCUS',
    requestingPhysician: '',
    admissionId: '',
    currentPatientLocation: '',
    patient: testPatient(),
    steps: [testStep({ id: `SPS${n}` })],
    status: 'scheduled',
    source: { sendingApplication: 'RIS', sendingFacility: 'GENHOSP', controlId: `MSG${n}`, receivedAt: Date.now() },
    ...over,
  };
}
