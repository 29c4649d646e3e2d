// Sign-in: user name and password, then the TOTP code when the account has one (the session's stage
// says what is still missing). Plain form controls with labels: usable with the keyboard alone.
import { html, useEffect, useRef, useState } from '../lib/html.js';
import { api } from '../lib/api.js';
import { ErrorBox } from '../lib/ui.js';

export function SignIn({ onSignedIn, notice }) {
  const [stage, setStage] = useState('password');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const [error, setError] = useState(undefined);
  const [busy, setBusy] = useState(false);
  const codeInput = useRef(null);
  const userInput = useRef(null);

  useEffect(() => {
    (stage === 'mfa' ? codeInput : userInput).current?.focus();
  }, [stage]);

  const next = (s) => {
    const st = s && s.stage ? s.stage : 'full';
    if (st === 'full') onSignedIn();
    else if (st === 'mfa') setStage('mfa');
    else setError(new Error(`Finish setting up your account first (${st}): ask an admin or use edgectl.`));
  };

  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      if (stage === 'password') next(await api('/v1/session/sign-in', { method: 'POST', body: { username, password } }));
      else next(await api('/v1/session/totp', { method: 'POST', body: { code } }));
    } catch (err) {
      setError(err);
      setCode('');
    } finally {
      setBusy(false);
    }
  };

  return html`<main class="center" id="main">
    <form class="sign-in card" onSubmit=${submit} aria-labelledby="sign-in-title">
      <h1 id="sign-in-title">Imaging Edge</h1>
      <p class="muted">Sign in to this box</p>
      ${notice ? html`<p class="notice" role="status">${notice}</p>` : null}
      ${
        stage === 'password'
          ? html`<label for="username">User name</label>
              <input
                id="username"
                ref=${userInput}
                name="username"
                autocomplete="username"
                required
                value=${username}
                onInput=${(e) => setUsername(e.currentTarget.value)}
              />
              <label for="password">Password</label>
              <input
                id="password"
                name="password"
                type="password"
                autocomplete="current-password"
                required
                value=${password}
                onInput=${(e) => setPassword(e.currentTarget.value)}
              />`
          : html`<label for="totp">Code from your authenticator app</label>
              <input
                id="totp"
                ref=${codeInput}
                name="totp"
                inputmode="numeric"
                autocomplete="one-time-code"
                pattern="[0-9]{6}"
                maxlength="6"
                required
                value=${code}
                onInput=${(e) => setCode(e.currentTarget.value)}
              />`
      }
      <${ErrorBox} error=${error} />
      <button type="submit" disabled=${busy}>${stage === 'password' ? 'Sign in' : 'Verify'}</button>
    </form>
  </main>`;
}
