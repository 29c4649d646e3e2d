// Part of the audit trail flow: the integrity of the stored chain. At every start it checks the chain's head
// against the anchors outside the store (the head file; the TPM NV counter with the TPM backend) and
// reads the chain back from where the last pass stopped (bounded in time, the rest in the background),
// raising a Security Alert for a cut tail or damaged records. The box keeps serving: damage is taken
// out of the chain (quarantined, never deleted), named in the chain, and the chain goes on.
import { X509Certificate } from 'node:crypto';
import { dirname, join } from 'node:path';
import type { AuditParticipant } from '../core/audit.ts';
import type { AuditHeadAnchor } from '../core/audit-trail.ts';
import type { KeySource } from '../core/keys.ts';
import type { Logger } from '../core/log.ts';
import type { EdgeConfig } from '../config/index.ts';
import { HeadFile, headFileProblem, pemCertificates, verifyDetached } from '../audit/index.ts';
import { TpmAuditCounter, counterProblem } from '../security/tpm-audit-counter.ts';
import { TpmKeySource } from '../security/tpm-key-source.ts';
import type { ChainVerification, DamagedRange, LevelAuditLog } from '../store/index.ts';
import { securityAlert } from '../core/audit-event-builders.ts';

/** Start-up reads the stored chain back for at most this long; the background pass does the rest. */
export const startVerifyBudgetMs = 500;
/** Background slices: short, so the event loop never waits long on them. */
const sliceBudgetMs = 100;
const catchUpIntervalMs = 250;

export interface AuditIntegrity {
  readonly headAnchor: AuditHeadAnchor;
  /** Check (and quarantine) every record through `toSeq` before a bundle is made of them. */
  verifyThrough(toSeq: number): Promise<void>;
  status(): unknown;
  stop(): void;
}

const describe = (ranges: readonly DamagedRange[]): string => ranges.map((r) => `seq ${r.fromSeq}..${r.toSeq} ${r.problem}`).join('; ');

export function headFileFor(config: EdgeConfig): HeadFile {
  // Beside the keys: with the file backend that is the key file's folder, outside the data directory.
  const dir =
    config.keys.backend === 'file' && config.keys.file !== undefined ? dirname(config.keys.file.path) : join(config.dataDir, 'keys');
  return new HeadFile(join(dir, 'audit-head.json'));
}

