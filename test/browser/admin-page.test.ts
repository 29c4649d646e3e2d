// The admin page in a real browser (Debian's Chromium, headless, through playwright-core) against a live
// daemon fed by real peers: orders from python-hl7's mllp_send role (MLLP/TLS client), a worklist query
// from DCMTK's findscu, MPPS from dcmjs-dimse's client, an image from DCMTK's storescu; the RIS status
// receiver answers AR so procedure status becomes a dead letter; the PACS is down so the image queues.
// Every view renders live data with no console error, CSP violation or serious accessibility problem;
// the actions work and leave audit records; a patient named like markup stays text.
import test from 'ava';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { Secret, TOTP } from 'otpauth';
import { silentLogger } from '../../daemon/core/log.ts';
import { hashPassword } from '../../daemon/core/password-hash.ts';
import { FileKeySource } from '../../daemon/security/file-key-source.ts';
import { openStore } from '../../daemon/store/index.ts';
import { axeViolations, launchChromium, watchPage, type PageWatch } from '../support/browser.ts';
import { findscu, storescu } from '../support/dicom-peers.ts';
import { MllpTlsClient, msa, ormNew } from '../support/hl7-peers.ts';
import { RisReceiver, createAttributes, finalAttributes, sendMpps, uid } from '../support/mpps-peers.ts';
import { PEERS } from '../support/paths.ts';
import { needsCommand, whenMet } from '../support/preconditions.ts';
import { freePort, run } from '../support/processes.ts';
import { Daemon, createSite, repoRoot } from '../support/site.ts';
import { waitFor } from '../support/wait.ts';

const ARTIFACTS = join(repoRoot, '.test-artifacts', 'admin-page');
const PASSWORD = 'a long development password 42';
const EVIL_FAMILY = '<SCRIPT>ALERT(1)</SCRIPT>';
const IDLE_MS = 15_000;
const TOTP_SECRET = new Secret({ size: 20 });

type Site = Awaited<ReturnType<typeof createSite>>;
let site: Site;
let daemon: Daemon;
let ris: RisReceiver;
let browser: Browser;
let work: string;

const browserTest = whenMet(needsCommand('chromium', 'findscu', 'storescu', 'socat', 'python3'));

function today(): string {
  return new Date().toISOString().slice(0, 10).replaceAll('-', '');
}

async function addUsers(s: Site): Promise<void> {
  const store = await openStore({
    dataDir: join(s.dir, 'data'),
    keySource: new FileKeySource(join(s.dir, 'keys/data.key')),
    replayWindowMs: 3_600_000,
    logger: silentLogger,
  });
  const password = await hashPassword(PASSWORD);
  // `admin` signs in with TOTP; `ops-admin` (same role, no second factor) for the action tests, so no
  // test waits for a fresh 30 s TOTP step (a code's step may be used once).
  await store.users.create({
    username: 'admin',
    displayName: 'Test admin',
    role: 'admin',
    state: 'active',
    password,
    mustChange: false,
    totp: { secret: TOTP_SECRET.base32, lastStep: 0, enrolledAt: Date.now() },
    createdAt: Date.now(),
    sessionEpoch: 0,
  });
  for (const [username, role] of [
    ['ops-admin', 'admin'],
    ['auditor', 'auditor'],
    ['viewer', 'viewer'],
  ] as const)
    await store.users.create({
      username,
      displayName: `Test ${role}`,
      role,
      state: 'active',
      password,
      mustChange: false,
      createdAt: Date.now(),
      sessionEpoch: 0,
    });
  await store.close();
}

