// Alerts: what the box's alert rules raised from its audit trail (docs/incident-response.md), each with
// its rule, subject, what was observed against which threshold, and the audit records that are its
// evidence; open ones first, until someone acknowledges them (auditor, with a note). Quarantined peers
// are listed here too, with release for admins.
import { html, useState } from '../lib/html.js';
import { api } from '../lib/api.js';
import { usePoll } from '../lib/poll.js';
import { time } from '../lib/format.js';
import { Badge, ErrorBox, Loading, Section, StepUp, Table, useAction } from '../lib/ui.js';

export function Alerts({ session }) {
  const alerts = usePoll('/v1/alerts', 5000);
  const quarantine = usePoll('/v1/peers/quarantine', 5000);
  const action = useAction();
  const [acking, setAcking] = useState(undefined);
  const [note, setNote] = useState('');
  const roles = [session.role, session.elevatedTo].filter(Boolean);
  const mayAck = roles.includes('auditor');
  const mayRelease = roles.includes('admin');
  const refresh = () => {
    alerts.refresh();
    quarantine.refresh();
  };
  if (!alerts.data) return html`<${ErrorBox} error=${alerts.error} />${alerts.error ? null : html`<${Loading} what="the alerts" />`}`;
  const ack = async (e) => {
    e.preventDefault();
    const r = await action.run(() => api('/v1/alerts/acknowledge', { method: 'POST', body: { id: acking, note, by: session.username } }));
    if (r) {
      setAcking(undefined);
      setNote('');
    }
    refresh();
  };
  const release = async (name) => {
    const reason = prompt(`Why release ${name}? (audited)`);
    if (!reason) return;
    await action.run(() => api('/v1/peers/release', { method: 'POST', body: { name, reason, by: session.username } }));
    refresh();
  };
  const open = alerts.data.alerts.filter((a) => a.state === 'open');
  const closed = alerts.data.alerts.filter((a) => a.state !== 'open').slice(0, 50);
  const columns = (withActions) => [
    { key: 'state', label: 'State', render: (a) => html`<${Badge} state=${a.state === 'open' ? 'down' : 'up'}>${a.state}</${Badge}>` },
    { key: 'rule', label: 'Rule' },
    { key: 'subject', label: 'Subject', render: (a) => `${a.subject.kind} ${a.subject.id}` },
    { key: 'observed', label: 'Observed', render: (a) => `${a.observed} (${a.count}×)` },
    { key: 'threshold', label: 'Threshold' },
    {
      key: 'evidence',
      label: 'Evidence (audit seq)',
      render: (a) => `${a.evidence.join(', ')}${a.evidenceOmitted > 0 ? ` +${a.evidenceOmitted}` : ''}`,
    },
    { key: 'firstAt', label: 'First / last', render: (a) => `${time(a.firstAt)} / ${time(a.lastAt)}` },
    withActions
      ? {
          key: 'actions',
          label: 'Actions',
          render: (a) =>
            mayAck
              ? html`<button type="button" class="small" onClick=${() => setAcking(a.id)}>Acknowledge…</button>`
              : html`<span class="muted">auditor</span>`,
        }
      : {
          key: 'acknowledged',
          label: 'Acknowledged',
          render: (a) => (a.acknowledged ? `${a.acknowledged.by}, ${time(a.acknowledged.at)}: ${a.acknowledged.note}` : '–'),
        },
  ];
  return html`<div class="stack">
    <${ErrorBox} error=${alerts.error || action.error} />
    <${StepUp} action=${action} />
    <${Section} title=${`Open alerts (${open.length})`}>
      ${
        acking
          ? html`<form class="inline-form" onSubmit=${ack}>
              <label for="ack-note">What was found and done about ${acking}? (audited)</label>
              <input id="ack-note" required minlength="3" maxlength="500" value=${note} onInput=${(e) => setNote(e.currentTarget.value)} />
              <button type="submit">Acknowledge</button>
              <button type="button" class="secondary" onClick=${() => setAcking(undefined)}>Cancel</button>
            </form>`
          : null
      }
      <${Table} columns=${columns(true)} rows=${open} empty="No open alerts." />
    </${Section}>
    <${Section} title="Quarantined peers">
      <${Table}
        columns=${[
          { key: 'name', label: 'Peer', render: (q) => `${q.kind} ${q.name}` },
          { key: 'reason', label: 'Reason' },
          { key: 'by', label: 'By' },
          { key: 'at', label: 'Since', render: (q) => time(q.at) },
          {
            key: 'actions',
            label: 'Actions',
            render: (q) =>
              mayRelease ? html`<button type="button" class="small" onClick=${() => release(q.name)}>Release…</button>` : '–',
          },
        ]}
        rows=${quarantine.data ? quarantine.data.quarantined : []}
        empty="No peer is quarantined."
      />
    </${Section}>
    <p class="muted">
      To contain an incident: quarantine a peer (<code>edgectl peer quarantine NAME --reason …</code>), then rotate what it
      could have used in <a href="#/certificates">Certificates and keys</a> (the data key, the box's certificate). The
      breach-scope report (<code>edgectl report breach-scope</code>) lists whose data a time window touched.
    </p>
    <${Section} title="Acknowledged (latest 50)">
      <${Table} columns=${columns(false)} rows=${closed} empty="None yet." />
    </${Section}>
  </div>`;
}
