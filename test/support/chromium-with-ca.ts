// Headless Chromium (Debian's, through playwright-core) that trusts a test CA the way a hospital PC
// trusts the site CA: the CA is added to the NSS database of a throwaway HOME. Chromium refuses
// WebAuthn on a page with a certificate error, so `ignoreHTTPSErrors` would not do for those tests.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type CDPSession, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** Flags from WEB-NOTES: headless as root, no background connections to a network that is closed. */
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function chromiumPrecondition(): string | undefined {
  if (!existsSync(CHROMIUM)) return `${CHROMIUM} is not installed (apt-get install chromium)`;
  try {
    execFileSync('certutil', ['-H'], { stdio: 'ignore' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'certutil is not installed (apt-get install libnss3-tools)';
  }
  return undefined;
}

export interface TrustingBrowser {
  readonly browser: Browser;
  close(): Promise<void>;
}

export async function launchChromiumTrusting(caFile: string): Promise<TrustingBrowser> {
  const home = mkdtempSync(join(tmpdir(), 'edge-chromium-'));
  const nssdb = join(home, '.pki', 'nssdb');
  mkdirSync(nssdb, { recursive: true });
  execFileSync('certutil', ['-N', '-d', `sql:${nssdb}`, '--empty-password'], { stdio: 'ignore', timeout: 30_000 });
  execFileSync('certutil', ['-A', '-d', `sql:${nssdb}`, '-t', 'C,,', '-n', 'edge-test-ca', '-i', caFile], {
    stdio: 'ignore',
    timeout: 30_000,
  });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: FLAGS,
    env: { ...process.env, HOME: home },
    timeout: 60_000,
  });
  return {
    browser,
    async close() {
      await browser.close();
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/** Chromium's virtual authenticator (CDP WebAuthn domain) on `page`: a CTAP2 USB key that always consents. */
export async function addVirtualAuthenticator(page: Page): Promise<{ cdp: CDPSession; authenticatorId: string }> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'usb',
      hasResidentKey: false,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return { cdp, authenticatorId };
}
