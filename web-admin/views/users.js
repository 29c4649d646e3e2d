// Users (admin): the local accounts, their roles and state (accounts are created and changed through
// the access API and `edgectl user`).
import { html } from '../lib/html.js';
import { usePoll } from '../lib/poll.js';
import { time } from '../lib/format.js';
import { ErrorBox, Loading, Section, Table } from '../lib/ui.js';

export function Users() {
  const { data, error } = usePoll('/v1/users', 30000);
  if (!data) return html`<${ErrorBox} error=${error} />${error ? null : html`<${Loading} what="the users" />`}`;
  const users = Array.isArray(data) ? data : (data.users ?? []);
  return html`<${Section} title="Accounts">
    <${Table}
      columns=${[
        { key: 'username', label: 'User' },
        { key: 'displayName', label: 'Name' },
        { key: 'role', label: 'Role' },
        { key: 'state', label: 'State' },
        { key: 'mfa', label: 'MFA', render: (u) => (u.totp || u.mfa ? 'TOTP' : 'none') },
        { key: 'lastSignInAt', label: 'Last sign-in', render: (u) => time(u.lastSignInAt) },
      ]}
      rows=${users}
      empty="No accounts."
    />
  </${Section}>`;
}
