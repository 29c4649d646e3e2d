// Station assignment against real peers: the RIS (mllp_send through a TLS client) sends orders without
// ORC-18/OBR-21; a CT console that asks only for its own Scheduled Station AE Title (DCMTK findscu, as many
// consoles do by default) finds the order its site rule assigns it, and an order no rule matches gets the
// configured default station instead of an empty (0040,0001).
import test from 'ava';
import { findscu } from '../support/dicom-peers.ts';
import { fixture, mllpSend, msa } from '../support/hl7-peers.ts';
import { Daemon, createSite } from '../support/site.ts';

type Site = Awaited<ReturnType<typeof createSite>>;
let site: Site;
let daemon: Daemon;

test.before(async () => {
  site = await createSite((c) => {
    c['dicom'].worklist = {
      stationRules: [
        { name: 'ct-chest', when: { modalities: ['CT'], procedureCodes: ['CTCHEST'] }, stationAeTitle: 'CT01', stationName: 'CT ROOM 1' },
        { name: 'ct-other', when: { modalities: ['CT'], sendingFacilities: ['OTHERHOSP'] }, stationAeTitle: 'CT09', priority: -1 },
      ],
      defaultStation: { aeTitle: 'UNASSIGNED' },
    };
  });
  daemon = await Daemon.start(site.configFile);
});

test.after.always(async () => {
  await daemon?.stop();
  await site?.cleanup();
});

const ris = () => ({ certFile: site.ris.certFile, keyFile: site.ris.keyFile, caFile: site.pki.caCert });
const STATION_KEYS = [
  'AccessionNumber',
  'ScheduledProcedureStepSequence[0].Modality',
  'ScheduledProcedureStepSequence[0].ScheduledStationName',
];

test.serial('a console querying by its own AE title gets what its rule assigns; an unmatched order gets the default station', async (t) => {
  const acks = await mllpSend(
    daemon.ports.hl7,
    ris(),
    await Promise.all(['orm-o01-new-ct.hl7', 'orm-o01-new-mr-escapes.hl7'].map(fixture)),
  );
  t.deepEqual(acks.map(msa), ['AA', 'AA']);
  const ct = site.modalities.find((x) => x.aeTitle === 'CT01')!;
  const own = await findscu({
    port: daemon.ports.dicomTls,
    callingAe: 'CT01',
    tls: { certFile: ct.certFile!, keyFile: ct.keyFile!, caFile: site.pki.caCert },
    keys: [...STATION_KEYS, 'ScheduledProcedureStepSequence[0].ScheduledStationAETitle=CT01'],
  });
  t.is(own.finalStatus, 'Success', own.stdout + own.stderr);
  t.is(own.responses.length, 1, own.stdout);
  t.like(own.responses[0], { AccessionNumber: 'ACC0001', ScheduledStationAETitle: 'CT01', ScheduledStationName: 'CT ROOM 1' });

  const mr = await findscu({
    port: daemon.ports.dicomPlain,
    callingAe: 'MR01',
    keys: [...STATION_KEYS, 'ScheduledProcedureStepSequence[0].ScheduledStationAETitle'],
  });
  const item = mr.responses.find((r) => r['AccessionNumber'] === 'ACC0002');
  t.like(item, { ScheduledStationAETitle: 'UNASSIGNED' }, mr.stdout);
});
