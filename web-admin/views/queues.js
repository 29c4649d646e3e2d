// Queues: per destination its depth, oldest age, circuit state and next try; the dead letters with the
// peer's reason; retry one, retry all, and discard (step-up and a reason).
import { html, useState } from '../lib/html.js';
import { api } from '../lib/api.js';
import { usePoll } from '../lib/poll.js';
import { duration, time } from '../lib/format.js';
import { Badge, ErrorBox, Loading, Section, StepUp, Table, useAction } from '../lib/ui.js';

export function Queues() {
  const queues = usePoll('/v1/queues', 5000);
  const dead = usePoll('/v1/queues/dead', 5000);
  const action = useAction();
  const [discarding, setDiscarding] = useState(undefined);
  const [reason, setReason] = useState('');
  const refresh = () => {
    queues.refresh();
    dead.refresh();
  };
  const act = async (path, body) => {
    const r = await action.run(() => api(path, { method: 'POST', body }));
    refresh();
    return r;
  };
  if (!queues.data) return html`<${ErrorBox} error=${queues.error} />${queues.error ? null : html`<${Loading} what="the queues" />`}`;
  const now = Date.now();
  const discard = async (e) => {
    e.preventDefault();
    const r = await act('/v1/queues/discard', { id: discarding, reason });
    if (r) {
      setDiscarding(undefined);
      setReason('');
    }
  };
  return html`<div class="stack">
    <${ErrorBox} error=${queues.error || action.error} />
    <${StepUp} action=${action} />
    ${action.result ? html`<p class="ok" role="status">Done: ${JSON.stringify(action.result)}</p>` : null}
    <${Section} title="Destinations">
      <${Table}
        columns=${[
          { key: 'destination', label: 'Destination' },
          { key: 'state', label: 'Circuit', render: (r) => html`<${Badge} state=${r.state} />` },
          { key: 'queued', label: 'Waiting' },
          {
            key: 'oldestEnqueuedAt',
            label: 'Oldest',
            render: (r) => (r.oldestEnqueuedAt ? duration((now - r.oldestEnqueuedAt) / 1000) : '–'),
          },
          { key: 'nextAttemptAt', label: 'Next try', render: (r) => (r.nextAttemptAt ? time(r.nextAttemptAt) : '–') },
          { key: 'deadLetters', label: 'Dead letters' },
          { key: 'lastError', label: 'Last error', render: (r) => (r.lastError ? `${r.lastError.code}: ${r.lastError.message}` : '–') },
          {
            key: 'actions',
            label: 'Actions',
            render: (r) =>
              html`<div class="row-actions">
                <button type="button" class="small" onClick=${() => act('/v1/queues/retry-now', { destination: r.destination })}>
                  Retry now
                </button>
                ${
                  r.deadLetters > 0
                    ? html`<button type="button" class="small" onClick=${() => act('/v1/queues/retry-all', { destination: r.destination })}>
                        Retry all dead letters
                      </button>`
                    : null
                }
              </div>`,
          },
        ]}
        rows=${queues.data.destinations}
        empty="No upstream destination is configured."
      />
    </${Section}>
    <${Section} title="Dead letters">
      ${
        discarding
          ? html`<form class="inline-form" onSubmit=${discard}>
              <label for="discard-reason">Why discard dead letter ${discarding}? (audited)</label>
              <input
                id="discard-reason"
                required
                minlength="3"
                maxlength="200"
                value=${reason}
                onInput=${(e) => setReason(e.currentTarget.value)}
              />
              <button type="submit" class="danger">Discard for good</button>
              <button type="button" class="secondary" onClick=${() => setDiscarding(undefined)}>Cancel</button>
            </form>`
          : null
      }
      <${Table}
        columns=${[
          { key: 'id', label: 'Id' },
          { key: 'destination', label: 'Destination' },
          { key: 'kind', label: 'What' },
          {
            key: 'reason',
            label: "Peer's reason",
            render: (r) => `${r.reason.code}${r.reason.peerStatus ? ` (${r.reason.peerStatus})` : ''}: ${r.reason.message}`,
          },
          { key: 'deadAt', label: 'Since', render: (r) => time(r.deadAt) },
          { key: 'attempts', label: 'Attempts' },
          {
            key: 'actions',
            label: 'Actions',
            render: (r) =>
              html`<div class="row-actions">
                <button type="button" class="small" onClick=${() => act('/v1/queues/retry-one', { id: r.id })}>Retry</button>
                <button type="button" class="small danger" onClick=${() => setDiscarding(r.id)}>Discard…</button>
              </div>`,
          },
        ]}
        rows=${dead.data ? dead.data.deadLetters : []}
        empty="No dead letters."
      />
    </${Section}>
  </div>`;
}
