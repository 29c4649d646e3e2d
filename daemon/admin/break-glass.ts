// Break-glass on the admin listener: any signed-in user may raise the role of their session to the
// configured one (default operator) for a limited time (default 30 min) by stating a reason. Start and
// stop are PS3.15 Security Alerts (Emergency Override Started / Stopped) recorded at once, so the syslog
// stream carries them within its usual latency; every user's session view shows a banner while any
// elevation lasts; each use waits in a review list until an auditor marks it reviewed (audited too).
import { randomBytes } from 'node:crypto';
import type { BreakGlassLog, BreakGlassRecord } from '../core/break-glass.ts';
import type { ControlRequest, ControlRoute, RoleName } from '../core/control-route.ts';
import { EdgeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { AccessControl } from './access-control.ts';
import type { Session } from './session-store.ts';

export interface BreakGlassOptions {
  readonly role: RoleName;
  readonly durationMs: number;
}

const MIN_REASON = 10;
const MAX_REASON = 500;

export class BreakGlass {
  readonly #access: AccessControl;
  readonly #log: BreakGlassLog;
  readonly #o: BreakGlassOptions;
  readonly #logger: Logger;
  /** Elevations in force, by record id (their sessions hold them too). */
  readonly #active = new Map<string, BreakGlassRecord>();

  constructor(access: AccessControl, log: BreakGlassLog, options: BreakGlassOptions, logger: Logger) {
    this.#access = access;
    this.#log = log;
    this.#o = options;
    this.#logger = logger;
    access.onSessionEnd((session, why) => {
      if (session.breakGlass !== undefined) void this.#stop(session.breakGlass.id, why);
    });
    access.onSweep((now) => {
      for (const r of this.#active.values()) if (r.until <= now) void this.#stop(r.id, 'time limit');
    });
  }

  /** Elevations a restart cut short are closed (their sessions are gone): audited, still to review. */
  async recover(): Promise<void> {
    for (const r of await this.#log.list()) {
      if (r.stoppedAt === undefined) {
        await this.#log.put({ ...r, stoppedAt: Date.now(), stopReason: 'box restarted' });
        this.#access.record('access.break-glass-stopped', r, `${r.id}: box restarted`);
      }
    }
  }

  /** The banner every session view carries: who is elevated, to what, until when. */
  banner(): { active: boolean; elevations: { username: string; role: RoleName; since: string; until: string }[] } {
    const elevations = [...this.#active.values()].map((r) => ({
      username: r.username,
      role: r.role,
      since: new Date(r.startedAt).toISOString(),
      until: new Date(r.until).toISOString(),
    }));
    return { active: elevations.length > 0, elevations };
  }

  async start(session: Session, reason: unknown): Promise<BreakGlassRecord> {
    if (typeof reason !== 'string' || reason.trim().length < MIN_REASON || reason.length > MAX_REASON) {
      throw new EdgeError('EDGE_ACCESS_BREAK_GLASS_INVALID', `state the reason: ${MIN_REASON}–${MAX_REASON} characters`);
    }
    if (session.breakGlass !== undefined) throw new EdgeError('EDGE_ACCESS_BREAK_GLASS_INVALID', 'this session is elevated already');
    const now = Date.now();
    const record: BreakGlassRecord = {
      id: randomBytes(8).toString('hex'),
      username: session.username,
      address: session.address,
      role: this.#o.role,
      reason: reason.trim(),
      startedAt: now,
      until: now + this.#o.durationMs,
    };
    // Kept before it takes effect: an elevation that is not on the review list never happens.
    await this.#log.put(record);
    this.#active.set(record.id, record);
    session.breakGlass = { id: record.id, role: record.role, until: record.until };
    this.#logger.warn('access.break-glass-started', { user: session.username, id: record.id, role: record.role });
    this.#access.record(
      'access.break-glass-started',
      session,
      `${record.id}: ${record.role} until ${new Date(record.until).toISOString()}; reason: ${record.reason}`,
    );
    return record;
  }

  async stopSession(session: Session): Promise<void> {
    if (session.breakGlass === undefined) throw new EdgeError('EDGE_ACCESS_BREAK_GLASS_INVALID', 'this session is not elevated');
    await this.#stop(session.breakGlass.id, 'stopped by the user');
  }

  async review(id: unknown, reviewer: string, note: unknown, address?: string): Promise<BreakGlassRecord> {
    if (typeof id !== 'string' || !/^[0-9a-f]{16}$/.test(id))
      throw new EdgeError('EDGE_ACCESS_BREAK_GLASS_INVALID', 'id: from GET /api/v1/break-glass');
    const r = await this.#log.get(id);
    if (r === undefined) throw new EdgeError('EDGE_ACCESS_BREAK_GLASS_INVALID', `no break-glass record ${id}`);
    if (r.stoppedAt === undefined)
      throw new EdgeError('EDGE_ACCESS_BREAK_GLASS_INVALID', 'the elevation still lasts: review it once it ended');
    if (r.reviewedAt !== undefined) return r;
    const reviewed: BreakGlassRecord = {
      ...r,
      reviewedAt: Date.now(),
      reviewedBy: reviewer,
      ...(typeof note === 'string' && note.length > 0 ? { reviewNote: note.slice(0, MAX_REASON) } : {}),
    };
    await this.#log.put(reviewed);
    this.#access.record(
      'access.break-glass-reviewed',
      { username: reviewer, ...(address === undefined ? {} : { address }) },
      `${id} (${r.username})`,
    );
    return reviewed;
  }

  async #stop(id: string, why: string): Promise<void> {
    const r = this.#active.get(id);
    if (r === undefined) return;
    this.#active.delete(id);
    for (const s of this.#access.sessions.all()) if (s.breakGlass?.id === id) delete s.breakGlass;
    try {
      await this.#log.put({ ...r, stoppedAt: Date.now(), stopReason: why });
    } finally {
      this.#logger.warn('access.break-glass-stopped', { user: r.username, id, reason: why });
      this.#access.record('access.break-glass-stopped', r, `${id}: ${why}`);
    }
  }

  routes(): ControlRoute[] {
    const field = (req: ControlRequest, name: string): unknown => (req.body as Record<string, unknown> | undefined)?.[name];
    return [
      {
        method: 'POST',
        path: '/v1/break-glass/start',
        permission: 'signed-in',
        adminOnly: true,
        handle: async (req) => {
          const r = await this.start(this.#access.sessionOf(req), field(req, 'reason'));
          return { status: 200, body: { id: r.id, role: r.role, until: new Date(r.until).toISOString() } };
        },
      },
      {
        method: 'POST',
        path: '/v1/break-glass/stop',
        permission: 'signed-in',
        adminOnly: true,
        handle: async (req) => {
          await this.stopSession(this.#access.sessionOf(req));
          return { status: 200, body: { stopped: true } };
        },
      },
      {
        method: 'GET',
        path: '/v1/break-glass',
        permission: 'auditor',
        handle: async (req) => {
          const all = await this.#log.list();
          const pending = req.query.get('pending') === '1';
          return { status: 200, body: { records: (pending ? all.filter((r) => r.reviewedAt === undefined) : all).map(view) } };
        },
      },
      {
        method: 'POST',
        path: '/v1/break-glass/review',
        permission: 'auditor',
        handle: async (req) => {
          const caller = req.caller;
          const reviewer = caller?.kind === 'user' ? caller.username : 'console:root';
          const r = await this.review(field(req, 'id'), reviewer, field(req, 'note'), caller?.address);
          return { status: 200, body: { record: view(r) } };
        },
      },
    ];
  }
}

function view(r: BreakGlassRecord): Record<string, unknown> {
  const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
  return { ...r, startedAt: iso(r.startedAt), until: iso(r.until), stoppedAt: iso(r.stoppedAt), reviewedAt: iso(r.reviewedAt) };
}
