// The instance spool: encrypted spool files beside the database, one record per SOP Instance UID in it.
// An instance is acknowledged only once its file is fsynced, its directory entry fsynced, and its record
// (plus the outbox entry that forwards it) committed in one synced batch. Files without a record are
// leftovers of a crash before that commit and are removed at open. A record and its file are removed
// only after the PACS confirmed the instance; the same batch leaves a confirmation record (`f`, same keyed
// hash) that storage commitment requests are answered from.
import { Buffer } from 'node:buffer';
import { mkdir, open, readdir, stat, statfs, unlink } from 'node:fs/promises';
import { statfsSync } from 'node:fs';
import { join } from 'node:path';
import { EdgeError } from '../core/errors.ts';
import type {
  InstanceSpool,
  SpoolAdmission,
  SpoolCommitResult,
  SpooledInstance,
  SpooledInstanceMeta,
  SpooledInstanceRef,
  SpoolReader,
  SpoolUsage,
  SpoolWriter,
} from '../core/instance-spool.ts';
import { DICOM_INSTANCE_KIND } from '../core/instance-spool.ts';
import type { DataKeyRing } from '../core/keys.ts';
import type { Logger } from '../core/log.ts';
import type { CommitQueue, Op } from './commit-queue.ts';
import type { Database } from './database.ts';
import type { LevelOutboxStore, StagedEnqueue } from './outbox-store.ts';
import { Prefix, type RecordKeys, rangeOf } from './record-keys.ts';
import { type SpoolFileSlot, SpoolFileWriter, createSpoolFileSlot, readSpoolFile, spoolWriteError } from './spool-file.ts';
import type { ValueCodec } from './value-codec.ts';

const SEP = '\u0000';
const FILE_NAME = /^[0-9a-f]{32}$/;

export interface SpoolOptions {
  /** Directory of the spool files (created 0700 if missing). */
  readonly dir: string;
  /** Above this many spooled bytes new instances are refused (0xA700) until forwarding drains it. */
  readonly highWaterBytes: number;
  /** Refuse new instances when the file system has less free space than this. */
  readonly minFreeBytes: number;
  /** Largest data set accepted. */
  readonly maxObjectBytes: number;
  /** Outbox destination that forwards instances (e.g. `pacs`); undefined = keep them (no route). */
  readonly destination: string | undefined;
  readonly logger: Logger;
  /**
   * Empty files kept ready, while instances arrive, whose directory entries are already durable (0 = each
   * instance creates its file and fsyncs the directory before its commit). Saves a directory fsync per
   * instance. They are made when instances start arriving and removed after `preparedIdleMs` without one.
   */
  readonly preparedFiles?: number;
  /** Idle time after which the prepared files are removed (default 2 s). */
  readonly preparedIdleMs?: number;
  /** Instances confirmed by the PACS wait for its own storage commitment before they count as committed. */
  readonly awaitPacsCommitment?: boolean;
}

/** The outbox's staging API: entries committed in the same batch as the record. */
export type OutboxStaging = Pick<LevelOutboxStore, 'stage' | 'publish'>;

/** What the spool keeps of an instance it let go after the PACS confirmed it. */
interface ForwardedRecord {
  readonly sopClassUid: string;
  readonly sopInstanceUid?: string;
  readonly forwardedAt: number;
  /**
   * The PACS's own storage commitment (`upstream.pacs.storageCommitment`): `stored` until the box asked it,
   * `requested` under `pacsTransactionUid`, then its answer. Absent: the C-STORE confirmation is enough.
   */
  readonly pacs?: 'stored' | 'requested' | 'committed' | 'failed';
  readonly pacsTransactionUid?: string;
  readonly requestedAt?: number;
}

/** Where an instance is, as the spool knows it (storage commitment). */
export type SpoolInstanceState =
  | { readonly state: 'unknown' }
  | { readonly state: 'spooled'; readonly sopClassUid: string; readonly key: string }
  | { readonly state: 'committed' | 'pacs-pending' | 'pacs-failed'; readonly sopClassUid: string };

/** An instance the PACS holds whose commitment the box has to ask the PACS for (or ask again). */
export interface PacsCommitmentCandidate {
  readonly sopClassUid: string;
  readonly sopInstanceUid: string;
}

