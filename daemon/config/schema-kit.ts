// A tiny schema helper: one declaration gives the TypeScript type, the validator (which reports every
// issue with its path instead of stopping at the first) and the operator reference (docs/config.md).
// Kept in-house because the config is the box's trust boundary and needs no general-purpose validator.
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { readFileUpTo, uncreatableFolderProblem, unreadableFileMessage } from './file-access.ts';

export type Severity = 'error' | 'warning';

export interface ConfigIssue {
  readonly severity: Severity;
  /** Stable issue code (see IssueCode); messages may change. */
  readonly code: string;
  /** Where, e.g. `dicom.modalities[1].aeTitle`; '' for the whole document. */
  readonly path: string;
  readonly message: string;
}

export const IssueCode = {
  UnknownKey: 'unknown-key',
  Required: 'required',
  WrongType: 'wrong-type',
  OutOfRange: 'out-of-range',
  InvalidValue: 'invalid-value',
  Duplicate: 'duplicate',
  Inconsistent: 'inconsistent',
  FileNotFound: 'file-not-found',
  PermissionDenied: 'permission-denied',
  FileContent: 'invalid-file-content',
  KeyMismatch: 'key-mismatch',
  AllInterfaces: 'all-interfaces',
  UnsafeLocation: 'unsafe-location',
  FilePermissions: 'file-permissions',
  DevelopmentOnly: 'development-only',
  Insecure: 'insecure',
  NoPeers: 'no-peers',
  BindFailed: 'bind-failed',
  IgnoredKey: 'ignored-key',
  OverlappingRules: 'overlapping-rules',
  /** Only from the CLI: the file could not be read or is not JSON. */
  Unreadable: 'unreadable',
} as const;
export type IssueCode = (typeof IssueCode)[keyof typeof IssueCode];

export interface ParseContext {
  /** Folder relative paths are resolved against (the config file's folder). */
  readonly baseDir: string;
  /** Whether to look at the file system for referenced files. */
  readonly checkFiles: boolean;
  report(severity: Severity, code: IssueCode, path: string, message: string): void;
}

export const INVALID: unique symbol = Symbol('invalid');
export type Parsed<T> = T | typeof INVALID;

export type Presence = 'required' | 'optional' | 'default';

/** What the reference documentation shows about a schema node. */
export interface DocNode {
  readonly type: string;
  readonly description: string;
  readonly fields?: ReadonlyArray<{ readonly key: string; readonly schema: Schema<unknown, Presence> }>;
  readonly item?: Schema<unknown, Presence>;
  readonly variants?: {
    readonly key: string;
    readonly map: Readonly<Record<string, Schema<unknown, Presence>>>;
    /** The variant taken when the key is missing (configs written before the union existed). */
    readonly defaultTag?: string;
  };
  /** Keys accepted with a warning and dropped, each with why (see ObjectOptions.ignoredKeys). */
  readonly ignoredKeys?: Readonly<Record<string, string>>;
}

export interface Schema<T, P extends Presence = 'required'> {
  readonly presence: P;
  /** The JSON default shown in the docs (only when presence is 'default'). */
  readonly defaultValue?: unknown;
  /** Words for the docs instead of the JSON default, when that is too long to read (a table of 169 UIDs). */
  readonly defaultText?: string;
  readonly doc: DocNode;
  parse(value: unknown, path: string, ctx: ParseContext): Parsed<T>;
}

export type Infer<S> = S extends Schema<infer T, Presence> ? T : never;
type Flat<T> = { [K in keyof T]: T[K] } & {};
type Shape = Readonly<Record<string, Schema<unknown, Presence>>>;
type OptionalKeys<S extends Shape> = { [K in keyof S]: S[K]['presence'] extends 'optional' ? K : never }[keyof S];
export type ObjectOf<S extends Shape> = Flat<
  { readonly [K in Exclude<keyof S, OptionalKeys<S>>]: Infer<S[K]> } & { readonly [K in OptionalKeys<S>]?: Infer<S[K]> }
>;

