// The plan as a table a person reads before applying it: who may reach which port of the box, and
// what the box may reach. Rendered from the same plan as the ruleset.
import type { AddressSet, SegmentationPlan } from './segmentation-plan.ts';

export function describePlan(plan: SegmentationPlan): string {
  const lines: string[] = ['Who may reach the box (everything else is dropped, logged and counted):', ''];
  const inbound = plan.ingress.map((r) => [
    r.service,
    `tcp/${r.port}`,
    r.iface ?? 'any',
    r.sources === 'any' ? 'ANY SOURCE' : addresses(r.sources),
    abbreviate(r.peers.map((p) => p.name)) || '(no peers: closed)',
    r.id,
  ]);
  lines.push(...columns(['listener', 'port', 'interface', 'sources', 'peers', 'rule'], inbound), '');
  lines.push('Each peer:', '');
  const peers = plan.ingress.flatMap((r) =>
    r.peers.map((p) => [p.name, `tcp/${r.port}`, p.addresses === 'any' ? 'ANY SOURCE' : p.addresses.join(', ')]),
  );
  lines.push(...columns(['peer', 'may reach', 'from'], peers), '');
  lines.push('What the box may reach (everything else is dropped, logged and counted):', '');
  const outbound = plan.egress.map((r) => [
    r.purpose,
    r.protocols.map((p) => `${p}/${r.port}`).join(' '),
    addresses(r.destinations),
    r.field,
    r.id,
  ]);
  lines.push(...columns(['destination', 'port', 'addresses', 'from config', 'rule'], outbound), '');
  lines.push(
    'Always: replies to established connections, loopback, ICMP errors, IPv6 neighbour discovery,',
    'echo requests at most 5/s. Never: forwarding between segments.',
  );
  if (plan.warnings.length > 0) lines.push('', ...plan.warnings.map((w) => `warning: ${w}`));
  return `${lines.join('\n')}\n`;
}

function addresses(set: AddressSet): string {
  return abbreviate([...set.v4, ...set.v6]) || '(none)';
}

function abbreviate(items: readonly string[]): string {
  return items.length <= 4 ? items.join(', ') : `${items.slice(0, 3).join(', ')} and ${items.length - 3} more`;
}

function columns(head: readonly string[], rows: ReadonlyArray<readonly string[]>): string[] {
  if (rows.length === 0) return ['  (none)'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => `  ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ')}`.trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}
