// Break-glass: a signed-in user raises their role for a limited time by stating a reason, in an
// emergency. Each use is kept (sealed in the store) until an auditor marks it reviewed; the port below
// is how the admin adapter keeps them.
import type { RoleName } from './control-route.ts';

export interface BreakGlassRecord {
  /** Random, not secret: names the record in the review list. */
  readonly id: string;
  readonly username: string;
  readonly address: string;
  readonly role: RoleName;
  readonly reason: string;
  readonly startedAt: number;
  /** When the elevation ends by itself. */
  readonly until: number;
  readonly stoppedAt?: number;
  /** `stopped by the user`, `time limit`, `signed out`, `box restarted`, … */
  readonly stopReason?: string;
  readonly reviewedAt?: number;
  readonly reviewedBy?: string;
  readonly reviewNote?: string;
}

export interface BreakGlassLog {
  list(): Promise<readonly BreakGlassRecord[]>;
  get(id: string): Promise<BreakGlassRecord | undefined>;
  /** Durable before it resolves. */
  put(record: BreakGlassRecord): Promise<void>;
}
