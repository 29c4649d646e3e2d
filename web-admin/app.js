// The admin page: sign-in, then one view per hash URL (#/overview, #/queues, …). Which views a user
// sees follows the role table the box enforces (the box refuses anything else anyway).
import { html, render, useEffect, useState } from './lib/html.js';
import { api, onSignedOut } from './lib/api.js';
import { SignIn } from './views/sign-in.js';
import { Overview } from './views/overview.js';
import { Peers } from './views/peers.js';
import { Queues } from './views/queues.js';
import { Worklist } from './views/worklist.js';
import { Images } from './views/images.js';
import { Certificates } from './views/certificates.js';
import { Audit } from './views/audit.js';
import { Configuration } from './views/configuration.js';
import { Users } from './views/users.js';
import { Alerts } from './views/alerts.js';

const STAFF = ['viewer', 'operator', 'admin'];
/** Each view with the roles that may open it and the API route it reads (a box without it hides the view). */
export const VIEWS = [
  { id: 'overview', title: 'Overview', roles: STAFF, route: '/api/v1/overview', view: Overview },
  { id: 'peers', title: 'Peers', roles: STAFF, route: '/api/v1/peers', view: Peers },
  { id: 'alerts', title: 'Alerts', roles: [...STAFF, 'auditor'], route: '/api/v1/alerts', view: Alerts },
  { id: 'queues', title: 'Queues', roles: STAFF, route: '/api/v1/queues', view: Queues },
  { id: 'worklist', title: 'Worklist', roles: STAFF, route: '/api/v1/worklist', view: Worklist },
  { id: 'images', title: 'Images', roles: STAFF, route: '/api/v1/images', view: Images },
  { id: 'certificates', title: 'Certificates and keys', roles: STAFF, route: '/api/v1/certificates', view: Certificates },
  { id: 'audit', title: 'Audit', roles: ['auditor'], route: '/api/v1/audit/search', view: Audit },
  { id: 'configuration', title: 'Configuration', roles: ['admin'], route: '/api/v1/config', view: Configuration },
  { id: 'users', title: 'Users', roles: ['admin'], route: '/api/v1/users', view: Users },
];

/** Set once signed in, so a reload asks for the session instead of showing the sign-in form. */
const SIGNED_IN_HINT = 'edge.signed-in';

function currentRoute() {
  const m = /^#\/([a-z-]+)/.exec(location.hash);
  return m ? m[1] : '';
}

function rolesOf(session) {
  return [session.role, session.elevatedTo].filter(Boolean);
}

