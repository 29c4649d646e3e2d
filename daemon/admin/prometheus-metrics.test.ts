import test from 'ava';
import { execFileSync } from 'node:child_process';
import { PrometheusMetrics } from './prometheus-metrics.ts';
import { whenMet, needsCommand } from '../../test/support/preconditions.ts';

function metricsWithSources(): PrometheusMetrics {
  const m = new PrometheusMetrics({ version: '0.1.0', nodeVersion: process.versions.node });
  m.setSources({
    destinations: () => [
      { destination: 'pacs', state: 'down', queued: 3, deadLetters: 1, oldestEnqueuedAt: Date.now() - 90_000 },
      { destination: 'ris', state: 'up', queued: 0, deadLetters: 0, oldestEnqueuedAt: undefined },
    ],
    connections: () => [
      { listener: 'hl7', count: 2 },
      { listener: 'dicom-tls', count: 1 },
    ],
    spool: () => ({ bytes: 5_000_000, highWaterBytes: 1_000_000_000, instances: 10 }),
    auditRecords: () => 1234,
    syslogCollectors: () => [{ collector: 'siem', lagRecords: 4, connected: true }],
    certificates: () => [{ certificate: 'device', notAfterMs: Date.parse('2027-01-01T00:00:00Z') }],
    safeMode: () => false,
    alerts: () => ({ open: 1, raisedByRule: { 'mass-access': 2 } }),
  });
  return m;
}

test('every metric is named in base units with bounded labels; a peer-chosen message type is counted as other', async (t) => {
  const m = metricsWithSources();
  m.hl7Message('ris', 'ORM^O01', 'AA');
  m.hl7Message('ris', '<SCRIPT>^EVE', 'AR');
  m.refusal('hl7', 'no-certificate');
  m.worklistQuery('CT01', 0.004);
  m.mpps('CT01', 'n-create', 'success');
  m.cStore('CT01', 'success', 524_288);
  m.cStore('CT01', 'failure', 0);
  const { body, contentType } = await m.exposition();
  t.regex(contentType, /^text\/plain/);
  t.regex(body, /edge_hl7_messages_total\{peer="ris",message_type="ORM\^O01",ack_code="AA"\} 1/);
  t.regex(body, /edge_hl7_messages_total\{peer="ris",message_type="other",ack_code="AR"\} 1/);
  t.notRegex(body, /SCRIPT|EVE/);
  t.regex(body, /edge_outbox_queue_depth\{destination="pacs"\} 3/);
  t.regex(body, /edge_outbox_oldest_age_seconds\{destination="pacs"\} (8\d|9\d)\.?\d*/);
  t.regex(body, /edge_outbox_circuit_state\{destination="pacs",state="down"\} 1/);
  t.regex(body, /edge_outbox_circuit_state\{destination="pacs",state="up"\} 0/);
  t.regex(body, /edge_audit_records_total 1234/);
  t.regex(body, /edge_cstore_bytes_total\{peer="CT01"\} 524288/);
  t.regex(body, /edge_cstore_instances_total\{peer="CT01",status_class="failure"\} 1/);
  t.regex(body, /edge_mwl_query_duration_seconds_bucket\{le="0.005",peer="CT01"\} 1/);
  t.regex(body, /edge_certificate_expiry_timestamp_seconds\{certificate="device"\} 1798761600/);
  t.regex(body, /edge_safe_mode 0/);
  t.regex(body, /edge_alerts_open 1/);
  t.regex(body, /edge_alerts_raised_total\{rule="mass-access"\} 2/);
  t.regex(body, /edge_build_info\{version="0.1.0",node_version="[\d.]+"\} 1/);
});

test('the audit records counter only ever goes up between scrapes', async (t) => {
  const m = new PrometheusMetrics({ version: 'x', nodeVersion: 'y' });
  let seq = 10;
  m.setSources({
    destinations: () => [],
    connections: () => [],
    spool: () => undefined,
    auditRecords: () => seq,
    syslogCollectors: () => [],
    certificates: () => [],
    safeMode: () => false,
    alerts: () => ({ open: 1, raisedByRule: { 'mass-access': 2 } }),
  });
  t.regex((await m.exposition()).body, /edge_audit_records_total 10\n/);
  seq = 25;
  t.regex((await m.exposition()).body, /edge_audit_records_total 25\n/);
});

whenMet(needsCommand('promtool'))('promtool check metrics passes on the exposition', async (t) => {
  const m = metricsWithSources();
  m.hl7Message('ris', 'ADT^A08', 'AE');
  m.worklistQuery('MR01', 0.2);
  const { body } = await m.exposition();
  // promtool exits non-zero on any lint problem and prints it.
  const out = execFileSync('promtool', ['check', 'metrics'], { input: body, encoding: 'utf8', timeout: 30_000 });
  t.is(out.trim(), '');
});