export async function startAuditIntegrity(o: {
  readonly config: EdgeConfig;
  readonly audit: LevelAuditLog;
  readonly keySource: KeySource;
  readonly box: AuditParticipant;
  readonly ca: Buffer;
  /** The device certificate (PEM) the box signs with now. */
  readonly cert: Buffer;
  readonly logger: Logger;
}): Promise<AuditIntegrity> {
  const { audit, box, logger: log } = o;
  const headFile = headFileFor(o.config);
  const counter = o.keySource instanceof TpmKeySource ? new TpmAuditCounter(o.keySource.tpm) : undefined;
  const anchors = pemCertificates(o.ca.toString()).map((der) => new X509Certificate(der));
  let truncated: string | undefined;
  let verifiedSeq = 0;
  let caughtUp = false;
  let headFileFailing = false;

  // 1. The head: the stored chain as it was opened, against what lives outside the store.
  const hashAt = async (seq: number): Promise<string | undefined> => {
    for await (const r of audit.read(seq, seq)) return r.hash;
    return undefined;
  };
  const problems = [await headFileProblem(headFile, audit.openedSeq, hashAt, anchors)];
  if (counter !== undefined) problems.push(counterProblem(await counter.read(), (await audit.checkpoints()).at(-1), audit.openedSeq));
  const found = problems.filter((p) => p !== undefined);
  if (found.length > 0) {
    truncated = found.join('; ');
    log.error('audit.chain-truncated', { problem: truncated });
    audit.record(securityAlert('audit.chain-truncated', [box], `${truncated}; the chain continues from seq ${audit.openedSeq}`));
  }

  // A new device key since the newest checkpoint: bundles verified --after the older ones will fail
  // until the central team pins the new certificate, so say it in the chain, where they look first.
  const newest = (await audit.checkpoints()).at(-1);
  const current = pemCertificates(o.cert.toString())[0];
  const before =
    newest === undefined ? undefined : verifyDetached(Buffer.from(newest.cms, 'base64'), Buffer.from(newest.statement, 'utf8')).signer;
  if (before !== undefined && current !== undefined) {
    const now = new X509Certificate(current);
    const spki = (c: X509Certificate): Buffer => c.publicKey.export({ type: 'spki', format: 'der' });
    if (!spki(before).equals(spki(now))) {
      const fp = (c: X509Certificate): string => c.fingerprint256.replace(/:/g, '').toLowerCase();
      const detail = `the device key changed since the checkpoint at seq ${newest!.seq}: certificate ${fp(before)} → ${fp(now)} (${now.subject.replace(/\n/g, ', ')}); pin the new certificate with edgectl audit verify --device-cert`;
      log.warn('audit.signing-key-changed', { problem: detail });
      audit.record(securityAlert('audit.signing-key-changed', [box], detail));
    }
  }

  // 2. Damage: what the store found at the head when it opened, and a first bounded pass from the cursor.
  const report = (v: ChainVerification | undefined, atOpen: readonly DamagedRange[] = []): void => {
    const ranges = [...atOpen, ...(v?.damaged ?? [])];
    if (ranges.length > 0) {
      const problem = `${describe(ranges)}; moved to quarantine (kept for forensics), left out of bundles, the chain continues`;
      log.error('audit.records-damaged', { problem });
      audit.record(securityAlert('audit.records-damaged', [box], problem));
    }
    if (v !== undefined && v.brokenLinks.length > 0) {
      const problem = `record(s) seq ${v.brokenLinks.join(', ')} do not link to the record before (altered by someone holding the data key)`;
      log.error('audit.chain-damaged', { problem });
      audit.record(securityAlert('audit.chain-damaged', [box], problem));
    }
    if (v !== undefined) {
      if (v.done && !caughtUp && verifiedSeq !== 0) log.info('audit.verified', { throughSeq: v.verifiedSeq, done: true, background: true });
      verifiedSeq = v.verifiedSeq;
      caughtUp = v.done;
    }
  };
  const started = performance.now();
  const first = await audit.verifyStored({ budgetMs: startVerifyBudgetMs });
  report(first, audit.damagedAtOpen);
  log.info('audit.verified', { throughSeq: first.verifiedSeq, done: first.done, ms: Math.round(performance.now() - started) });

  // 3. The background pass: catch up in short slices, then keep up with what is appended.
  let busy = false;
  const timer = setInterval(
    () => {
      if (busy || (caughtUp && verifiedSeq >= audit.durableSeq)) return;
      busy = true;
      audit
        .verifyStored({ budgetMs: sliceBudgetMs })
        .then(
          (v) => report(v),
          (err: unknown) => log.error('audit.verify-failed', { error: err instanceof Error ? err.message : String(err) }),
        )
        .finally(() => (busy = false));
    },
    caughtUp ? o.config.audit.checkpointEveryMs : catchUpIntervalMs,
  );
  timer.unref();

  const headAnchor: AuditHeadAnchor = {
    advance: async (final) => counter?.advance(final),
    recorded: async (cp) => {
      // A head file that cannot be written weakens the anchor but must not stop checkpoints.
      try {
        await headFile.recorded(cp);
        headFileFailing = false;
      } catch (err) {
        if (!headFileFailing)
          log.error('audit.head-file-failed', { path: headFile.path, error: err instanceof Error ? err.message : String(err) });
        headFileFailing = true;
      }
    },
  };
  return {
    headAnchor,
    async verifyThrough(toSeq) {
      report(await audit.verifyStored({ throughSeq: toSeq }));
    },
    status: () => ({
      verifiedSeq,
      damaged: audit.damaged,
      truncated: truncated ?? null,
      headAnchor: counter === undefined ? 'head-file' : 'tpm-nv-counter+head-file',
    }),
    stop: () => clearInterval(timer),
  };
}
