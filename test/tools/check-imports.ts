// Fails when an import points outward (DESIGN.md §3) or when modules import each other in a cycle.
// daemon/core imports only core; each adapter imports only core and itself; daemon/flows/ (one module
// per flow) composes adapters and core; only daemon/main.ts (the process) imports the flows, and no
// other daemon/main-*.ts may exist; provisioning/ may use the adapters, never the flows or main.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../..');
const IMPORT =
  /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|(?:^|\n)\s*import\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** The architectural part a file belongs to: 'core', 'hl7', ..., 'main', 'provisioning', or 'test'. */
function partOf(rel: string): string {
  if (rel === 'daemon/main.ts') return 'main';
  const m = /^daemon\/([^/]+)\//.exec(rel);
  if (m) return m[1]!;
  if (rel.startsWith('provisioning/')) return 'provisioning';
  return 'test';
}

/** What the process may use besides the flows: the config it loads, the core, and its logger. */
const MAIN_MAY_IMPORT: ReadonlySet<string> = new Set(['flows', 'config', 'core', 'observability']);
const NOT_ADAPTERS: ReadonlySet<string> = new Set(['main', 'flows', 'provisioning', 'test']);

function allowed(from: string, to: string): boolean {
  if (from === to) return true;
  if (to === 'core') return true;
  if (from === 'main') return MAIN_MAY_IMPORT.has(to);
  if (from === 'flows') return !NOT_ADAPTERS.has(to);
  if (from === 'test') return true;
  if (from === 'provisioning') return !NOT_ADAPTERS.has(to);
  return false;
}

const files = [...walk(join(root, 'daemon')), ...walk(join(root, 'provisioning'))];
const problems: string[] = [];
// The composition lives in daemon/flows/, one module per flow; a daemon/main-*.ts is a second root.
for (const name of readdirSync(join(root, 'daemon'))) {
  if (/^main-.*\.ts$/.test(name))
    problems.push(`daemon/${name}: composition belongs in daemon/flows/ (only daemon/main.ts is the process)`);
}
const graph = new Map<string, string[]>();

for (const file of files) {
  const rel = relative(root, file);
  const isTest = rel.endsWith('.test.ts');
  const from = isTest ? 'test' : partOf(rel);
  const src = readFileSync(file, 'utf8');
  const edges: string[] = [];
  for (const m of src.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2] ?? m[3];
    if (spec === undefined || !spec.startsWith('.')) continue;
    const target = relative(root, resolve(dirname(file), spec));
    const to = partOf(target);
    if (!isTest && !allowed(from, to)) problems.push(`${rel}: imports ${target} (${from} → ${to} points outward)`);
    // Outside store/ the store is its facade (store/index.ts); its parts are for tests and benches only.
    if (!isTest && !rel.startsWith('daemon/store/') && /^daemon\/store\/(assemble\.ts|testing\/)/.test(target)) {
      problems.push(`${rel}: imports ${target} (the store's parts are reached through openStore; store/testing/ is for tests)`);
    }
    if (!isTest && !target.endsWith('.test.ts')) edges.push(target);
  }
  if (!isTest) graph.set(rel, edges);
}

// Cycle detection (Tarjan-free DFS with colours; reports each back edge's cycle once).
const colour = new Map<string, 'grey' | 'black'>();
const stack: string[] = [];
function visit(n: string): void {
  colour.set(n, 'grey');
  stack.push(n);
  for (const m of graph.get(n) ?? []) {
    if (!graph.has(m)) continue;
    const c = colour.get(m);
    if (c === 'grey') problems.push(`import cycle: ${[...stack.slice(stack.indexOf(m)), m].join(' → ')}`);
    else if (c === undefined) visit(m);
  }
  stack.pop();
  colour.set(n, 'black');
}
for (const n of graph.keys()) if (!colour.has(n)) visit(n);

if (problems.length > 0) {
  for (const p of problems) console.error(p);
  console.error(`check-imports: ${problems.length} problem(s) in ${files.length} files`);
  process.exit(1);
}
console.log(`check-imports: ${files.length} files, imports point inward, no cycles`);
