// The admin page's configuration view: the config file as the box runs it, with secrets redacted
// (`GET /v1/config`); a check of an edited document against the one schema `edgectl config check` uses,
// whose issues name the field at fault, with the paths that differ from the file (`POST
// /v1/config/check`, which changes nothing); and apply (`POST /v1/config/apply`, step-up): written
// beside the old file, reloaded live, and put back when the reload refuses it or the box is not healthy
// within the deadline. Applied versions are kept (`GET /v1/config/history`).
import { mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync, copyFileSync, unlinkSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import type { AuditParticipant } from '../core/audit.ts';
import type { ControlRequest, ControlRoute } from '../core/control-route.ts';
import { EdgeError } from '../core/errors.ts';
import type { ServiceStatus } from '../core/service.ts';
import { type ConfigIssue, checkConfig, errorsIn, readConfigDocument } from '../config/index.ts';
import type { ReloadResult } from './config-reload.ts';
import type { FlowContext } from './flow-context.ts';

const REDACTED = '(redacted)';
/** Keys whose values are secrets themselves (file references, `…File`, are shown: they name a path). */
const SECRET_KEY = /(password|secret|token|passphrase|privateKey)$/i;
const HISTORY_KEPT = 20;
/** How long the box must stay healthy after an apply before it is kept. */
const HEALTH_DEADLINE_MS = 10_000;

export function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (typeof value === 'object' && value !== null)
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, SECRET_KEY.test(k) && typeof v === 'string' ? REDACTED : redact(v)]),
    );
  return value;
}

