// `edgectl order add|list --config FILE`: downtime orders through the running daemon's control socket.
// `add` enters an order the RIS cannot take (the daemon commits it before it answers, gives it an
// accession number from the local range, and audits who entered it and why); `list` shows them.
import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { daemonCall } from './daemon-call.ts';

export const orderHelp = `usage: edgectl order <action> --config FILE [options]

Downtime orders: entered at the box while the RIS cannot take orders, marked downtime on the worklist
and in the audit trail, reconciled with the RIS when it is back; see docs/downtime.md.

  add --patient-name "FAMILY^GIVEN" (--patient-id ID | --temporary-id) --birth-date YYYYMMDD
      --sex M|F|O --procedure TEXT --modality CT --station AE_TITLE --at YYYY-MM-DDTHH:MM
      --reason TEXT [--json]
                 prints the accession number the order got; it is on the worklist at once
  list [--json]  every downtime order with its accession number, patient, who entered it and why, and
                 where its reconciliation with the RIS stands (waiting, linked, refused, conflict, ...)
  reconciliation [--json]
                 the orders a person must resolve: the RIS refused them, named another patient, or
                 did not answer within downtime.answerDeadlineMs
  resolve --placer NUMBER --note TEXT
                 close one after checking it (audited with your name and the note)

Exit status: 0 done, 1 the daemon refused (the reason names the field) or is not running, 2 usage error.`;

function usage(message: string): number {
  console.error(`edgectl: ${message}`);
  console.error("Run 'edgectl order --help' for usage.");
  return 2;
}

export async function orderCommand(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        config: { type: 'string' },
        'patient-name': { type: 'string' },
        'patient-id': { type: 'string' },
        'temporary-id': { type: 'boolean' },
        'birth-date': { type: 'string' },
        sex: { type: 'string' },
        procedure: { type: 'string' },
        modality: { type: 'string' },
        station: { type: 'string' },
        at: { type: 'string' },
        reason: { type: 'string' },
        placer: { type: 'string' },
        note: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    return usage((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    console.log(orderHelp);
    return 0;
  }
  const action = positionals[0];
  if (action === undefined) return usage('order needs an action: add, list, reconciliation or resolve');
  if (values.config === undefined) return usage(`order ${action} needs --config FILE`);
  const call = daemonCall(values.config, 30_000);
  switch (action) {
    case 'add': {
      if ((values['patient-id'] === undefined) === (values['temporary-id'] !== true)) {
        return usage('order add needs exactly one of --patient-id ID or --temporary-id');
      }
      const r = await call('POST', '/v1/orders/downtime', {
        patientName: values['patient-name'],
        ...(values['patient-id'] === undefined ? {} : { patientId: values['patient-id'] }),
        birthDate: values['birth-date'],
        sex: values.sex,
        procedure: values.procedure,
        modality: values.modality,
        stationAeTitle: values.station,
        scheduledAt: values.at,
        reason: values.reason,
        user: userInfo().username,
      });
      if (r.status !== 200) return 1;
      const o = r.body.order;
      if (values.json === true) console.log(JSON.stringify(o, null, 2));
      else {
        console.log(
          `downtime order ${o.accessionNumber} for ${o.patient.name} (patient ID ${o.patient.id}${o.temporaryPatientId ? ', temporary' : ''})`,
        );
        console.log(`  ${o.modality} at ${o.stationAeTitle}, ${o.scheduled}: ${o.procedure}; on the worklist now`);
      }
      return 0;
    }
    case 'list':
    case 'reconciliation': {
      const r = await call('GET', action === 'list' ? '/v1/orders/downtime' : '/v1/orders/reconciliation');
      if (r.status !== 200) return 1;
      if (values.json === true) console.log(JSON.stringify(r.body, null, 2));
      else {
        if (action === 'reconciliation' && r.body.orders.length === 0) console.log('nothing to resolve');
        for (const o of r.body.orders)
          console.log(
            `${o.placerOrderNumber}  ${String(o.state).padEnd(10)} accession ${o.accessionNumber}  ${o.patient.id}${o.temporaryPatientId ? ' (temp)' : ''}  ${o.modality} ${o.stationAeTitle} ${o.scheduled}  by ${o.enteredBy}: ${o.reason}\n    ${o.why}`,
          );
      }
      return 0;
    }
    case 'resolve': {
      if (values.placer === undefined || values.note === undefined) return usage('order resolve needs --placer NUMBER and --note TEXT');
      const r = await call('POST', '/v1/orders/reconciliation/resolve', {
        placerOrderNumber: values.placer,
        note: values.note,
        user: userInfo().username,
      });
      if (r.status !== 200) return 1;
      console.log(`resolved ${values.placer}`);
      return 0;
    }
    default:
      return usage(`unknown order action "${action}"`);
  }
}