export function childPath(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

interface Common {
  readonly doc: string;
}

export interface StringOptions extends Common {
  readonly minLength?: number;
  readonly maxLength?: number;
  /** Returns why the value is not acceptable, or undefined. */
  readonly check?: (value: string) => string | undefined;
  /** Shown as the type in the docs. */
  readonly label?: string;
}

export function string(opts: StringOptions): Schema<string> {
  const min = opts.minLength ?? 1;
  return {
    presence: 'required',
    doc: { type: opts.label ?? 'string', description: opts.doc },
    parse(value, path, ctx) {
      if (typeof value !== 'string') {
        ctx.report('error', IssueCode.WrongType, path, `expected a string, got ${describe(value)}`);
        return INVALID;
      }
      if (value.length < min || (opts.maxLength !== undefined && value.length > opts.maxLength)) {
        const range = opts.maxLength === undefined ? `at least ${min}` : `${min} to ${opts.maxLength}`;
        ctx.report('error', IssueCode.OutOfRange, path, `must be ${range} characters long`);
        return INVALID;
      }
      const problem = opts.check?.(value);
      if (problem !== undefined) {
        ctx.report('error', IssueCode.InvalidValue, path, problem);
        return INVALID;
      }
      return value;
    },
  };
}

export interface IntegerOptions extends Common {
  readonly min: number;
  readonly max: number;
}

export function integer(opts: IntegerOptions): Schema<number> {
  return {
    presence: 'required',
    doc: { type: `integer ${opts.min}–${opts.max}`, description: opts.doc },
    parse(value, path, ctx) {
      if (typeof value !== 'number' || !Number.isInteger(value)) {
        ctx.report('error', IssueCode.WrongType, path, `expected an integer, got ${describe(value)}`);
        return INVALID;
      }
      if (value < opts.min || value > opts.max) {
        ctx.report('error', IssueCode.OutOfRange, path, `must be between ${opts.min} and ${opts.max}, got ${value}`);
        return INVALID;
      }
      return value;
    },
  };
}

export function boolean(opts: Common): Schema<boolean> {
  return {
    presence: 'required',
    doc: { type: 'boolean', description: opts.doc },
    parse(value, path, ctx) {
      if (typeof value !== 'boolean') {
        ctx.report('error', IssueCode.WrongType, path, `expected true or false, got ${describe(value)}`);
        return INVALID;
      }
      return value;
    },
  };
}

export function oneOf<const V extends readonly string[]>(values: V, opts: Common): Schema<V[number]> {
  const list = values.map((v) => JSON.stringify(v)).join(' | ');
  return {
    presence: 'required',
    doc: { type: list, description: opts.doc },
    parse(value, path, ctx) {
      if (typeof value !== 'string' || !values.includes(value)) {
        ctx.report('error', IssueCode.InvalidValue, path, `must be one of ${list}`);
        return INVALID;
      }
      return value;
    },
  };
}

export interface PathOptions extends Common {
  /** What must exist there when the config is checked. */
  readonly mustExist: 'file' | 'directory' | 'nothing';
  /** A secret (private key): warn when group or others may read it. */
  readonly secret?: boolean;
  /** For files: what is wrong with the contents (read when files are checked), or undefined. */
  readonly contents?: (data: Buffer) => string | undefined;
  /** Where the path may not point (checked always; `checkFiles` also resolves symbolic links). */
  readonly location?: (absolute: string, checkFiles: boolean) => string | undefined;
  /** A folder the daemon creates at start when missing (checked when files are checked). */
  readonly createdFolder?: boolean;
}

/** Files whose contents are checked are small (PEM bundles, a data key); anything larger is refused. */
export const maxCheckedFileBytes = 1_048_576;

/** A path; relative paths are resolved against the config file's folder. The parsed value is absolute. */
export function filePath(opts: PathOptions): Schema<string> {
  return {
    presence: 'required',
    doc: { type: opts.mustExist === 'directory' || opts.mustExist === 'nothing' ? 'path' : 'path to a file', description: opts.doc },
    parse(value, path, ctx) {
      if (typeof value !== 'string' || value === '') {
        ctx.report('error', IssueCode.WrongType, path, `expected a non-empty path string, got ${describe(value)}`);
        return INVALID;
      }
      if (value.includes('\0')) {
        ctx.report('error', IssueCode.InvalidValue, path, 'a path cannot contain NUL');
        return INVALID;
      }
      const absolute = resolve(ctx.baseDir, value);
      const misplaced = opts.location?.(absolute, ctx.checkFiles);
      if (misplaced !== undefined) {
        ctx.report('error', IssueCode.UnsafeLocation, path, misplaced);
        return absolute;
      }
      if (ctx.checkFiles && opts.createdFolder === true) {
        const problem = uncreatableFolderProblem(absolute);
        if (problem !== undefined)
          ctx.report('error', problem.permission ? IssueCode.PermissionDenied : IssueCode.FileNotFound, path, problem.message);
      }
      if (ctx.checkFiles && opts.mustExist !== 'nothing') {
        let stat;
        try {
          stat = statSync(absolute);
        } catch (err) {
          reportUnreadable(ctx, path, absolute, err);
          return absolute;
        }
        if (opts.mustExist === 'file' && !stat.isFile()) {
          ctx.report('error', IssueCode.FileNotFound, path, `${absolute} is not a regular file`);
          return absolute;
        } else if (opts.mustExist === 'directory' && !stat.isDirectory()) {
          ctx.report('error', IssueCode.FileNotFound, path, `${absolute} is not a directory`);
          return absolute;
        } else if (opts.secret === true && (stat.mode & 0o077) !== 0) {
          ctx.report(
            'warning',
            IssueCode.FilePermissions,
            path,
            `${absolute} is readable by group or others (mode ${(stat.mode & 0o777).toString(8)}); use 0600`,
          );
        }
        if (opts.mustExist === 'file') {
          // Existing is not enough: the daemon must be able to read it (stat works without read permission).
          let data: Buffer | undefined;
          try {
            data = readFileUpTo(absolute, maxCheckedFileBytes);
          } catch (err) {
            reportUnreadable(ctx, path, absolute, err);
            return absolute;
          }
          const problem =
            data === undefined
              ? `is larger than ${maxCheckedFileBytes} bytes: not a certificate, key or token file`
              : opts.contents?.(data);
          if (problem !== undefined) ctx.report('error', IssueCode.FileContent, path, `${absolute} ${problem}`);
        }
      }
      return absolute;
    },
  };
}

function reportUnreadable(ctx: ParseContext, path: string, absolute: string, err: unknown): void {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM') {
    ctx.report('error', IssueCode.PermissionDenied, path, unreadableFileMessage(absolute));
  } else if (code === 'ENOENT' || code === 'ENOTDIR') {
    ctx.report(
      'error',
      IssueCode.FileNotFound,
      path,
      `${absolute} does not exist; check the path (relative paths start at the config file's folder)`,
    );
  } else {
    ctx.report('error', IssueCode.FileNotFound, path, `cannot read ${absolute} (${code ?? (err as Error).message})`);
  }
}