test.before(async () => {
  if (needsCommand('chromium', 'findscu', 'storescu', 'socat', 'python3') !== undefined) return;
  await mkdir(ARTIFACTS, { recursive: true });
  work = await mkdtemp(join(tmpdir(), 'edge-admin-page-'));
  const pacsPort = await freePort();
  site = await createSite((c) => {
    c['admin'].session = { idleTimeoutMs: IDLE_MS, stepUpWindowMs: 1000 };
    c['upstream'] = {
      ris: {
        host: '127.0.0.1',
        port: 1,
        tls: true,
        receivingApplication: 'RIS',
        receivingFacility: 'GENHOSP',
        ackTimeoutMs: 3000,
        connectTimeoutMs: 2000,
      },
      pacs: { protocol: 'dimse', host: '127.0.0.1', port: pacsPort, aeTitle: 'PACS', tls: false, connectTimeoutMs: 1000 },
    };
    c['outbox'] = { initialDelayMs: 200, maxDelayMs: 2000 };
  });
  ris = await RisReceiver.create(site.dir, { certFile: site.ris.certFile, keyFile: site.ris.keyFile, caFile: site.pki.caCert }, [
    '--ack-code',
    'AR',
  ]);
  const { readFile } = await import('node:fs/promises');
  const config = JSON.parse(await readFile(site.configFile, 'utf8'));
  config.upstream.ris.port = ris.port;
  await writeFile(site.configFile, JSON.stringify(config, null, 2));
  await ris.start();
  await addUsers(site);
  daemon = await Daemon.start(site.configFile);

  // Orders from the RIS: three ordinary ones and one whose patient is named like markup.
  const client = await MllpTlsClient.connect(daemon.ports.hl7, {
    certFile: site.ris.certFile,
    keyFile: site.ris.keyFile,
    caFile: site.pki.caCert,
  });
  for (let n = 1; n <= 4; n++) {
    let m = ormNew(n, { date: today(), time: `0${n}3000`.slice(-6), station: n === 2 ? 'CT01' : '' });
    if (n === 4) m = m.replace('TEST^PATIENT4', `${EVIL_FAMILY}^EVE`);
    if (msa(await client.send(m)) !== 'AA') throw new Error(`order ${n} not accepted`);
  }
  client.close();
  const ct = site.modalities.find((x) => x.aeTitle === 'CT01')!;
  const tls = { certFile: ct.certFile!, keyFile: ct.keyFile!, caFile: site.pki.caCert };
  const q = await findscu({
    port: daemon.ports.dicomTls,
    callingAe: 'CT01',
    keys: ['ScheduledProcedureStepSequence[0].Modality=CT', 'AccessionNumber'],
    tls,
  });
  if (q.responses.length !== 4) throw new Error(`findscu: ${q.responses.length} responses\n${q.stderr}`);
  const one = uid();
  const mpps = await sendMpps({ port: daemon.ports.dicomTls, callingAeTitle: 'CT01', calledAeTitle: 'EDGE', tls }, [
    { op: 'create', sopInstanceUid: one, attributes: createAttributes(1) },
    { op: 'set', sopInstanceUid: one, attributes: finalAttributes('COMPLETED') },
  ]);
  if (mpps.results.some((r) => r.status !== 0)) throw new Error(`MPPS: ${JSON.stringify(mpps)}`);
  const gen = await run('bash', [`${PEERS}/dicom/gen-dicom.sh`, join(work, 'ct'), '2', '32x32'], { timeoutMs: 60_000 });
  if (gen.code !== 0) throw new Error(gen.stderr);
  const files = (await readdir(join(work, 'ct'))).map((f) => join(work, 'ct', f));
  const stored = await storescu(site, daemon.ports.dicomTls, files);
  if (stored.stored.size !== files.length) throw new Error(`storescu: ${stored.statuses.join(', ')}`);
  browser = await launchChromium();
});

test.after.always(async () => {
  await browser?.close();
  await daemon?.stop();
  await ris?.stop();
  await site?.cleanup();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

/** Whether the box mounts a route (from the route table the page itself reads). */
async function mounted(page: Page, path: string): Promise<boolean> {
  return page.evaluate(async (p) => {
    const r = await fetch('/api/v1/access/routes', { headers: { 'X-Edge-Background': '1' } });
    return ((await r.json()) as { routes: { path: string }[] }).routes.some((x) => x.path === p);
  }, path);
}

function origin(): string {
  return `https://localhost:${daemon.ports.admin}`;
}

async function newPage(): Promise<{ page: Page; watch: PageWatch }> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1360, height: 900 } });
  const page = await context.newPage();
  return { page, watch: watchPage(page) };
}

/** Keyboard only: the form has focus on load; Tab to the password, Enter; then the TOTP code, Enter. */
async function signIn(page: Page, username: string, totp?: Secret): Promise<void> {
  await page.goto(`${origin()}/`);
  await page.locator('#username').waitFor();
  await page.keyboard.type(username);
  await page.keyboard.press('Tab');
  await page.keyboard.type(PASSWORD);
  await page.keyboard.press('Enter');
  if (totp !== undefined) {
    await page.locator('#totp:focus').waitFor();
    await page.keyboard.type(new TOTP({ secret: totp }).generate());
    await page.keyboard.press('Enter');
  }
  await page.locator('header.top').waitFor({ timeout: 15_000 });
}

