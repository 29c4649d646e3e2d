// Headless Chromium (Debian's /usr/bin/chromium) driven by playwright-core, as hospital IT at the admin
// page: the flags the closed network needs, and a watch on each page for what must never happen there
// (console errors, uncaught exceptions, CSP violations, dialogs) and for axe-core's verdict.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Browser, type Page, chromium } from 'playwright-core';
import { repoRoot } from './site.ts';

export const CHROMIUM = '/usr/bin/chromium';

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // No component updates, sync or background fetches: the test machine has no route out.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 60_000,
  });
}

export interface PageWatch {
  /** Console errors, page errors and CSP violations, with where they happened. */
  readonly problems: string[];
  readonly dialogs: string[];
  /** Problems since the mark (per view). */
  since(mark: number): string[];
}

export function watchPage(page: Page): PageWatch {
  const problems: string[] = [];
  const dialogs: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || /Content[- ]Security[- ]Policy/i.test(m.text()))
      problems.push(`console ${m.type()}: ${m.text()} at ${page.url()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message} at ${page.url()}`));
  page.on('dialog', (d) => {
    dialogs.push(`${d.type()}: ${d.message()}`);
    void d.dismiss();
  });
  return { problems, dialogs, since: (mark) => problems.slice(mark) };
}

/** axe-core (npm) evaluated in the page (not as a script tag: the CSP forbids inline script, rightly). */
export async function axeViolations(page: Page): Promise<{ id: string; impact: string; help: string; nodes: string[] }[]> {
  const source = await readFile(join(repoRoot, 'node_modules/axe-core/axe.min.js'), 'utf8');
  await page.evaluate(source);
  const result = await page.evaluate(async () => {
    const axe = (
      globalThis as unknown as {
        axe: { run(): Promise<{ violations: { id: string; impact: string; help: string; nodes: { target: string[] }[] }[] }> };
      }
    ).axe;
    return axe.run();
  });
  return result.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')),
  }));
}
