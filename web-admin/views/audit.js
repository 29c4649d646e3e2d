// Audit (auditor): search the recent chain by time range, patient, accession, user, peer and event type;
// how far the chain is verified; the break-glass review list.
import { html, useState } from '../lib/html.js';
import { usePoll } from '../lib/poll.js';
import { time } from '../lib/format.js';
import { ErrorBox, Fields, Loading, Section, Table } from '../lib/ui.js';

const FIELDS = [
  ['from', 'From', 'datetime-local'],
  ['to', 'To', 'datetime-local'],
  ['type', 'Event type (prefix)', 'text'],
  ['patient', 'Patient ID', 'text'],
  ['accession', 'Accession', 'text'],
  ['user', 'User', 'text'],
  ['peer', 'Peer', 'text'],
];

const COLUMNS = [
  { key: 'seq', label: 'Seq' },
  { key: 'at', label: 'When', render: (r) => time(r.at) },
  { key: 'type', label: 'Type' },
  { key: 'outcome', label: 'Outcome' },
  { key: 'participants', label: 'Who' },
  { key: 'patient', label: 'Patient' },
  { key: 'accessionNumber', label: 'Accession' },
  { key: 'detail', label: 'Detail' },
];

const GLASS_COLUMNS = [
  { key: 'username', label: 'User' },
  { key: 'role', label: 'Raised to' },
  { key: 'reason', label: 'Stated reason' },
  { key: 'startedAt', label: 'From', render: (r) => time(r.startedAt) },
  { key: 'stoppedAt', label: 'Ended', render: (r) => (r.stoppedAt ? `${time(r.stoppedAt)} (${r.stopReason ?? ''})` : 'active') },
  { key: 'reviewedAt', label: 'Reviewed', render: (r) => (r.reviewedAt ? `${time(r.reviewedAt)} by ${r.reviewedBy}` : 'not yet') },
];

function toQuery(form) {
  const q = {};
  for (const [k, , type] of FIELDS) {
    const v = (form[k] ?? '').trim();
    if (v !== '') q[k] = type === 'datetime-local' ? new Date(v).toISOString() : v;
  }
  return q;
}

export function Audit() {
  const [form, setForm] = useState({});
  const [query, setQuery] = useState({});
  const { data, error } = usePoll('/v1/audit/search', 0, query);
  const glass = usePoll('/v1/break-glass', 30000);
  const submit = (e) => {
    e.preventDefault();
    setQuery(toQuery(form));
  };
  const chain = data?.chain;
  return html`<div class="stack">
    <form class="filters card" onSubmit=${submit} role="search" aria-label="Search the audit trail">
      ${FIELDS.map(
        ([k, label, type]) =>
          html`<div class="field">
            <label for=${`audit-${k}`}>${label}</label>
            <input
              id=${`audit-${k}`}
              type=${type}
              maxlength="64"
              value=${form[k] ?? ''}
              onInput=${(e) => setForm({ ...form, [k]: e.currentTarget.value })}
            />
          </div>`,
      )}
      <button type="submit">Search</button>
    </form>
    <${ErrorBox} error=${error} />
    ${
      chain
        ? html`<${Section} title="Chain">
          <${Fields}
            items=${[
              ['Records', String(chain.seq)],
              ['Verified through', chain.integrity ? `seq ${chain.integrity.verifiedSeq}` : 'not yet'],
              ['Damaged ranges', chain.integrity && chain.integrity.damaged.length > 0 ? JSON.stringify(chain.integrity.damaged) : 'none'],
              ['Failed appends', String(chain.failedAppends)],
            ]}
          />
          <p class="muted">Signed bundles: the audit pull API (client certificate from the central CA), then <code>edgectl audit verify</code>.</p>
        </${Section}>`
        : null
    }
    <${Section} title=${data ? `Records (seq ${data.searchedFromSeq}–${data.searchedToSeq} searched)` : 'Records'}>
      ${data ? html`<${Table} columns=${COLUMNS} rows=${data.records} empty="No record matches." />` : html`<${Loading} what="the audit trail" />`}
    </${Section}>
    <${Section} title="Break-glass review">
      ${
        glass.data
          ? html`<${Table} columns=${GLASS_COLUMNS} rows=${glass.data.records} empty="No break-glass use recorded." />`
          : html`<${Loading} what="break-glass use" />`
      }
    </${Section}>
  </div>`;
}
