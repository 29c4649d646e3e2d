// DCMTK's findscu as the modality, with its verbose output parsed into one record per response.
import { run, type RunResult } from './processes.ts';
import type { SiteInfo } from './site.ts';

export interface FindscuOptions {
  readonly port: number;
  readonly callingAe: string;
  readonly calledAe?: string;
  readonly keys: readonly string[];
  /** TLS with a client certificate; `anonymous` offers TLS without one. */
  readonly tls?: { certFile: string; keyFile: string; caFile: string } | { anonymous: true; caFile: string };
  readonly extra?: readonly string[];
}

export interface FindscuResult extends RunResult {
  /** One map per Pending response: attribute keyword (nested ones too) → value, trimmed. */
  readonly responses: Array<Record<string, string>>;
  readonly finalStatus: string | undefined;
  readonly associationRejected: boolean;
}

export async function findscu(o: FindscuOptions): Promise<FindscuResult> {
  const args = ['-v', '-W', '-aet', o.callingAe, '-aec', o.calledAe ?? 'EDGE'];
  if (o.tls !== undefined) {
    if ('anonymous' in o.tls) args.push('+tla', '+cf', o.tls.caFile);
    else args.push('+tls', o.tls.keyFile, o.tls.certFile, '+cf', o.tls.caFile);
  }
  for (const k of o.keys) args.push('-k', k);
  args.push(...(o.extra ?? []), '127.0.0.1', String(o.port));
  const r = await run('findscu', args, { timeoutMs: 30_000 });
  const text = r.stdout + r.stderr;
  const responses: Array<Record<string, string>> = [];
  for (const block of text.split(/Find Response: \d+ \(Pending\)/).slice(1)) {
    const rec: Record<string, string> = {};
    for (const line of block.split('\n')) {
      if (/Find Response|Releasing/.test(line)) break;
      const m = /\([0-9a-f]{4},[0-9a-f]{4}\) [A-Z]{2} (?:\[(.*)\]|\(no value available\)|\(Sequence.*?\)).*?#.*? (\w+)\s*$/.exec(line);
      if (m) rec[m[2]!] ??= (m[1] ?? '').replace(/[\s\0]+$/, '');
    }
    responses.push(rec);
  }
  const fin = /Received Final Find Response \(([^)]*)\)/.exec(text);
  return { ...r, responses, finalStatus: fin?.[1], associationRejected: /Association Rejected/.test(text) };
}

export interface StorescuResult extends RunResult {
  /** Each C-STORE response's status as storescu prints it (`Success`, `Refused: OutOfResources`, ...), in order. */
  readonly statuses: string[];
  /** The files answered with Success. */
  readonly stored: Set<string>;
}

/** DCMTK's storescu as a TLS modality of the site (by default CT01): each file one C-STORE on one association. */
export async function storescu(
  site: { readonly modalities: SiteInfo['modalities']; readonly pki: { readonly caCert: string } },
  port: number,
  paths: readonly string[],
  o: {
    readonly aeTitle?: string;
    readonly timeoutMs?: number;
    /** `-R`: propose only the SOP classes of the files (storescu's default list lacks some newer classes). */
    readonly requiredContextsOnly?: boolean;
  } = {},
): Promise<StorescuResult> {
  const aeTitle = o.aeTitle ?? 'CT01';
  const m = site.modalities.find((x) => x.aeTitle === aeTitle)!;
  const args = [
    ...(o.requiredContextsOnly === true ? ['-R'] : []),
    '-v',
    '-aet',
    aeTitle,
    '-aec',
    'EDGE',
    '+tls',
    m.keyFile!,
    m.certFile!,
    '+cf',
    site.pki.caCert,
    '127.0.0.1',
    String(port),
  ];
  const r = await run('storescu', [...args, ...paths], { timeoutMs: o.timeoutMs ?? 30_000, env: { ...process.env, TCP_NODELAY: '1' } });
  const statuses: string[] = [];
  const stored = new Set<string>();
  let current: string | undefined;
  for (const line of (r.stdout + r.stderr).split('\n')) {
    const sending = /Sending file: (\S+)/.exec(line);
    if (sending) current = sending[1];
    const response = /Received Store Response \(([^)]*)\)/.exec(line);
    if (response === null) continue;
    statuses.push(response[1]!);
    if (response[1] === 'Success' && current !== undefined) stored.add(current);
  }
  return { ...r, statuses, stored };
}