export interface UniqueRule<T> {
  /** Items with the same key are duplicates. */
  readonly key: (item: T) => string;
  /** Field of the item the issue points at; the item itself when omitted. */
  readonly field?: string;
  /** How the message names the key. */
  readonly what?: string;
}

export interface ArrayOptions<T> extends Common {
  readonly minItems?: number;
  readonly maxItems?: number;
  /** Duplicate checks; they run over the valid items even when others are invalid. */
  readonly unique?: ReadonlyArray<UniqueRule<T>>;
}

/** Invalid items are reported and dropped, so checks on the array still see the valid ones. */
export function array<T>(item: Schema<T>, opts: ArrayOptions<T>): Schema<readonly T[]> {
  return {
    presence: 'required',
    doc: { type: `array of ${item.doc.type}`, description: opts.doc, item },
    parse(value, path, ctx) {
      if (!Array.isArray(value)) {
        ctx.report('error', IssueCode.WrongType, path, `expected an array, got ${describe(value)}`);
        return INVALID;
      }
      let ok = true;
      if ((opts.minItems !== undefined && value.length < opts.minItems) || (opts.maxItems !== undefined && value.length > opts.maxItems)) {
        const range = opts.maxItems === undefined ? `at least ${opts.minItems}` : `${opts.minItems ?? 0} to ${opts.maxItems}`;
        ctx.report('error', IssueCode.OutOfRange, path, `must have ${range} items, got ${value.length}`);
        ok = false;
      }
      const out: T[] = [];
      const indexes: number[] = [];
      value.forEach((v: unknown, i) => {
        const r = item.parse(v, `${path}[${i}]`, ctx);
        if (r === INVALID) {
          ok = false;
        } else {
          out.push(r);
          indexes.push(i);
        }
      });
      for (const rule of opts.unique ?? []) {
        const seen = new Map<string, number>();
        out.forEach((v, n) => {
          const key = rule.key(v);
          const i = indexes[n] ?? n;
          const first = seen.get(key);
          if (first === undefined) {
            seen.set(key, i);
            return;
          }
          const at = rule.field === undefined ? `${path}[${i}]` : `${path}[${i}].${rule.field}`;
          ctx.report(
            'error',
            IssueCode.Duplicate,
            at,
            `duplicate ${rule.what ?? rule.field ?? 'value'}: already used by ${path}[${first}]`,
          );
        });
      }
      return ok ? out : INVALID;
    },
  };
}

export interface ObjectOptions extends Common {
  /**
   * Keys this object does not use but older configs carry (e.g. DIMSE fields in a STOW-RS route, which
   * once required them): a warning saying why, and the value is dropped, so the config stays valid
   * without the parsed type holding a field nothing reads.
   */
  readonly ignoredKeys?: Readonly<Record<string, string>>;
}

