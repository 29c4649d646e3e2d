// The admin page's worklist view (`GET /v1/worklist`): one day's scheduled procedure steps per modality
// and station, minimised by default (accession, procedure, modality, station, time, status). Patient
// name and ID come only with `patient=1`, for a caller whose role may see patient data (or who holds a
// break-glass elevation to one), and every such view is an audit record naming the patients it showed.
import type { AuditParticipant } from '../core/audit.ts';
import type { ControlRequest, ControlRoute } from '../core/control-route.ts';
import { EdgeError } from '../core/errors.ts';
import type { FlowContext } from './flow-context.ts';

/** Items answered at most (a department's day is a few hundred). */
const MAX_ITEMS = 1000;

export interface WorklistViewAccess {
  /** Whether the caller of `req` may see patient data (the role table decides; the listener tells). */
  mayViewPatients(req: ControlRequest): boolean;
  /** The caller as an audit participant. */
  actor(req: ControlRequest): AuditParticipant;
}

function today(): string {
  return new Date().toISOString().slice(0, 10).replaceAll('-', '');
}

export function worklistRoute(ctx: FlowContext, access: WorklistViewAccess): ControlRoute {
  const { store, audit, box } = ctx;
  return {
    method: 'GET',
    path: '/v1/worklist',
    permission: 'viewer',
    handle: async (req) => {
      const date = req.query.get('date') ?? today();
      if (!/^\d{8}$/.test(date)) throw new EdgeError('EDGE_CONTROL_BAD_REQUEST', '"date" must be YYYYMMDD');
      const accession = (req.query.get('accession') ?? '').trim();
      if (accession.length > 16) throw new EdgeError('EDGE_CONTROL_BAD_REQUEST', '"accession" is at most 16 characters (DICOM SH)');
      const withPatients = req.query.get('patient') === '1';
      if (withPatients && !access.mayViewPatients(req))
        throw new EdgeError('EDGE_ACCESS_FORBIDDEN', 'patient data in the worklist needs the operator permission or break-glass');
      const items: Record<string, unknown>[] = [];
      const shown: { id: string; issuer: string; accession: string }[] = [];
      let truncated = false;
      for await (const { order, step } of store.orders.worklist({ startDateFrom: date, startDateTo: date })) {
        if (accession !== '' && order.accessionNumber !== accession) continue;
        if (items.length >= MAX_ITEMS) {
          truncated = true;
          break;
        }
        items.push({
          accessionNumber: order.accessionNumber,
          procedure: order.requestedProcedureDescription || step.description,
          modality: step.modality,
          station: step.stationAeTitle || step.stationName,
          startDate: step.startDate,
          startTime: step.startTime,
          status: step.status,
          orderStatus: order.status,
          ...(withPatients
            ? { patientName: order.patient.name, patientId: order.patient.id, issuerOfPatientId: order.patient.issuer }
            : {}),
        });
        if (withPatients) shown.push({ id: order.patient.id, issuer: order.patient.issuer, accession: order.accessionNumber });
      }
      if (withPatients) {
        // One record per patient shown (PS3.15 A.5.3: one patient per record), all with the viewer.
        const actor = access.actor(req);
        const seen = new Set<string>();
        for (const s of shown) {
          const key = `${s.issuer}\0${s.id}`;
          if (seen.has(key)) continue;
          seen.add(key);
          audit.record({
            eventId: 'PatientRecord',
            type: 'admin.patient-data-viewed',
            action: 'R',
            outcome: 0,
            at: Date.now(),
            participants: [actor, { ...box, requestor: false }],
            patient: { id: s.id, issuer: s.issuer },
            ...(s.accession === '' ? {} : { accessionNumber: s.accession }),
            detail: `worklist of ${date}${accession === '' ? '' : ` for one accession`} shown with patient data`,
          });
        }
        if (shown.length === 0)
          audit.record({
            eventId: 'PatientRecord',
            type: 'admin.patient-data-viewed',
            action: 'R',
            outcome: 0,
            at: Date.now(),
            participants: [actor, { ...box, requestor: false }],
            detail: `worklist of ${date} asked with patient data: no items`,
          });
      }
      items.sort((a, b) => `${a['startDate']}${a['startTime']}`.localeCompare(`${b['startDate']}${b['startTime']}`));
      return { status: 200, body: { date, items, truncated, patientData: withPatients } };
    },
  };
}