const VIEW_CHECKS: Record<string, (page: Page) => Promise<void>> = {
  overview: async (page) => {
    await page.getByRole('heading', { name: 'Serving' }).waitFor();
    await page.getByText('DEVELOPMENT ONLY').first().waitFor();
    await page.getByRole('cell', { name: 'HL7 from the RIS (MLLP/TLS)' }).waitFor();
    await page.getByRole('cell', { name: 'pacs', exact: true }).waitFor();
  },
  peers: async (page) => {
    await page.getByRole('cell', { name: 'RIS^GENHOSP' }).waitFor();
    await page.getByRole('cell', { name: 'CT01', exact: true }).waitFor();
  },
  queues: async (page) => {
    await page.getByRole('heading', { name: 'Dead letters' }).waitFor();
    await page.getByRole('cell', { name: /AR/ }).first().waitFor({ timeout: 20_000 });
  },
  worklist: async (page) => {
    await page.getByRole('cell', { name: 'ACC4' }).waitFor();
  },
  images: async (page) => {
    await page.getByText('Instances waiting for the PACS').waitFor();
  },
  certificates: async (page) => {
    await page.getByRole('cell', { name: 'device', exact: true }).waitFor();
  },
  alerts: async (page) => {
    await page.getByRole('heading', { name: /^Open alerts \(\d+\)$/ }).waitFor();
    await page.getByRole('heading', { name: 'Quarantined peers' }).waitFor();
  },
  configuration: async (page) => {
    await page.locator('#config-text').waitFor();
  },
  users: async (page) => {
    await page.getByRole('cell', { name: 'auditor', exact: true }).first().waitFor();
  },
  audit: async (page) => {
    await page.getByRole('cell', { name: 'application.start' }).first().waitFor();
  },
};

async function checkView(
  t: { log(...s: unknown[]): void; deepEqual: (a: unknown, b: unknown, m?: string) => void },
  page: Page,
  watch: PageWatch,
  view: string,
): Promise<void> {
  const mark = watch.problems.length;
  await page.goto(`${origin()}/#/${view}`);
  await page.locator(`nav a[aria-current="page"][href="#/${view}"]`).waitFor();
  await VIEW_CHECKS[view]!(page);
  await page.screenshot({ path: join(ARTIFACTS, `${view}.png`), fullPage: true });
  const serious = (await axeViolations(page)).filter((v) => v.impact === 'serious' || v.impact === 'critical');
  t.deepEqual(serious, [], `${view}: axe-core found serious or critical violations`);
  t.deepEqual(watch.since(mark), [], `${view}: console errors or CSP violations`);
}

browserTest.serial('an admin signs in with the keyboard and every staff view renders live data, cleanly and accessibly', async (t) => {
  const { page, watch } = await newPage();
  await signIn(page, 'admin', TOTP_SECRET);
  const views = ['overview', 'alerts', 'peers', 'queues', 'worklist', 'images', 'certificates', 'configuration'];
  // The Users view reads the accounts API; a box without it hides the view rather than failing.
  t.true(await mounted(page, '/api/v1/users'));
  views.push('users');
  for (const view of views) await checkView(t, page, watch, view);
  t.deepEqual(watch.dialogs, []);
  await page.context().close();
});

browserTest.serial('a patient named like markup is shown as text with patient data, and that view is audited', async (t) => {
  const { page, watch } = await newPage();
  await signIn(page, 'ops-admin');
  await page.goto(`${origin()}/#/worklist`);
  await page.getByRole('cell', { name: 'ACC4' }).waitFor();
  t.is(await page.getByText(EVIL_FAMILY).count(), 0, 'minimised by default: no patient name');
  await page.getByRole('button', { name: /Show patient data/ }).click();
  await page.getByText(`${EVIL_FAMILY}, EVE`).waitFor();
  await page.screenshot({ path: join(ARTIFACTS, 'worklist-patient-data.png'), fullPage: true });
  t.is(await page.locator('main script').count(), 0, 'no script element came from the data');
  t.deepEqual(watch.dialogs, [], 'no dialog opened');
  t.deepEqual(watch.problems, []);
  await page.context().close();
});

browserTest.serial('queue actions: retry a dead letter, discard one with step-up and a reason; both audited', async (t) => {
  const { page, watch } = await newPage();
  await signIn(page, 'ops-admin');
  await page.goto(`${origin()}/#/queues`);
  const deadRow = page
    .locator('section', { has: page.getByRole('heading', { name: 'Dead letters' }) })
    .locator('tbody tr')
    .first();
  await deadRow.waitFor({ timeout: 20_000 });
  await deadRow.getByRole('button', { name: 'Retry' }).click();
  await page.getByText(/Done: .*requeued/).waitFor();
  // The RIS refuses it again: it comes back as a dead letter.
  await deadRow.waitFor({ timeout: 20_000 });
  await page.waitForTimeout(1500); // past the 1 s step-up window of this site
  await deadRow.getByRole('button', { name: 'Discard…' }).click();
  await page.locator('#discard-reason').fill('test order, the RIS will never take it');
  await page.getByRole('button', { name: 'Discard for good' }).click();
  await page.locator('#step-up-code').fill(PASSWORD);
  await page.getByRole('button', { name: 'Confirm' }).click();
  await page.getByText(/Done: .*discarded/).waitFor();
  await page.screenshot({ path: join(ARTIFACTS, 'queues-after-discard.png'), fullPage: true });
  // The only console error allowed here is the browser's note of the step-up refusal (401) it recovered from.
  t.deepEqual(
    watch.problems.filter((p) => !/status of 401/.test(p)),
    [],
  );
  await page.context().close();
});