export class Spool implements InstanceSpool, SpoolReader {
  readonly #queue: CommitQueue;
  readonly #codec: ValueCodec;
  readonly #ring: DataKeyRing;
  readonly #keys: RecordKeys;
  readonly #options: SpoolOptions;
  readonly #outbox: OutboxStaging | undefined;
  readonly #logger: Logger;
  /** Spooled bytes per record key (file size on disk). */
  readonly #sizes = new Map<string, number>();
  #bytes = 0;
  /** Bytes written by instances still being received. */
  #inflight = 0;
  #dirSync: Promise<void> | undefined;
  #dirSyncAgain: Promise<void> | undefined;
  /** Prepared files (durable directory entries, no record: removed as orphans if the box restarts). */
  readonly #prepared: SpoolFileSlot[] = [];
  #preparing: Promise<void> | undefined;
  #closed = false;
  #writers = 0;
  #idleTimer: NodeJS.Timeout | undefined;

  private constructor(
    queue: CommitQueue,
    codec: ValueCodec,
    ring: DataKeyRing,
    keys: RecordKeys,
    options: SpoolOptions,
    outbox: OutboxStaging | undefined,
  ) {
    this.#queue = queue;
    this.#codec = codec;
    this.#ring = ring;
    this.#keys = keys;
    this.#options = options;
    this.#outbox = outbox;
    this.#logger = options.logger;
  }

