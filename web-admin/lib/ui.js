// The page's building blocks: sections, tables, state badges, errors, and actions that ask for a step-up
// (the password or a TOTP code again) when the box says the action needs one.
import { html, useState } from './html.js';
import { api, ApiError } from './api.js';

export function Section({ title, children, actions }) {
  return html`<section class="card">
    <header class="card-head">
      <h2>${title}</h2>
      ${actions ? html`<div class="card-actions">${actions}</div>` : null}
    </header>
    ${children}
  </section>`;
}

export function Badge({ state, children }) {
  return html`<span class=${`badge badge-${String(state).replace(/[^a-z-]/g, '')}`}>${children ?? state}</span>`;
}

export function ErrorBox({ error }) {
  if (!error) return null;
  const what = error instanceof ApiError ? `${error.message} (${error.code})` : String(error.message ?? error);
  return html`<p class="error" role="alert">${what}</p>`;
}

export function Loading({ what }) {
  return html`<p class="muted" aria-live="polite">Loading ${what}…</p>`;
}

/** `rows` of objects; `columns` [{ key, label, render? }]. Every cell is text unless render builds nodes. */
export function Table({ columns, rows, empty = 'Nothing to show.', caption }) {
  if (!rows || rows.length === 0) return html`<p class="muted">${empty}</p>`;
  return html`<div class="table-wrap">
    <table>
      ${
        caption
          ? html`<caption>
              ${caption}
            </caption>`
          : null
      }
      <thead>
        <tr>
          ${columns.map((c) => html`<th scope="col">${c.label}</th>`)}
        </tr>
      </thead>
      <tbody>
        ${rows.map(
          (r, i) =>
            html`<tr key=${r.id ?? i}>
              ${columns.map((c) => html`<td>${c.render ? c.render(r) : formatCell(r[c.key])}</td>`)}
            </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

function formatCell(v) {
  if (v === null || v === undefined || v === '') return '–';
  if (Array.isArray(v)) return v.join(', ');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export function Fields({ items }) {
  return html`<dl class="fields">
    ${items.map(
      ([k, v]) =>
        html`<div>
          <dt>${k}</dt>
          <dd>${v ?? '–'}</dd>
        </div>`,
    )}
  </dl>`;
}

/**
 * Runs `action()`; when the box answers that a step-up is needed, asks for a TOTP code (or the
 * password), proves it (POST /v1/session/step-up) and runs the action again.
 */
export function useAction() {
  const [state, setState] = useState({ busy: false, error: undefined, result: undefined, stepUp: undefined });
  const run = async (action) => {
    setState({ busy: true, error: undefined, result: undefined, stepUp: undefined });
    try {
      const result = await action();
      setState({ busy: false, error: undefined, result, stepUp: undefined });
      return result;
    } catch (err) {
      if (err instanceof ApiError && err.code === 'EDGE_ACCESS_STEP_UP_REQUIRED') {
        setState({ busy: false, error: undefined, result: undefined, stepUp: action });
        return undefined;
      }
      setState({ busy: false, error: err, result: undefined, stepUp: undefined });
      return undefined;
    }
  };
  const confirmStepUp = async (code) => {
    const action = state.stepUp;
    try {
      await api('/v1/session/step-up', { method: 'POST', body: /^\d{6}$/.test(code) ? { code } : { password: code } });
    } catch (err) {
      setState((s) => ({ ...s, error: err }));
      return;
    }
    await run(action);
  };
  const cancel = () => setState({ busy: false, error: undefined, result: undefined, stepUp: undefined });
  return { ...state, run, confirmStepUp, cancel };
}

/** The step-up form an action shows while it waits for the user to confirm who they are. */
export function StepUp({ action }) {
  const [code, setCode] = useState('');
  if (!action.stepUp) return null;
  const submit = (e) => {
    e.preventDefault();
    action.confirmStepUp(code);
    setCode('');
  };
  return html`<form class="step-up" onSubmit=${submit}>
    <label for="step-up-code">This action needs you to confirm: TOTP code or password</label>
    <input
      id="step-up-code"
      type="password"
      autocomplete="one-time-code"
      required
      value=${code}
      onInput=${(e) => setCode(e.currentTarget.value)}
    />
    <button type="submit">Confirm</button>
    <button type="button" class="secondary" onClick=${action.cancel}>Cancel</button>
  </form>`;
}

export function Meter({ label, value, max, high, text }) {
  const id = `m-${label.replace(/\W+/g, '-')}`;
  return html`<div class="meter">
    <label for=${id}>${label}</label>
    <meter id=${id} min="0" max=${max || 1} value=${value || 0} high=${high ?? (max || 1) * 0.8} optimum="0">${text}</meter>
    <span class="meter-text">${text}</span>
  </div>`;
}
