// Certificates and keys: each certificate's expiry (warned 30 days ahead), the keys backend, the TPM's
// PCR policy, and the data-key rotation (admin, step-up).
import { html } from '../lib/html.js';
import { api } from '../lib/api.js';
import { usePoll } from '../lib/poll.js';
import { time } from '../lib/format.js';
import { Badge, ErrorBox, Fields, Loading, Section, StepUp, Table, useAction } from '../lib/ui.js';

export function Certificates({ session }) {
  const { data, error, refresh } = usePoll('/v1/certificates', 60000);
  const action = useAction();
  if (!data) return html`<${ErrorBox} error=${error} />${error ? null : html`<${Loading} what="the certificates" />`}`;
  const k = data.keys;
  const isAdmin = session.role === 'admin' || session.elevatedTo === 'admin';
  const rotate = async () => {
    await action.run(() => api('/v1/keys/rotate-data-key', { method: 'POST', body: {} }));
    refresh();
  };
  return html`<div class="stack">
    <${ErrorBox} error=${error || action.error} />
    <${StepUp} action=${action} />
    ${action.result ? html`<p class="ok" role="status">Data key rotated.</p>` : null}
    <${Section} title="Certificates">
      <${Table}
        columns=${[
          { key: 'certificate', label: 'Certificate' },
          { key: 'subject', label: 'Subject' },
          { key: 'issuer', label: 'Issuer' },
          { key: 'notAfter', label: 'Expires', render: (r) => time(r.notAfter) },
          {
            key: 'state',
            label: 'State',
            render: (r) =>
              html`<${Badge} state=${r.state === 'ok' ? 'up' : r.state === 'expiring' ? 'degraded' : 'down'}>${r.state}</${Badge}>`,
          },
          { key: 'fingerprintSha256', label: 'SHA-256 fingerprint', render: (r) => html`<code class="wrap">${r.fingerprintSha256}</code>` },
        ]}
        rows=${data.certificates}
      />
    </${Section}>
    <${Section}
      title="Keys"
      actions=${isAdmin && k.canRotate ? html`<button type="button" onClick=${rotate} disabled=${action.busy}>Rotate the data key</button>` : null}
    >
      ${k.developmentOnly ? html`<p class="loud" role="alert">keys.backend file: DEVELOPMENT ONLY, no TPM seals the keys.</p>` : null}
      <${Fields}
        items=${[
          ['Backend', k.backend],
          ['TPM', k.tpm ? k.tpm.tcti : 'none'],
          ['PCR policy', k.tpm ? k.tpm.pcrPolicy : '–'],
          ['Data key rotation', k.canRotate ? 'available' : 'not with this backend'],
          ['Last rotation', k.lastRotation ? time(k.lastRotation) : 'none recorded since start'],
        ]}
      />
    </${Section}>
  </div>`;
}
