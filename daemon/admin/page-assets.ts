// The admin page's files as the admin listener serves them: everything from the box (web-admin/ and the
// two libraries it runs on, preact and htm, as plain ES modules), under one content-hashed prefix
// (`/assets/<hash>/…`) so a browser may cache them for good and a new release is fetched at once; the
// page itself (`/`) is never cached. Read and compressed once at start: a page view costs a map lookup.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { gzipSync } from 'node:zlib';

/** A file served under the assets prefix at `path` (e.g. `vendor/preact.module.js`). */
export interface PageAssetFile {
  readonly path: string;
  readonly file: string;
  /** For a library module whose imports name a bare package: rewritten to a path of the prefix. */
  readonly rewrite?: (text: string) => string;
}

export interface PageRequest {
  readonly path: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

export interface PageResponse {
  readonly status?: number;
  readonly contentType: string;
  readonly body: Buffer;
  readonly headers?: Readonly<Record<string, string>>;
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.html': 'text/html; charset=utf-8',
};

/** Largest file the page may ship (the whole page is a few tens of kilobytes). */
const MAX_FILE_BYTES = 512 * 1024;

interface Prepared {
  readonly contentType: string;
  readonly body: Buffer;
  readonly gzip: Buffer;
}

export class PageAssets {
  readonly hash: string;
  readonly #files = new Map<string, Prepared>();
  readonly #index: Prepared;

  /** `dir` is web-admin/ (its index.html names the assets as `%ASSETS%/…`); `extra` the libraries. */
  constructor(dir: string, extra: readonly PageAssetFile[]) {
    const sources: PageAssetFile[] = [
      ...filesUnder(dir).map((file) => ({ path: relative(dir, file).split(sep).join('/'), file })),
      ...extra,
    ];
    const texts = new Map<string, Buffer>();
    const digest = createHash('sha256');
    for (const s of sources.sort((a, b) => (a.path < b.path ? -1 : 1))) {
      if (s.path === 'index.html' || s.path === 'README.md' || CONTENT_TYPES[extname(s.path)] === undefined) continue;
      const raw = readFileSync(s.file);
      if (raw.length > MAX_FILE_BYTES) throw new TypeError(`${s.file} is over ${MAX_FILE_BYTES} bytes: not an admin page asset`);
      // A library's trailing source-map comment would make the browser ask for a file the box does not serve.
      const text = raw.toString('utf8').replace(/\n?\/\/# sourceMappingURL=\S+\s*$/, '\n');
      const body = Buffer.from(s.rewrite === undefined ? text : s.rewrite(text), 'utf8');
      texts.set(s.path, body);
      digest.update(s.path).update('\0').update(body).update('\0');
    }
    this.hash = digest.digest('hex').slice(0, 16);
    for (const [path, body] of texts) this.#files.set(path, prepare(CONTENT_TYPES[extname(path)]!, body));
    const index = readFileSync(join(dir, 'index.html'), 'utf8').replaceAll('%ASSETS%', this.prefix);
    this.#index = prepare(CONTENT_TYPES['.html']!, Buffer.from(index, 'utf8'));
  }

  get prefix(): string {
    return `/assets/${this.hash}`;
  }

  /** Paths under the prefix with their size as sent gzipped (the benchmark reports them per view). */
  sizes(): { path: string; bytes: number; gzipBytes: number }[] {
    return [...this.#files].map(([path, p]) => ({ path, bytes: p.body.length, gzipBytes: p.gzip.length }));
  }

  /** The page at `/`, an asset under the current prefix, or undefined (404). */
  handle(req: PageRequest): PageResponse | undefined {
    const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    if (req.path === '/' || req.path === '/index.html') return respond(this.#index, gzip, 'no-store');
    const prefix = `${this.prefix}/`;
    if (!req.path.startsWith(prefix)) return undefined;
    const file = this.#files.get(req.path.slice(prefix.length));
    return file === undefined ? undefined : respond(file, gzip, 'public, max-age=31536000, immutable');
  }
}

function prepare(contentType: string, body: Buffer): Prepared {
  return { contentType, body, gzip: gzipSync(body, { level: 9 }) };
}

function respond(p: Prepared, gzip: boolean, cacheControl: string): PageResponse {
  return {
    contentType: p.contentType,
    body: gzip ? p.gzip : p.body,
    headers: { 'cache-control': cacheControl, vary: 'accept-encoding', ...(gzip ? { 'content-encoding': 'gzip' } : {}) },
  };
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

/** The libraries from node_modules: preact, its hooks (whose `from "preact"` becomes the served copy), htm. */
export function libraryFiles(nodeModules: string): PageAssetFile[] {
  return [
    { path: 'vendor/preact.module.js', file: join(nodeModules, 'preact/dist/preact.module.js') },
    {
      path: 'vendor/hooks.module.js',
      file: join(nodeModules, 'preact/hooks/dist/hooks.module.js'),
      rewrite: (text) => text.replace(/from\s*["']preact["']/g, 'from"./preact.module.js"'),
    },
    { path: 'vendor/htm.module.js', file: join(nodeModules, 'htm/dist/htm.module.js') },
  ];
}
