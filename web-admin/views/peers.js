// Peers: the RIS senders, modalities, upstream RIS and PACS and the syslog collectors the config names,
// with the identity each must present, when it was last seen, and the refusals of the last 24 hours.
import { html } from '../lib/html.js';
import { usePoll } from '../lib/poll.js';
import { time } from '../lib/format.js';
import { Badge, ErrorBox, Loading, Section, Table } from '../lib/ui.js';

export function Peers() {
  const { data, error } = usePoll('/v1/peers', 10000);
  if (!data) return html`<${ErrorBox} error=${error} />${error ? null : html`<${Loading} what="the peers" />`}`;
  const seen = (r) => time(r.lastSeen);
  return html`<div class="stack">
    <${ErrorBox} error=${error} />
    <${Section} title="RIS (HL7 senders)">
      <${Table}
        columns=${[
          { key: 'name', label: 'Name' },
          { key: 'sender', label: 'MSH-3^MSH-4' },
          { key: 'certificateCn', label: 'Certificate CN' },
          { key: 'addresses', label: 'Addresses' },
          { key: 'lastSeen', label: 'Last seen', render: seen },
        ]}
        rows=${data.ris}
        empty="No HL7 peer: every connection is refused."
      />
    </${Section}>
    <${Section} title="Modalities">
      <${Table}
        columns=${[
          { key: 'name', label: 'Name' },
          { key: 'aeTitle', label: 'AE title' },
          { key: 'transport', label: 'Transport' },
          { key: 'certificateCn', label: 'Certificate CN' },
          { key: 'addresses', label: 'Addresses' },
          { key: 'lastSeen', label: 'Last seen', render: seen },
        ]}
        rows=${data.modalities}
        empty="No modality is configured."
      />
    </${Section}>
    <${Section} title="Upstream">
      <${Table}
        columns=${[
          { key: 'kind', label: 'Peer' },
          { key: 'endpoint', label: 'Endpoint' },
          { key: 'state', label: 'State', render: (r) => html`<${Badge} state=${r.state ?? 'unknown'} />` },
        ]}
        rows=${data.upstream}
        empty="No upstream RIS or PACS is configured."
      />
    </${Section}>
    <${Section} title="Syslog collectors">
      <${Table}
        columns=${[
          { key: 'name', label: 'Name' },
          { key: 'endpoint', label: 'Endpoint' },
          {
            key: 'connected',
            label: 'State',
            render: (r) => html`<${Badge} state=${r.connected ? 'up' : 'down'}>${r.connected ? 'connected' : 'disconnected'}</${Badge}>`,
          },
        ]}
        rows=${data.collectors}
        empty="No syslog collector is configured."
      />
    </${Section}>
    <${Section} title="Open connections">
      <${Table} columns=${[
        { key: 'listener', label: 'Listener' },
        { key: 'count', label: 'Open' },
      ]} rows=${data.connections} />
    </${Section}>
    <${Section} title="Refusals in the last 24 hours">
      <${Table}
        columns=${[
          { key: 'listener', label: 'Listener' },
          { key: 'reason', label: 'Reason' },
          { key: 'last24h', label: 'Count' },
          { key: 'lastAt', label: 'Last', render: (r) => time(r.lastAt) },
        ]}
        rows=${data.refusals}
        empty="No refusals in the last 24 hours."
      />
    </${Section}>
  </div>`;
}
