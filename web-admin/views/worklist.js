// Worklist: today's scheduled steps per modality and station, minimised (no patient data). A role that
// may see patient data (or break-glass) can show name and ID; the box audits every such view.
import { html, useState } from '../lib/html.js';
import { usePoll } from '../lib/poll.js';
import { dicomDateTime, personName } from '../lib/format.js';
import { ErrorBox, Loading, Section, Table } from '../lib/ui.js';

function today() {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

export function Worklist({ session }) {
  const [date, setDate] = useState(today());
  const [accession, setAccession] = useState('');
  const [search, setSearch] = useState('');
  const [patients, setPatients] = useState(false);
  const may = [session.role, session.elevatedTo].some((r) => r === 'operator' || r === 'admin');
  const query = { date: date.replaceAll('-', ''), accession: search, patient: patients ? '1' : undefined };
  // With patient data, no background refresh: each view of patient data is one deliberate, audited look.
  const { data, error } = usePoll('/v1/worklist', patients ? 0 : 15000, query);
  const submit = (e) => {
    e.preventDefault();
    setSearch(accession.trim());
  };
  const columns = [
    { key: 'accessionNumber', label: 'Accession' },
    ...(patients
      ? [
          { key: 'patientName', label: 'Patient', render: (r) => personName(r.patientName) },
          { key: 'patientId', label: 'Patient ID' },
        ]
      : []),
    { key: 'procedure', label: 'Procedure' },
    { key: 'modality', label: 'Modality' },
    { key: 'station', label: 'Station' },
    { key: 'time', label: 'Scheduled', render: (r) => dicomDateTime(r.startDate, r.startTime) },
    { key: 'status', label: 'Status' },
  ];
  return html`<div class="stack">
    <form class="toolbar" onSubmit=${submit} role="search">
      <label for="wl-date">Day</label>
      <input id="wl-date" type="date" value=${date} onInput=${(e) => setDate(e.currentTarget.value || today())} />
      <label for="wl-accession">Accession</label>
      <input id="wl-accession" maxlength="16" value=${accession} onInput=${(e) => setAccession(e.currentTarget.value)} />
      <button type="submit">Search</button>
      ${
        may
          ? html`<button
              type="button"
              class=${patients ? 'secondary' : ''}
              onClick=${() => setPatients(!patients)}
              aria-pressed=${patients}
            >
              ${patients ? 'Hide patient data' : 'Show patient data (audited)'}
            </button>`
          : null
      }
    </form>
    <${ErrorBox} error=${error} />
    <${Section} title=${`Scheduled procedure steps${data ? ` (${data.items.length}${data.truncated ? '+' : ''})` : ''}`}>
      ${data ? html`<${Table} columns=${columns} rows=${data.items} empty="Nothing scheduled for this day." />` : html`<${Loading} what="the worklist" />`}
      ${patients ? html`<p class="muted">Patient data shown: this view was recorded in the audit trail.</p>` : null}
    </${Section}>
  </div>`;
}