/** Paths (`a.b[2].c`) whose values differ between two documents. */
export function changedPaths(before: unknown, after: unknown, path = ''): string[] {
  if (JSON.stringify(before) === JSON.stringify(after)) return [];
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (isObj(before) && isObj(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((k) => changedPaths(before[k], after[k], path === '' ? k : `${path}.${k}`));
  }
  if (Array.isArray(before) && Array.isArray(after) && before.length === after.length)
    return before.flatMap((v, i) => changedPaths(v, after[i], `${path}[${i}]`));
  return [path === '' ? '(whole document)' : path];
}

/** A secret the page showed as redacted and sent back unchanged keeps the file's value. */
function restoreRedacted(edited: unknown, original: unknown): unknown {
  if (edited === REDACTED) return original;
  if (Array.isArray(edited)) return edited.map((v, i) => restoreRedacted(v, Array.isArray(original) ? original[i] : undefined));
  if (typeof edited === 'object' && edited !== null) {
    const o = typeof original === 'object' && original !== null ? (original as Record<string, unknown>) : {};
    return Object.fromEntries(Object.entries(edited).map(([k, v]) => [k, restoreRedacted(v, o[k])]));
  }
  return edited;
}

export interface ConfigViewParts {
  readonly configFile: string | undefined;
  readonly reload: () => Promise<ReloadResult>;
  readonly services: () => readonly ServiceStatus[];
  readonly actor: (req: ControlRequest) => AuditParticipant;
}

export function configRoutes(ctx: FlowContext, p: ConfigViewParts): ControlRoute[] {
  const { audit, box, config } = ctx;
  const historyDir = join(config.dataDir, 'config-history');
  const file = (): string => {
    if (p.configFile === undefined) throw new EdgeError('EDGE_CONFIG_UNREADABLE', 'edged was started without a config file');
    return p.configFile;
  };
  const current = (): { document: unknown; hash: string } => {
    const text = readFileSync(file(), 'utf8');
    return { document: readConfigDocument(file()), hash: createHash('sha256').update(text).digest('hex').slice(0, 16) };
  };
  const edited = (req: ControlRequest): unknown => {
    const body = req.body as { document?: unknown } | undefined;
    if (typeof body !== 'object' || body === null || typeof body.document !== 'object' || body.document === null)
      throw new EdgeError('EDGE_CONTROL_BAD_REQUEST', '"document" (the edited config, a JSON object) is required');
    return restoreRedacted(body.document, current().document);
  };
  const check = (doc: unknown): { issues: readonly ConfigIssue[]; valid: boolean } => {
    const result = checkConfig(doc, { baseDir: dirname(file()), checkFiles: true });
    return { issues: result.issues, valid: errorsIn(result.issues).length === 0 };
  };
  let applying = false;
  return [
    {
      method: 'GET',
      path: '/v1/config',
      permission: 'admin',
      handle: () => {
        const c = current();
        return { status: 200, body: { file: file(), hash: c.hash, document: redact(c.document) } };
      },
    },
    {
      method: 'POST',
      path: '/v1/config/check',
      permission: 'admin',
      handle: (req) => {
        const doc = edited(req);
        const result = check(doc);
        return { status: 200, body: { ...result, changed: changedPaths(current().document, doc) } };
      },
    },
    {
      method: 'GET',
      path: '/v1/config/history',
      permission: 'admin',
      handle: () => {
        let names: string[] = [];
        try {
          names = readdirSync(historyDir).filter((n) => n.endsWith('.json'));
        } catch {
          // No version applied from the page yet.
        }
        return {
          status: 200,
          body: {
            versions: names
              .sort()
              .reverse()
              .map((n) => ({ version: basename(n, '.json') })),
          },
        };
      },
    },
    {
      method: 'POST',
      path: '/v1/config/apply',
      permission: 'admin',
      stepUp: true,
      handle: async (req) => {
        if (applying) throw new EdgeError('EDGE_CONTROL_BAD_REQUEST', 'another configuration apply is running; wait for it');
        applying = true;
        try {
          const before = current();
          const expected = (req.body as { hash?: unknown }).hash;
          if (typeof expected === 'string' && expected !== before.hash)
            throw new EdgeError('EDGE_CONTROL_BAD_REQUEST', 'the config file changed since you loaded it: reload the page and edit again');
          const doc = edited(req);
          const result = check(doc);
          if (!result.valid) return { status: 422, body: { applied: false, issues: result.issues } };
          const changed = changedPaths(before.document, doc);
          const path = file();
          const previous = `${path}.previous`;
          copyFileSync(path, previous);
          const tmp = `${path}.new`;
          writeFileSync(tmp, `${JSON.stringify(doc, null, 2)}\n`, { mode: 0o600 });
          renameSync(tmp, path);
          const putBack = async (why: string): Promise<{ status: number; body: unknown }> => {
            renameSync(previous, path);
            await p.reload().catch(() => undefined);
            audit.record({
              eventId: 'SecurityAlert',
              type: 'config.reload-refused',
              action: 'E',
              outcome: 4,
              at: Date.now(),
              participants: [p.actor(req), { ...box, requestor: false }],
              detail: `applied from the admin page and rolled back: ${why}`,
            });
            return { status: 422, body: { applied: false, rolledBack: true, why, issues: result.issues } };
          };
          const reloaded = await p.reload();
          if (!reloaded.applied) return await putBack('the reload refused it');
          const healthyBy = Date.now() + HEALTH_DEADLINE_MS;
          const unhealthy = (): string | undefined => {
            const bad = p.services().find((s) => s.status === 'down');
            return bad === undefined ? undefined : `${bad.name} is down`;
          };
          while (Date.now() < healthyBy && unhealthy() !== undefined) await new Promise((r) => setTimeout(r, 250));
          const still = unhealthy();
          if (still !== undefined) return await putBack(`the box was not healthy within ${HEALTH_DEADLINE_MS / 1000} s: ${still}`);
          mkdirSync(historyDir, { recursive: true, mode: 0o700 });
          const version = new Date().toISOString().replace(/[:.]/g, '-');
          copyFileSync(path, join(historyDir, `${version}.json`));
          for (const old of readdirSync(historyDir).sort().reverse().slice(HISTORY_KEPT)) unlinkSync(join(historyDir, old));
          audit.record({
            eventId: 'SecurityAlert',
            type: 'config.reloaded',
            action: 'E',
            outcome: 0,
            at: Date.now(),
            participants: [p.actor(req), { ...box, requestor: false }],
            detail: `applied from the admin page (version ${version}): ${changed.slice(0, 10).join(', ')}${changed.length > 10 ? ', …' : ''}`,
          });
          return { status: 200, body: { applied: true, version, changed, reload: reloaded } };
        } finally {
          applying = false;
        }
      },
    },
  ];
}
