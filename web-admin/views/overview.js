// Overview: can scanning go on? Serving or safe mode, the keys backend, listeners, upstream
// destinations, alarms, and the host's health. Refreshed every 5 s in the background.
import { html } from '../lib/html.js';
import { usePoll } from '../lib/poll.js';
import { bytes, duration, time } from '../lib/format.js';
import { Badge, ErrorBox, Fields, Loading, Meter, Section, Table } from '../lib/ui.js';

export const OVERVIEW_REFRESH_MS = 5000;

export function Overview() {
  const { data, error, at } = usePoll('/v1/overview', OVERVIEW_REFRESH_MS);
  if (!data) return html`<${ErrorBox} error=${error} />${error ? null : html`<${Loading} what="the overview" />`}`;
  const critical = data.alarms.filter((a) => a.severity === 'critical').length;
  const sys = data.system;
  return html`<div class="grid" data-live=${at ? at.toISOString() : ''}>
    <${ErrorBox} error=${error} />
    <section class=${`card status ${data.serving ? (critical > 0 ? 'status-warn' : 'status-ok') : 'status-bad'}`} aria-live="polite">
      <h2>${data.serving ? 'Serving' : 'Safe mode'}</h2>
      <p>${data.serving ? (critical > 0 ? `${critical} critical alarm(s): see below.` : 'Scanning can go on.') : data.safeModeReason}</p>
      <p class="muted">Site ${data.site}; up ${duration(data.uptimeMs / 1000)}; updated ${at ? at.toLocaleTimeString() : ''}</p>
    </section>
    <${Section} title="Keys">
      ${
        data.keysBackend === 'file'
          ? html`<p class="loud" role="alert">
              keys.backend <strong>file</strong>: DEVELOPMENT ONLY. The data key is not sealed by a TPM.
            </p>`
          : html`<p><${Badge} state="up">${data.keysBackend}</${Badge}> keys sealed by the TPM</p>`
      }
    </${Section}>
    <${Section} title="Alarms">
      ${
        data.alarms.length === 0
          ? html`<p class="muted">No alarms.</p>`
          : html`<ul class="alarms">
              ${data.alarms.map((a) => html`<li class=${`alarm alarm-${a.severity}`}><${Badge} state=${a.severity} /> ${a.text}</li>`)}
            </ul>`
      }
    </${Section}>
    <${Section} title="Listeners">
      <${Table}
        columns=${[
          { key: 'name', label: 'Listener' },
          { key: 'port', label: 'Port' },
          { key: 'up', label: 'State', render: (r) => html`<${Badge} state=${r.up ? 'up' : 'down'} />` },
        ]}
        rows=${data.listeners}
      />
    </${Section}>
    <${Section} title="Upstream">
      <${Table}
        columns=${[
          { key: 'destination', label: 'Destination' },
          { key: 'state', label: 'State', render: (r) => html`<${Badge} state=${r.state} />` },
          { key: 'queued', label: 'Waiting' },
          { key: 'deadLetters', label: 'Dead letters' },
        ]}
        rows=${data.destinations}
        empty="No upstream destination is configured."
      />
    </${Section}>
    <${Section} title="Host">
      ${
        sys
          ? html`<${Meter} label="CPU load" value=${sys.cpuLoadPercent} max=${100} text=${`${sys.cpuLoadPercent} %`} />
              <${Meter}
                label="Memory in use"
                value=${sys.memoryTotalBytes - sys.memoryAvailableBytes}
                max=${sys.memoryTotalBytes}
                text=${`${bytes(sys.memoryTotalBytes - sys.memoryAvailableBytes)} of ${bytes(sys.memoryTotalBytes)}`}
              />
              ${sys.disks.map(
                (d) =>
                  html`<${Meter}
                    label=${`Disk (${d.name})`}
                    value=${d.totalBytes - d.freeBytes}
                    max=${d.totalBytes}
                    high=${d.totalBytes * 0.85}
                    text=${`${bytes(d.freeBytes)} free of ${bytes(d.totalBytes)}`}
                  />`,
              )}
              <${Fields}
                items=${[
                  ['Temperature', sys.temperatureC === undefined || sys.temperatureC === null ? 'no sensor' : `${sys.temperatureC} °C`],
                  ['Host uptime', duration(sys.uptimeSeconds)],
                  [
                    'NTP',
                    sys.ntpSynchronized === true
                      ? 'synchronised'
                      : sys.ntpSynchronized === false
                        ? 'NOT synchronised'
                        : 'unknown (no timedatectl)',
                  ],
                  ['Sampled', time(sys.sampledAt)],
                ]}
              />`
          : html`<p class="muted">First sample of the host's health in a few seconds.</p>`
      }
    </${Section}>
    <${Section} title="Services">
      <${Table}
        columns=${[
          { key: 'name', label: 'Service' },
          {
            key: 'status',
            label: 'Health',
            render: (r) => html`<${Badge} state=${r.status === 'ok' ? 'up' : r.status} >${r.status}</${Badge}>`,
          },
          { key: 'detail', label: 'Detail' },
        ]}
        rows=${data.services}
      />
    </${Section}>
  </div>`;
}