function App() {
  const [session, setSession] = useState(sessionStorage.getItem(SIGNED_IN_HINT) ? undefined : null);
  const [route, setRoute] = useState(currentRoute());
  const [notice, setNotice] = useState('');

  useEffect(() => {
    const onHash = () => setRoute(currentRoute());
    addEventListener('hashchange', onHash);
    const off = onSignedOut(() => {
      sessionStorage.removeItem(SIGNED_IN_HINT);
      setNotice('Your session has ended (idle timeout, lifetime or sign-out elsewhere). Sign in again.');
      setSession(null);
    });
    return () => {
      removeEventListener('hashchange', onHash);
      off();
    };
  }, []);

  const loadSession = () =>
    Promise.all([api('/v1/session'), api('/v1/access/routes', { background: true })]).then(
      ([s, table]) => {
        if (s && (s.stage === undefined || s.stage === 'full')) {
          sessionStorage.setItem(SIGNED_IN_HINT, '1');
          setSession({ ...s, routes: new Set(table.routes.filter((r) => r.method === 'GET').map((r) => r.path)) });
        } else setSession(null);
      },
      () => setSession(null),
    );
  useEffect(() => {
    if (session === undefined) loadSession();
  }, []);

  if (session === undefined) return html`<main class="center"><p class="muted">Loading…</p></main>`;
  if (session === null)
    return html`<${SignIn}
      notice=${notice}
      onSignedIn=${() => {
        setNotice('');
        sessionStorage.setItem(SIGNED_IN_HINT, '1');
        setSession(undefined);
        loadSession();
      }}
    />`;

  const roles = rolesOf(session);
  const allowed = VIEWS.filter((v) => v.roles.some((r) => roles.includes(r)) && session.routes.has(v.route));
  const view = allowed.find((v) => v.id === route) ?? allowed[0];
  if (view && route !== view.id) history.replaceState(null, '', `#/${view.id}`);
  const signOut = async () => {
    await api('/v1/session/sign-out', { method: 'POST' }).catch(() => undefined);
    sessionStorage.removeItem(SIGNED_IN_HINT);
    setNotice('Signed out.');
    setSession(null);
  };
  const View = view?.view;
  return html`<div class="shell">
    <a class="skip" href="#main">Skip to content</a>
    <header class="top">
      <span class="brand">Imaging Edge</span>
      <nav aria-label="Views">
        <ul>
          ${allowed.map((v) => html`<li><a href=${`#/${v.id}`} aria-current=${v.id === view?.id ? 'page' : undefined}>${v.title}</a></li>`)}
        </ul>
      </nav>
      <span class="who">${session.username} (${session.role}${session.elevatedTo ? ` → ${session.elevatedTo}` : ''})</span>
      ${session.elevatedTo ? null : html`<${BreakGlass} onStarted=${() => loadSession()} />`}
      <button type="button" class="secondary" onClick=${signOut}>Sign out</button>
    </header>
    <${Banners} session=${session} />
    <main id="main" tabindex="-1">
      <h1>${view ? view.title : 'No view for your role'}</h1>
      ${View ? html`<${View} session=${session} />` : html`<p>Your role has no view on this page.</p>`}
    </main>
  </div>`;
}

/** Emergency access: the user states why, the box raises the role for a while and audits it all. */
function BreakGlass({ onStarted }) {
  const [open, setOpen] = useState(false);
  const [reason, setReason] = useState('');
  const [error, setError] = useState(undefined);
  if (!open) return html`<button type="button" class="secondary" onClick=${() => setOpen(true)}>Break glass…</button>`;
  const submit = async (e) => {
    e.preventDefault();
    try {
      await api('/v1/break-glass/start', { method: 'POST', body: { reason } });
      setOpen(false);
      onStarted();
    } catch (err) {
      setError(err);
    }
  };
  return html`<form class="glass-form" onSubmit=${submit}>
    <label for="glass-reason">Why do you need emergency access? (audited, reviewed)</label>
    <input id="glass-reason" required minlength="10" maxlength="500" value=${reason} onInput=${(e) => setReason(e.currentTarget.value)} />
    <button type="submit" class="danger">Start</button>
    <button type="button" class="secondary" onClick=${() => setOpen(false)}>Cancel</button>
    ${error ? html`<span class="error" role="alert">${error.message}</span>` : null}
  </form>`;
}

/** Break-glass (from the session) and a box that is not production (from the overview's environment). */
function Banners({ session }) {
  const [environment, setEnvironment] = useState(undefined);
  useEffect(() => {
    if (!rolesOf(session).some((r) => STAFF.includes(r))) return;
    api('/v1/overview', { background: true }).then(
      (o) => setEnvironment(o.environment),
      () => undefined,
    );
  }, []);
  // The box tells every signed-in user when anyone is elevated: break-glass is never quiet.
  const elevations = session.breakGlass && session.breakGlass.active ? session.breakGlass.elevations : [];
  return html`${
    elevations.length > 0
      ? html`<div class="banner banner-glass" role="status">
          ${`Break-glass access active: ${elevations
            .map((e) => `${e.username} as ${e.role} until ${new Date(e.until).toLocaleTimeString()}`)
            .join('; ')}. Every action is audited and reviewed.`}
        </div>`
      : null
  }
  ${
    environment && environment !== 'production'
      ? html`<div class="banner banner-env" role="status">Not a production box: environment <strong>${environment}</strong>.</div>`
      : null
  }`;
}

render(html`<${App} />`, document.getElementById('app'));
