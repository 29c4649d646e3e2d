// Configuration (admin): the running config file with secrets redacted; edit it, check it against the
// one schema (issues name the field), see which fields change, apply (step-up) with automatic rollback
// when the box refuses it or is not healthy in time; the versions applied.
import { html, useEffect, useState } from '../lib/html.js';
import { api } from '../lib/api.js';
import { usePoll } from '../lib/poll.js';
import { ErrorBox, Loading, Section, StepUp, Table, useAction } from '../lib/ui.js';

function parse(text) {
  try {
    return { document: JSON.parse(text) };
  } catch (err) {
    return { error: `Not JSON: ${err.message}` };
  }
}

export function Configuration() {
  const current = usePoll('/v1/config', 0);
  const history = usePoll('/v1/config/history', 0);
  const [text, setText] = useState(undefined);
  const [check, setCheck] = useState(undefined);
  const [parseError, setParseError] = useState(undefined);
  const checking = useAction();
  const applying = useAction();
  useEffect(() => {
    if (current.data && text === undefined) setText(JSON.stringify(current.data.document, null, 2));
  }, [current.data]);
  if (!current.data || text === undefined)
    return html`<${ErrorBox} error=${current.error} />${current.error ? null : html`<${Loading} what="the configuration" />`}`;

  const runCheck = async () => {
    const p = parse(text);
    setParseError(p.error);
    setCheck(undefined);
    if (p.error) return;
    const r = await checking.run(() => api('/v1/config/check', { method: 'POST', body: { document: p.document } }));
    if (r) setCheck(r);
  };
  const apply = async () => {
    const p = parse(text);
    setParseError(p.error);
    if (p.error) return;
    const r = await applying.run(() =>
      api('/v1/config/apply', { method: 'POST', body: { document: p.document, hash: current.data.hash }, accept: [422] }),
    );
    if (r && r.issues) setCheck({ valid: r.applied, issues: r.issues, changed: r.changed ?? [] });
    if (r && r.applied) {
      current.refresh();
      history.refresh();
    }
  };
  const errors = check ? check.issues.filter((i) => i.severity === 'error') : [];
  return html`<div class="stack">
    <${Section} title=${`Running configuration: ${current.data.file}`}>
      <label for="config-text">The config file (JSON; secrets shown as "(redacted)" keep their value)</label>
      <textarea id="config-text" class="code" rows="24" spellcheck="false" value=${text}
        onInput=${(e) => {
          setText(e.currentTarget.value);
          setCheck(undefined);
        }}></textarea>
      <div class="row-actions">
        <button type="button" onClick=${runCheck} disabled=${checking.busy}>Check</button>
        <button type="button" class="danger" onClick=${apply} disabled=${applying.busy || !check || !check.valid || check.changed.length === 0}>Apply</button>
        <button type="button" class="secondary" onClick=${() => {
          setText(JSON.stringify(current.data.document, null, 2));
          setCheck(undefined);
        }}>Revert edits</button>
      </div>
      ${parseError ? html`<p class="error" role="alert">${parseError}</p>` : null}
      <${ErrorBox} error=${checking.error || applying.error} />
      <${StepUp} action=${applying} />
      ${
        applying.result
          ? html`<p class=${applying.result.applied ? 'ok' : 'error'} role="status">
              ${applying.result.applied ? `Applied as version ${applying.result.version}.` : `Not applied${applying.result.rolledBack ? ', rolled back' : ''}: ${applying.result.why ?? 'the check found errors'}.`}
            </p>`
          : null
      }
    </${Section}>
    ${
      check
        ? html`<${Section} title=${check.valid ? 'Check passed' : `Check found ${errors.length} error(s)`}>
          <${Table}
            columns=${[
              { key: 'severity', label: 'Severity' },
              { key: 'path', label: 'Field', render: (r) => html`<code>${r.path || '(document)'}</code>` },
              { key: 'message', label: 'What to do' },
            ]}
            rows=${check.issues}
            empty="No issues."
          />
          <h3>Fields that change</h3>
          ${
            check.changed.length === 0
              ? html`<p class="muted">No change from the running file.</p>`
              : html`<ul class="diff">
                  ${check.changed.map((c) => html`<li><code>${c}</code></li>`)}
                </ul>`
          }
        </${Section}>`
        : null
    }
    <${Section} title="Applied versions">
      <${Table} columns=${[{ key: 'version', label: 'Version' }]} rows=${history.data ? history.data.versions : []} empty="None applied from this page yet." />
    </${Section}>
  </div>`;
}