  static async open(
    db: Database,
    queue: CommitQueue,
    codec: ValueCodec,
    ring: DataKeyRing,
    keys: RecordKeys,
    options: SpoolOptions,
    outbox?: OutboxStaging,
  ): Promise<Spool> {
    const spool = new Spool(queue, codec, ring, keys, options, outbox);
    await mkdir(options.dir, { recursive: true, mode: 0o700 });
    const referenced = new Set<string>();
    for await (const [key, value] of db.iterator(rangeOf(Prefix.spool))) {
      const instance = spool.#decode(key, value);
      referenced.add(instance.fileId);
      spool.#account(key, instance.bytes);
    }
    let orphans = 0;
    for (const name of await readdir(options.dir)) {
      if (!FILE_NAME.test(name) || referenced.has(name)) continue;
      if (await removeSpoolFile(join(options.dir, name), options.logger, 'orphan')) orphans++;
    }
    options.logger.info('spool.opened', { instances: spool.#sizes.size, bytes: spool.#bytes, orphansRemoved: orphans });
    return spool;
  }

  recordKey(sopInstanceUid: string): string {
    return `${Prefix.spool}${SEP}${this.#keys.hash('sop-instance', sopInstanceUid)}`;
  }

  #forwardedKey(recordKey: string): string {
    return `${Prefix.forwarded}${recordKey.slice(Prefix.spool.length)}`;
  }

  /**
   * Where each instance is (storage commitment): still spooled (its record key, to match dead letters),
   * confirmed by the PACS, or unknown. A spooled copy wins over an earlier confirmation: a re-sent
   * instance is committed again only once the PACS confirmed the new copy.
   */
  async states(sopInstanceUids: readonly string[]): Promise<SpoolInstanceState[]> {
    const out: SpoolInstanceState[] = [];
    for (const uid of sopInstanceUids) {
      const key = this.recordKey(uid);
      const spooled = await this.get(key);
      if (spooled !== undefined) {
        out.push({ state: 'spooled' as const, sopClassUid: spooled.sopClassUid, key });
        continue;
      }
      const fkey = this.#forwardedKey(key);
      const v = await this.#queue.get(fkey);
      if (v === undefined) {
        out.push({ state: 'unknown' as const });
        continue;
      }
      const f = this.#openForwarded(fkey, v);
      const state: 'committed' | 'pacs-pending' | 'pacs-failed' =
        f.pacs === undefined || f.pacs === 'committed' ? 'committed' : f.pacs === 'failed' ? 'pacs-failed' : 'pacs-pending';
      out.push({ state, sopClassUid: f.sopClassUid });
    }
    return out;
  }

  /** Forget confirmations older than `before`. */
  async pruneForwarded(before: number): Promise<number> {
    const stale: Op[] = [];
    for (const key of await this.#queue.keys(rangeOf(Prefix.forwarded))) {
      const v = await this.#queue.get(key);
      if (v !== undefined && this.#openForwarded(key, v).forwardedAt < before) stale.push({ type: 'del', key });
    }
    if (stale.length > 0) await this.#queue.commit(async () => ({ ops: stale, result: undefined }));
    return stale.length;
  }

  /**
   * Instances whose PACS commitment is still to be asked: never asked, or asked before `askedBefore` with
   * no answer yet (the PACS's report was lost). At most `limit`.
   */
  async pacsCommitmentCandidates(askedBefore: number, limit: number): Promise<PacsCommitmentCandidate[]> {
    const out: PacsCommitmentCandidate[] = [];
    for (const key of await this.#queue.keys(rangeOf(Prefix.forwarded))) {
      if (out.length >= limit) break;
      const v = await this.#queue.get(key);
      if (v === undefined) continue;
      const f = this.#openForwarded(key, v);
      if (f.sopInstanceUid === undefined) continue;
      if (f.pacs === 'stored' || (f.pacs === 'requested' && (f.requestedAt ?? 0) < askedBefore)) {
        out.push({ sopClassUid: f.sopClassUid, sopInstanceUid: f.sopInstanceUid });
      }
    }
    return out;
  }

  /** Record what the box asked the PACS (`requested` under a Transaction UID) or what the PACS answered. */
  async setPacsCommitment(
    sopInstanceUids: readonly string[],
    change: { readonly pacs: 'requested'; readonly transactionUid: string } | { readonly pacs: 'committed' | 'failed' },
    now = Date.now(),
  ): Promise<number> {
    return this.#queue.commit(async () => {
      const ops: Op[] = [];
      for (const uid of sopInstanceUids) {
        const fkey = this.#forwardedKey(this.recordKey(uid));
        const v = await this.#queue.get(fkey);
        if (v === undefined) continue;
        const f = this.#openForwarded(fkey, v);
        if (f.pacs === undefined || f.pacs === 'committed') continue;
        const next: ForwardedRecord =
          change.pacs === 'requested'
            ? { ...f, pacs: 'requested', pacsTransactionUid: change.transactionUid, requestedAt: now }
            : { ...f, pacs: change.pacs };
        ops.push({ type: 'put', key: fkey, value: this.#codec.seal(fkey, Buffer.from(JSON.stringify(next), 'utf8')) });
      }
      return { ops, result: ops.length };
    });
  }

  #openForwarded(key: string, value: Buffer): ForwardedRecord {
    try {
      return JSON.parse(this.#codec.open(key, value).toString('utf8')) as ForwardedRecord;
    } catch (cause) {
      throw new EdgeError('EDGE_STORE_DECRYPT_FAILED', 'a forwarded-instance record cannot be read', { cause });
    }
  }

  usage(): SpoolUsage {
    const freeBytes = this.#freeBytes();
    return {
      instances: this.#sizes.size,
      bytes: this.#bytes,
      highWaterBytes: this.#options.highWaterBytes,
      maxBytes: this.#options.highWaterBytes,
      freeBytes,
      aboveHighWater: this.#bytes + this.#inflight >= this.#options.highWaterBytes,
      inflightBytes: this.#inflight,
    };
  }

  admission(): SpoolAdmission {
    if (this.#bytes + this.#inflight >= this.#options.highWaterBytes) {
      return {
        accept: false,
        why: `spool above its high-water mark (${this.#bytes} of ${this.#options.highWaterBytes} bytes waiting for the PACS)`,
      };
    }
    const free = this.#freeBytes();
    if (free < this.#options.minFreeBytes) {
      return { accept: false, why: `spool file system nearly full (${free} bytes free, ${this.#options.minFreeBytes} required)` };
    }
    return { accept: true };
  }

  /** statfs is one cheap syscall; called once per association and instance, never per fragment. */
  #freeBytes(): number {
    try {
      const s = statfsSync(this.#options.dir);
      return s.bavail * s.bsize;
    } catch {
      return 0;
    }
  }

  begin(): SpoolWriter {
    return new InstanceWriter(this);
  }

  /** Internal to InstanceWriter. */
  createFile(): Promise<SpoolFileWriter> {
    return SpoolFileWriter.create(this.#options.dir, this.#ring, { maxBytes: this.#options.maxObjectBytes });
  }

  /** Internal to InstanceWriter: a prepared file (durable directory entry), or undefined when none is left. */
  takePreparedFile(): SpoolFileWriter | undefined {
    const want = this.#options.preparedFiles ?? 0;
    if (want === 0) return undefined;
    // Between bursts the spool directory holds only instances: prepared files go after an idle spell.
    clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => void this.#retirePrepared(), this.#options.preparedIdleMs ?? 2000);
    this.#idleTimer.unref();
    const slot = this.#prepared.pop();
    if (this.#prepared.length * 2 < want) void this.#prepare();
    if (slot === undefined) return undefined;
    try {
      return SpoolFileWriter.open(slot, this.#ring, { maxBytes: this.#options.maxObjectBytes });
    } catch (err) {
      void this.removeFile(slot.path);
      void slot.fh.close().catch(() => undefined);
      this.#logger.warn('spool.prepared-file-failed', { code: spoolWriteError(err).code });
      return undefined;
    }
  }

  /**
   * Top up the prepared files: create them, then one directory fsync makes all their entries durable.
   * Failures (disk full) only mean instances create their own files again; never thrown.
   */
  #prepare(): Promise<void> {
    const want = this.#closed ? 0 : (this.#options.preparedFiles ?? 0);
    if (this.#preparing !== undefined || this.#prepared.length >= want) return this.#preparing ?? Promise.resolve();
    this.#preparing = (async () => {
      const made: SpoolFileSlot[] = [];
      try {
        while (made.length + this.#prepared.length < want) made.push(await createSpoolFileSlot(this.#options.dir));
        await this.#doSyncDir();
        this.#prepared.push(...made);
      } catch (err) {
        for (const slot of made) {
          await slot.fh.close().catch(() => undefined);
          await this.removeFile(slot.path);
        }
        this.#logger.info('spool.prepare-failed', { code: spoolWriteError(err).code });
      } finally {
        this.#preparing = undefined;
      }
    })();
    return this.#preparing;
  }

  addInflight(n: number): void {
    this.#inflight += n;
  }

  /** Instances being received whose writer has not finished (committed, or discarded and removed). */
  get openWriters(): number {
    return this.#writers;
  }

  /** Internal to InstanceWriter. */
  countWriter(n: 1 | -1): void {
    this.#writers += n;
  }

  /** Internal to InstanceWriter: the file is synced; make its directory entry durable, then the record. */
  async commitFile(file: SpoolFileWriter, bytes: number, meta: SpooledInstanceMeta, entryDurable = false): Promise<SpoolCommitResult> {
    if (!entryDurable) await this.#syncDir();
    const key = this.recordKey(meta.sopInstanceUid);
    const instance: SpooledInstance = {
      key,
      fileId: file.fileId,
      bytes,
      receivedAt: Date.now(),
      sopClassUid: meta.sopClassUid,
      sopInstanceUid: meta.sopInstanceUid,
      transferSyntaxUid: meta.transferSyntaxUid,
      callingAeTitle: meta.callingAeTitle,
      ...auditIdentifiers(meta),
    };
    const { previous, staged } = await this.#queue.commit(async () => {
      const old = await this.#queue.get(key);
      const previous = old === undefined ? undefined : this.#decode(key, old);
      const ops: Op[] = [{ type: 'put', key, value: this.#encode(key, instance) }];
      let staged: StagedEnqueue | undefined;
      if (this.#outbox !== undefined && this.#options.destination !== undefined) {
        const payload: SpooledInstanceRef = { key, fileId: instance.fileId };
        // One ordering key per instance: instances are independent, so they may go out in parallel;
        // a second copy of the same SOP Instance UID waits behind the first.
        staged = this.#outbox.stage(
          [{ destination: this.#options.destination, orderingKey: key, kind: DICOM_INSTANCE_KIND, payload }],
          Date.now(),
        );
        ops.push(...staged.ops);
      }
      return { ops, result: { previous, staged } };
    });
    if (staged !== undefined) this.#outbox?.publish(staged);
    this.#account(key, bytes);
    if (previous !== undefined && previous.fileId !== instance.fileId) {
      await removeSpoolFile(join(this.#options.dir, previous.fileId), this.#logger, 'replaced');
    }
    return { status: 'stored', instance, replaced: previous !== undefined };
  }

  /** One directory fsync covers every file created before it started; concurrent commits share it. */
  #syncDir(): Promise<void> {
    if (this.#dirSync === undefined) {
      this.#dirSync = this.#doSyncDir().finally(() => {
        this.#dirSync = undefined;
      });
      return this.#dirSync;
    }
    // A sync is running but may have started before our file's entry: wait for the next one.
    this.#dirSyncAgain ??= this.#dirSync.then(() => {
      this.#dirSyncAgain = undefined;
      return this.#syncDir();
    });
    return this.#dirSyncAgain;
  }

  async #doSyncDir(): Promise<void> {
    const fh = await open(this.#options.dir, 'r');
    try {
      await fh.sync();
    } catch (err) {
      throw spoolWriteError(err);
    } finally {
      await fh.close();
    }
  }

  async get(key: string): Promise<SpooledInstance | undefined> {
    const v = await this.#queue.get(key);
    return v === undefined ? undefined : this.#decode(key, v);
  }

  read(instance: SpooledInstance): AsyncIterable<Uint8Array> {
    return readSpoolFile(join(this.#options.dir, instance.fileId), this.#ring, instance.fileId);
  }

  async remove(key: string, fileId: string): Promise<void> {
    const removed = await this.#queue.commit(async () => {
      const v = await this.#queue.get(key);
      if (v === undefined) return { ops: null, result: false };
      const instance = this.#decode(key, v);
      if (instance.fileId !== fileId) return { ops: null, result: false };
      const fkey = this.#forwardedKey(key);
      const forwarded: ForwardedRecord = {
        sopClassUid: instance.sopClassUid,
        sopInstanceUid: instance.sopInstanceUid,
        forwardedAt: Date.now(),
        ...(this.#options.awaitPacsCommitment === true ? { pacs: 'stored' as const } : {}),
      };
      const mark: Op = { type: 'put', key: fkey, value: this.#codec.seal(fkey, Buffer.from(JSON.stringify(forwarded), 'utf8')) };
      return { ops: [{ type: 'del', key }, mark], result: true };
    });
    if (!removed) return;
    this.#account(key, undefined);
    await removeSpoolFile(join(this.#options.dir, fileId), this.#logger, 'forwarded');
  }

  /** Space of a file being abandoned. */
  async removeFile(path: string): Promise<void> {
    await removeSpoolFile(path, this.#logger, 'abandoned');
  }

  #account(key: string, bytes: number | undefined): void {
    this.#bytes -= this.#sizes.get(key) ?? 0;
    if (bytes === undefined) this.#sizes.delete(key);
    else {
      this.#sizes.set(key, bytes);
      this.#bytes += bytes;
    }
  }

  #encode(key: string, instance: SpooledInstance): Buffer {
    return this.#codec.seal(key, Buffer.from(JSON.stringify(instance), 'utf8'));
  }

  #decode(key: string, value: Buffer): SpooledInstance {
    try {
      return JSON.parse(this.#codec.open(key, value).toString('utf8')) as SpooledInstance;
    } catch (cause) {
      throw new EdgeError('EDGE_STORE_DECRYPT_FAILED', 'a spool record cannot be read', { cause });
    }
  }

  /** Free bytes as statfs sees them (async, for the status page). */
  async freeBytes(): Promise<number> {
    const s = await statfs(this.#options.dir);
    return s.bavail * s.bsize;
  }

  /** Close and remove the prepared files (they would be removed as orphans at the next start anyway). */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#idleTimer);
    await this.#retirePrepared();
  }

  /** Resolves once the files being prepared now are ready (tests). */
  async whenPrepared(): Promise<void> {
    await this.#preparing;
  }

  async #retirePrepared(): Promise<void> {
    await this.#preparing;
    const slots = this.#prepared.splice(0);
    for (const slot of slots) {
      await slot.fh.close().catch(() => undefined);
      await this.removeFile(slot.path);
    }
  }

  /** Size on disk of a spool file (tests). */
  async fileSize(fileId: string): Promise<number> {
    return (await stat(join(this.#options.dir, fileId))).size;
  }
}

/** One instance being received: it takes a prepared file, or creates one when none is ready. */
class InstanceWriter implements SpoolWriter {
  readonly #spool: Spool;
  readonly #file: Promise<SpoolFileWriter>;
  #opened: SpoolFileWriter | undefined;
  /** A prepared file's directory entry is durable already. */
  readonly #entryDurable: boolean;
  #early: Uint8Array[] = [];
  #counted = 0;
  #done = false;
  #createError: unknown;

  constructor(spool: Spool) {
    this.#spool = spool;
    spool.countWriter(1);
    const prepared = spool.takePreparedFile();
    this.#entryDurable = prepared !== undefined;
    if (prepared !== undefined) {
      this.#opened = prepared;
      this.#file = Promise.resolve(prepared);
      return;
    }
    this.#file = spool.createFile().then(
      (f) => {
        this.#opened = f;
        for (const b of this.#early) void this.#feed(f, b);
        this.#early = [];
        return f;
      },
      (err: unknown) => {
        this.#createError = err;
        this.#early = [];
        throw err;
      },
    );
    this.#file.catch(() => undefined);
  }

  #feed(f: SpoolFileWriter, b: Uint8Array): Promise<void> | undefined {
    this.#spool.addInflight(b.length);
    this.#counted += b.length;
    return f.write(b);
  }

  write(fragment: Uint8Array): Promise<void> | undefined {
    if (this.#done || this.#createError !== undefined) return undefined;
    if (this.#opened !== undefined) return this.#feed(this.#opened, fragment);
    this.#early.push(fragment);
    // Until the file exists, ask the association to wait (bounds what we hold to one socket chunk).
    return this.#file.then(
      () => undefined,
      () => undefined,
    );
  }

  async commit(meta: SpooledInstanceMeta): Promise<SpoolCommitResult> {
    if (this.#done) throw new EdgeError('EDGE_STORE_WRITE_FAILED', 'instance already committed or discarded');
    this.#done = true;
    let file: SpoolFileWriter;
    try {
      file = await this.#file;
    } catch (err) {
      this.#settle();
      throw spoolWriteError(err);
    }
    try {
      const bytes = await file.finish();
      return await this.#spool.commitFile(file, bytes, meta, this.#entryDurable);
    } catch (err) {
      await this.#spool.removeFile(file.path);
      throw spoolWriteError(err);
    } finally {
      this.#settle();
    }
  }

  async discard(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    try {
      const file = await this.#file;
      await file.abandon();
      await this.#spool.removeFile(file.path);
    } catch {
      // The file was never created: nothing to remove.
    } finally {
      this.#settle();
    }
  }

  /** Called exactly once per writer, when its commit or discard is over. */
  #settle(): void {
    this.#spool.countWriter(-1);
    this.#spool.addInflight(-this.#counted);
    this.#counted = 0;
  }
}

/** The optional header identifiers of the meta that are present (kept encrypted, for the audit trail). */
function auditIdentifiers(meta: SpooledInstanceMeta): Partial<SpooledInstanceMeta> {
  const out: { -readonly [K in keyof SpooledInstanceMeta]?: SpooledInstanceMeta[K] } = {};
  for (const k of ['studyInstanceUid', 'accessionNumber', 'patientId', 'issuerOfPatientId'] as const) {
    const v = meta[k];
    if (v !== undefined && v !== '') out[k] = v;
  }
  return out;
}

/**
 * Delete a spool file whose record is gone. Gone already is fine; any other failure leaves encrypted bytes
 * the spool no longer counts (the next start removes them as orphans), so it is logged, not swallowed.
 */
async function removeSpoolFile(path: string, logger: Logger, why: 'orphan' | 'replaced' | 'forwarded' | 'abandoned'): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return true;
    logger.warn('spool.remove-failed', { why, file: path.slice(path.lastIndexOf('/') + 1), code: code ?? 'unexpected' });
    return false;
  }
}
