// Images: the spool against its high-water mark, what is being received now, instances stored and
// forwarded per hour, and recent refusals with why.
import { html } from '../lib/html.js';
import { usePoll } from '../lib/poll.js';
import { bytes, time } from '../lib/format.js';
import { Badge, ErrorBox, Fields, Loading, Meter, Section, Table } from '../lib/ui.js';

export function Images() {
  const { data, error } = usePoll('/v1/images', 5000);
  if (!data) return html`<${ErrorBox} error=${error} />${error ? null : html`<${Loading} what="the images" />`}`;
  const s = data.spool;
  const lastHours = data.perHour.slice(-12);
  return html`<div class="stack">
    <${ErrorBox} error=${error} />
    <${Section} title="Spool">
      <${Meter} label="Spool use" value=${s.bytes} max=${s.highWaterBytes} high=${s.highWaterBytes * 0.8} text=${`${bytes(s.bytes)} of ${bytes(s.highWaterBytes)} (high-water mark)`} />
      <${Fields}
        items=${[
          [
            'Admission',
            html`<${Badge} state=${s.admission.accept ? 'up' : 'down'}>${s.admission.accept ? 'accepting images' : 'refusing images'}</${Badge}>${s.admission.why ? ` ${s.admission.why}` : ''}`,
          ],
          ['Instances waiting for the PACS', String(s.instances)],
          ['Being received now', bytes(s.inflightBytes)],
          ['Free on the spool file system', bytes(s.freeBytes)],
          ['Forwarding', data.pacs ? (data.pacs === 'stow' ? 'STOW-RS' : 'C-STORE') : 'no PACS configured'],
        ]}
      />
    </${Section}>
    <${Section} title="Per hour (last 12 hours)">
      <${Table}
        columns=${[
          { key: 'hour', label: 'Hour', render: (r) => time(r.hour) },
          { key: 'stored', label: 'Received' },
          { key: 'forwarded', label: 'Forwarded' },
        ]}
        rows=${lastHours.reverse()}
      />
    </${Section}>
    <${Section} title="Recent refusals">
      <${Table}
        columns=${[
          { key: 'at', label: 'When', render: (r) => time(r.at) },
          { key: 'aeTitle', label: 'Modality' },
          { key: 'status', label: 'Status' },
          { key: 'why', label: 'Why' },
        ]}
        rows=${data.refusals}
        empty="No image was refused since the box started."
      />
    </${Section}>
  </div>`;
}