browserTest.serial('a config edit with an invalid value names the field and changes nothing', async (t) => {
  const { page, watch } = await newPage();
  await signIn(page, 'ops-admin');
  await page.goto(`${origin()}/#/configuration`);
  const area = page.locator('#config-text');
  await area.waitFor();
  const before = await area.inputValue();
  const doc = JSON.parse(before);
  doc.dicom.aeTitle = 'AN-AE-TITLE-FAR-TOO-LONG';
  await area.fill(JSON.stringify(doc, null, 2));
  await page.getByRole('button', { name: 'Check' }).click();
  await page.getByRole('heading', { name: /Check found \d+ error/ }).waitFor();
  await page.getByRole('cell', { name: 'dicom.aeTitle' }).waitFor();
  t.true(await page.getByRole('button', { name: 'Apply' }).isDisabled(), 'apply is not offered for an invalid document');
  await page.screenshot({ path: join(ARTIFACTS, 'configuration-invalid.png'), fullPage: true });
  await page.reload();
  await area.waitFor();
  t.is(await area.inputValue(), before, 'the running config is unchanged');
  t.deepEqual(watch.problems, []);
  await page.context().close();
});

browserTest.serial(
  'the auditor sees the alerts and the audit view only, and finds the actions and the patient-data view in it',
  async (t) => {
    const { page, watch } = await newPage();
    await signIn(page, 'auditor');
    t.deepEqual(await page.locator('nav a').allTextContents(), ['Alerts', 'Audit']);
    await checkView(t, page, watch, 'alerts');
    await checkView(t, page, watch, 'audit');
    for (const type of ['outbox.retry-one', 'admin.patient-data-viewed', 'access.step-up', 'outbox.discarded']) {
      await page.locator('#audit-type').fill(type);
      await page.getByRole('button', { name: 'Search' }).click();
      await page.getByRole('cell', { name: type }).first().waitFor();
    }
    await page
      .getByRole('cell', { name: /because: test order, the RIS will never take it/ })
      .first()
      .waitFor();
    await page.screenshot({ path: join(ARTIFACTS, 'audit-search.png'), fullPage: true });
    t.deepEqual(watch.problems, []);
    await page.context().close();
  },
);

browserTest.serial('break-glass: a viewer states a reason, every page shows the banner, and patient data opens (audited)', async (t) => {
  const { page, watch } = await newPage();
  await signIn(page, 'viewer');
  await page.goto(`${origin()}/#/worklist`);
  await page.getByRole('cell', { name: 'ACC4' }).waitFor();
  t.is(await page.getByRole('button', { name: /Show patient data/ }).count(), 0, 'a viewer may not see patient data');
  await page.getByRole('button', { name: 'Break glass…' }).click();
  await page.locator('#glass-reason').fill('RIS down, the CT needs the patient of ACC4 now');
  await page.getByRole('button', { name: 'Start' }).click();
  await page
    .getByText(/Break-glass access active: viewer as operator/)
    .waitFor({ timeout: 10_000 })
    .catch(async (err: unknown) => {
      await page.screenshot({ path: join(ARTIFACTS, 'break-glass-failed.png'), fullPage: true });
      throw err;
    });
  await page.getByRole('button', { name: /Show patient data/ }).click();
  await page.getByText(`${EVIL_FAMILY}, EVE`).waitFor();
  await page.screenshot({ path: join(ARTIFACTS, 'break-glass.png'), fullPage: true });
  t.deepEqual(watch.dialogs, []);
  t.deepEqual(watch.problems, []);
  await page.context().close();
});

browserTest.serial('idle sign-out happens while the overview keeps refreshing in the background', async (t) => {
  const { page, watch } = await newPage();
  await signIn(page, 'viewer');
  await page.goto(`${origin()}/#/overview`);
  await page.getByRole('heading', { name: 'Serving' }).waitFor();
  const live = page.locator('[data-live]');
  const first = await live.getAttribute('data-live');
  await waitFor(async () => (await live.getAttribute('data-live')) !== first, 12_000);
  t.not(await live.getAttribute('data-live'), first, 'the overview refreshed on its own');
  await page.getByText('Your session has ended').waitFor({ timeout: IDLE_MS + 15_000 });
  await page.locator('#username').waitFor();
  await page.screenshot({ path: join(ARTIFACTS, 'signed-out-idle.png'), fullPage: true });
  // The refresh that found the session gone is the one 401 the browser notes.
  t.deepEqual(
    watch.problems.filter((p) => !/status of 401/.test(p)),
    [],
  );
  await page.context().close();
});
