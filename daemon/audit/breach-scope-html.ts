// The printable page of a breach-scope report: the same facts as the signed JSON, for the privacy
// officer's file. Every value is escaped (patient data is text, never markup); no script, no external
// resource, so it prints the same anywhere.
import type { BreachScopeReport } from './breach-scope.ts';

const escape = (s: unknown): string =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const how = (c: Partial<Record<string, number>>): string =>
  Object.entries(c)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');

function table(head: readonly string[], rows: readonly (readonly unknown[])[]): string {
  if (rows.length === 0) return '<p>None.</p>';
  return `<table><thead><tr>${head.map((h) => `<th>${escape(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((v) => `<td>${escape(v)}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

export function breachScopeHtml(r: BreachScopeReport): string {
  const c = r.chain;
  const filters = Object.entries(r.filters)
    .map(([k, v]) => `${k} = ${String(v)}`)
    .join('; ');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Breach-scope report — ${escape(r.site)}</title>
<style>body{font:11pt system-ui,sans-serif;margin:2em}table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #999;padding:.2em .5em;text-align:left;vertical-align:top}th{background:#eee}.bad{color:#a00;font-weight:bold}</style>
</head><body>
<h1>Breach-scope report</h1>
<p>Box <b>${escape(r.site)}</b>${r.environment === undefined ? '' : ` (${escape(r.environment)})`}; window ${escape(r.window.from)} to ${escape(r.window.to)}${filters === '' ? '' : `; filters: ${escape(filters)}`}; generated ${escape(r.generatedAt)}.</p>
<h2>Audit chain</h2>
<p>Records ${escape(c.fromSeq ?? '–')} to ${escape(c.toSeq ?? '–')} (${escape(c.recordsInWindow)} in the window, ${escape(c.recordsMatched)} touching patient data or exports).
Hash links: <span class="${c.linksVerified ? '' : 'bad'}">${c.linksVerified ? 'verified' : 'NOT verified'}</span>.
Signed checkpoint: ${c.checkpoint === null ? 'none after the window yet' : `seq ${escape(c.checkpoint.seq)} at ${escape(c.checkpoint.at)}, continuity ${c.checkpoint.continuityVerified ? 'verified' : '<span class="bad">NOT verified</span>'}`}.</p>
${c.problems.length === 0 ? '' : `<ul class="bad">${c.problems.map((p) => `<li>${escape(p)}</li>`).join('')}</ul>`}
<h2>Totals</h2>
${table(['patients', 'orders', 'studies', 'instances received', 'bytes', 'peers', 'users'], [[r.totals.patients, r.totals.orders, r.totals.studies, r.totals.instances, r.totals.bytes, r.totals.peers, r.totals.users]])}
<h2>Who received or acted, and how</h2>
${table(
  ['kind', 'name', 'addresses', 'how', 'patients', 'bytes', 'in transit', 'data elements'],
  r.parties.map((p) => [p.kind, p.id, p.addresses.join(', '), how(p.how), p.patients, p.bytes, p.inTransit, p.dataElements.join('; ')]),
)}
<h2>Exports</h2>
${table(
  ['type', 'seq', 'at', 'by', 'detail'],
  r.exports.map((e) => [e.type, e.seq, e.at, e.by, e.detail]),
)}
<h2>Patients</h2>
${table(
  ['patient ID', 'issuer', 'how', 'accession numbers', 'studies', 'touched by', 'first', 'last'],
  r.patients.map((p) => [
    p.id,
    p.issuer,
    how(p.how),
    p.accessionNumbers.join(', '),
    p.studies.join(', '),
    p.touchedBy.join(', '),
    p.firstAt,
    p.lastAt,
  ]),
)}
<h2>Studies</h2>
${table(
  ['Study Instance UID', 'instances', 'bytes', 'how'],
  r.studies.map((s) => [s.studyInstanceUid, s.instances, s.bytes, how(s.how)]),
)}
<p>The JSON form of this report is signed by the box (CMS, detached, the device certificate); verify it with
<code>openssl cms -verify -binary -inform DER -in report.json.p7s -content report.json -CAfile site-ca.pem -purpose any</code>.</p>
</body></html>
`;
}