/** An object with known keys only: any other key is an error at its own path. */
export function object<const S extends Shape>(shape: S, opts: ObjectOptions): Schema<ObjectOf<S>> {
  const fields = Object.entries(shape).map(([key, schema]) => ({ key, schema }));
  const allowed = fields.map((f) => f.key).join(', ');
  const ignored = opts.ignoredKeys ?? {};
  return {
    presence: 'required',
    doc: { type: 'object', description: opts.doc, fields, ...(opts.ignoredKeys === undefined ? {} : { ignoredKeys: opts.ignoredKeys }) },
    parse(value, path, ctx) {
      if (!isPlainObject(value)) {
        ctx.report('error', IssueCode.WrongType, path, `expected an object, got ${describe(value)}`);
        return INVALID;
      }
      let ok = true;
      for (const key of Object.keys(value)) {
        if (Object.hasOwn(ignored, key)) {
          ctx.report('warning', IssueCode.IgnoredKey, childPath(path, key), `is ignored: ${ignored[key]}; remove it`);
        } else if (!Object.hasOwn(shape, key)) {
          ctx.report('error', IssueCode.UnknownKey, childPath(path, key), `unknown key (allowed here: ${allowed})`);
          ok = false;
        }
      }
      const out: Record<string, unknown> = {};
      for (const { key, schema } of fields) {
        const v = value[key];
        const p = childPath(path, key);
        if (v === undefined && schema.presence !== 'default') {
          if (schema.presence === 'required') {
            ctx.report('error', IssueCode.Required, p, 'is required');
            ok = false;
          }
          continue;
        }
        const r = schema.parse(v, p, ctx);
        if (r === INVALID) ok = false;
        else out[key] = r;
      }
      return ok ? (out as ObjectOf<S>) : INVALID;
    },
  };
}

type Variants = Readonly<Record<string, Schema<object>>>;
type TaggedOf<K extends string, V extends Variants> = {
  [T in keyof V & string]: Flat<{ readonly [P in K]: T } & Infer<V[T]>>;
}[keyof V & string];

export interface TaggedOptions<V extends Variants> extends Common {
  /** The variant when the key is missing; omitted = the key is required. */
  readonly defaultTag?: keyof V & string;
}

/** A union told apart by one key (e.g. `backend`); each variant is an object without that key. */
export function tagged<const K extends string, const V extends Variants>(
  key: K,
  variants: V,
  opts: TaggedOptions<V>,
): Schema<TaggedOf<K, V>> {
  const names = Object.keys(variants);
  const list = names.map((n) => JSON.stringify(n)).join(' | ');
  return {
    presence: 'required',
    doc: {
      type: 'object',
      description: opts.doc,
      variants: { key, map: variants, ...(opts.defaultTag === undefined ? {} : { defaultTag: opts.defaultTag }) },
    },
    parse(value, path, ctx) {
      if (!isPlainObject(value)) {
        ctx.report('error', IssueCode.WrongType, path, `expected an object, got ${describe(value)}`);
        return INVALID;
      }
      const tag = value[key] ?? opts.defaultTag;
      const variant = typeof tag === 'string' && Object.hasOwn(variants, tag) ? variants[tag] : undefined;
      if (variant === undefined) {
        const why = tag === undefined ? 'is required' : 'must be';
        ctx.report('error', tag === undefined ? IssueCode.Required : IssueCode.InvalidValue, childPath(path, key), `${why} one of ${list}`);
        return INVALID;
      }
      const rest: Record<string, unknown> = { ...value };
      delete rest[key];
      const r = variant.parse(rest, path, ctx);
      return r === INVALID ? INVALID : ({ [key]: tag, ...r } as TaggedOf<K, V>);
    },
  };
}

export function optional<T>(schema: Schema<T>): Schema<T, 'optional'> {
  return { ...schema, presence: 'optional' };
}

/** When the key is missing, `value` is parsed in its place (so default paths resolve and nested defaults fill in). */
export function withDefault<T>(schema: Schema<T>, value: unknown, defaultText?: string): Schema<T, 'default'> {
  return {
    presence: 'default',
    defaultValue: value,
    ...(defaultText === undefined ? {} : { defaultText }),
    doc: schema.doc,
    parse(v, path, ctx) {
      return schema.parse(v === undefined ? structuredClone(value) : v, path, ctx);
    },
  };
}

/** Cross-field checks, run only when the value itself parsed cleanly. */
export function refine<T, P extends Presence>(
  schema: Schema<T, P>,
  check: (value: T, path: string, ctx: ParseContext) => void,
): Schema<T, P> {
  return {
    ...schema,
    parse(v, path, ctx) {
      const r = schema.parse(v, path, ctx);
      if (r !== INVALID) check(r, path, ctx);
      return r;
    },
  };
}
