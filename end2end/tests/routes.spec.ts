import { test, expect, Browser, ConsoleMessage, Page } from '@playwright/test';
import { demo, gotoHydrated, login } from './helpers';

// Every route of app/src/lib.rs, as every role, loaded in full several times: the browser must
// take over the server's page without a console error or a page error (a hydration mismatch
// panics in the wasm and leaves a page whose links do nothing), and a header link must still
// navigate inside the app afterwards. Mismatches can be timing dependent, hence the repeats;
// ROUTE_LOADS=30 makes a thorough run.

const loads = Number(process.env.ROUTE_LOADS ?? 3);

type Role = 'visitor' | 'owner' | 'buyer' | 'cva' | 'admin';
const signedIn: Role[] = ['owner', 'buyer', 'cva', 'admin'];
const everyone: Role[] = ['visitor', ...signedIn];

/** Real ids for the parameterised routes, taken from the demo data. */
interface Ids {
  vehicle: string;
  credit: string;
  importReport: string;
  certificate: string;
  request: string;
  /** The demo buyer's first order. */
  order: string;
  /** An order on one of the demo owner's listings. */
  sale: string;
  listing: string;
  auction: string;
}

interface Route {
  path: (ids: Ids, role: Role) => string;
  /** Who gets the page; a visitor outside this list is sent to sign in, anyone else gets 403. */
  roles: Role[];
}

const at = (path: string) => () => path;

const routes: Route[] = [
  { path: at('/'), roles: signedIn },
  { path: at('/login'), roles: everyone },
  { path: at('/signup'), roles: everyone },
  { path: at('/forgot-password'), roles: everyone },
  { path: at('/reset-password'), roles: everyone },
  { path: at('/profile'), roles: signedIn },
  { path: at('/notifications'), roles: signedIn },
  { path: at('/notifications/settings'), roles: signedIn },
  { path: at('/admin/users'), roles: ['admin'] },
  { path: at('/admin/methodology'), roles: ['admin'] },
  { path: at('/admin/audit'), roles: ['admin'] },
  { path: at('/dashboard'), roles: ['owner'] },
  { path: at('/trips'), roles: ['owner'] },
  { path: at('/charging'), roles: ['owner'] },
  { path: at('/credits'), roles: ['owner'] },
  { path: (ids) => `/credits/${ids.credit}`, roles: ['owner'] },
  { path: at('/cva'), roles: ['cva', 'admin'] },
  { path: at('/cva/report'), roles: ['cva', 'admin'] },
  { path: at('/wallet'), roles: ['owner', 'buyer'] },
  { path: at('/market'), roles: everyone },
  { path: at('/market/trends'), roles: everyone },
  { path: (ids) => `/market/${ids.listing}`, roles: everyone },
  { path: at('/auctions'), roles: everyone },
  { path: (ids) => `/auctions/${ids.auction}`, roles: everyone },
  { path: at('/sell'), roles: ['owner'] },
  { path: at('/orders'), roles: ['buyer'] },
  // An order is shown to its buyer, its seller and the admins.
  { path: (ids, role) => `/orders/${role === 'owner' ? ids.sale : ids.order}`, roles: ['buyer', 'owner', 'admin'] },
  { path: at('/money'), roles: ['owner', 'buyer'] },
  { path: at('/admin/withdrawals'), roles: ['admin'] },
  { path: at('/admin/settings'), roles: ['admin'] },
  { path: at('/reports'), roles: ['owner', 'buyer', 'admin'] },
  { path: at('/admin/disputes'), roles: ['admin'] },
  { path: at('/admin/transactions'), roles: ['admin'] },
  { path: at('/admin/money'), roles: ['admin'] },
  { path: (ids) => `/verify/${ids.certificate}`, roles: everyone },
  { path: (ids) => `/cva/requests/${ids.request}`, roles: ['cva', 'admin'] },
  { path: at('/vehicles'), roles: ['owner'] },
  { path: (ids) => `/vehicles/${ids.vehicle}`, roles: ['owner'] },
  { path: at('/import'), roles: ['owner'] },
  { path: (ids) => `/imports/${ids.importReport}`, roles: ['owner'] },
];

const accounts = { owner: demo.owner, buyer: demo.buyer, cva: demo.cva, admin: demo.admin };

/** What the browser reported: console errors and uncaught errors (a wasm panic is both). */
class Problems {
  private seen: { text: string; url: string }[] = [];
  private onPageError?: () => void;

  constructor(page: Page) {
    page.on('console', (m: ConsoleMessage) => {
      if (m.type() === 'error') this.seen.push({ text: m.text(), url: m.location().url });
    });
    page.on('pageerror', (e) => {
      this.seen.push({ text: `page error: ${e.message}`, url: page.url() });
      this.onPageError?.();
    });
  }

  /** Waits until the page is hydrated, or stops at the first page error (it never will be). */
  async hydrated(page: Page): Promise<void> {
    const failed = new Promise<void>((resolve) => (this.onPageError = resolve));
    const taken = page
      .locator('html[data-hydrated="true"]')
      .waitFor({ state: 'attached', timeout: 45_000 })
      .catch(() => this.seen.push({ text: 'the page was not hydrated within 45 s', url: page.url() }));
    await Promise.race([taken, failed]);
    this.onPageError = undefined;
  }

  take(): { text: string; url: string }[] {
    const seen = this.seen;
    this.seen = [];
    return seen;
  }
}

function describe(seen: { text: string; url: string }[]): string {
  return seen.map((p) => `${p.text.split('\n')[0]} (at ${p.url})`).join('\n');
}

/** The first link of the header that leads somewhere else than `path`. */
async function headerLinkAway(page: Page, path: string): Promise<{ href: string; label: string }> {
  const links = page.locator('header.site-header nav a');
  for (const link of await links.all()) {
    const href = (await link.getAttribute('href'))!;
    if (href !== path) return { href, label: (await link.textContent())!.trim() };
  }
  throw new Error(`no header link away from ${path}`);
}

/** The 403 page and the login page a turned-away visit lands on, once navigated away from. */
type Landings = Set<'403' | 'login'>;

/** Loads `route` in full, `loads` times, checks what `role` gets, then follows a header link
 * (from a 403 or login page the visit was turned away to, once per role). */
async function visit(page: Page, problems: Problems, role: Role, route: Route, ids: Ids, left: Landings): Promise<void> {
  const path = route.path(ids, role);
  const allowed = route.roles.includes(role);
  // A guard that turns the visit away builds nothing of the page: one load says all.
  const times = allowed ? loads : 1;
  for (let i = 1; i <= times; i++) {
    const response = (await page.goto(path))!;
    await problems.hydrated(page);
    const seen = problems.take();
    const context = `${role} at ${path}, load ${i} of ${times}`;
    if (allowed) {
      expect(response.status(), context).toBe(200);
      expect(new URL(page.url()).pathname, context).toBe(path);
      expect(describe(seen), context).toBe('');
    } else if (role === 'visitor') {
      // Sent to sign in (and back afterwards); the login page hydrates cleanly.
      const url = new URL(page.url());
      expect(url.pathname, context).toBe('/login');
      expect([null, path], context).toContain(url.searchParams.get('next'));
      expect(describe(seen), context).toBe('');
    } else {
      // The 403 page. Its one console error is Chromium reporting the document's own status.
      expect(response.status(), context).toBe(403);
      await expect(page.getByRole('heading', { name: '403 — No access' }), context).toBeVisible();
      expect(seen.length, `${context}: ${describe(seen)}`).toBe(1);
      expect(seen[0].text, context).toMatch(/^Failed to load resource: the server responded with a status of 403 /);
      expect(seen[0].url, context).toBe(response.url());
    }
  }
  // A turned-away visit lands on the same page each time: leaving it once proves it.
  const landing = allowed ? undefined : role === 'visitor' ? 'login' : '403';
  if (landing && left.has(landing)) return;
  if (landing) left.add(landing);
  await followHeaderLink(page, problems, `${role} at ${path}`);
}

/** Clicks a header link: the app must navigate by itself (no full load) and show a page. */
async function followHeaderLink(page: Page, problems: Problems, context: string): Promise<void> {
  const here = new URL(page.url()).pathname;
  const { href, label } = await headerLinkAway(page, here);
  await page.evaluate(() => ((window as unknown as { sameDocument: boolean }).sameDocument = true));
  await page.locator('header.site-header nav').getByRole('link', { name: label, exact: true }).first().click();
  await expect(page, `${context}: header link ${label}`).toHaveURL((url) => url.pathname === href);
  await expect(page.locator('main h1').first(), `${context}: header link ${label}`).toBeVisible();
  const sameDocument = await page.evaluate(() => (window as unknown as { sameDocument?: boolean }).sameDocument);
  expect(sameDocument, `${context}: header link ${label} navigated inside the app`).toBe(true);
  expect(describe(problems.take()), `${context}: after the header link ${label}`).toBe('');
}

/** A page in a browser context of its own, signed in as `role` (a visitor is not). */
async function pageAs(browser: Browser, role: Role): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  if (role !== 'visitor') {
    const account = accounts[role];
    await login(page, account.email, account.password);
  }
  return page;
}

/** The first link on `path` (in `within`) starting with `prefix`, less the prefix. */
async function firstId(page: Page, path: string, prefix: string, within = 'main table'): Promise<string> {
  await gotoHydrated(page, path);
  const link = page.locator(`${within} a[href^="${prefix}"]`).first();
  await expect(link, `a link to ${prefix}… on ${path}`).toBeAttached();
  return (await link.getAttribute('href'))!.slice(prefix.length);
}

/** An import report of the demo owner's: a one-row file whose row is refused (nothing changes). */
async function importReport(page: Page): Promise<string> {
  await gotoHydrated(page, '/import');
  await page.getByLabel('File', { exact: true }).setInputFiles({
    name: 'routes-check.csv',
    mimeType: 'text/csv',
    buffer: Buffer.from('startTime;endTime;distanceKm\n2026-01-06 08:00:00;2026-01-06 07:00:00;10\n'),
  });
  await page.getByRole('button', { name: 'Import' }).click();
  await expect(page.getByRole('heading', { name: 'Import report' })).toBeVisible();
  return new URL(page.url()).pathname.slice('/imports/'.length);
}

let ids: Ids;

test.beforeAll(async ({ browser }) => {
  test.setTimeout(120_000);
  const owner = await pageAs(browser, 'owner');
  const buyer = await pageAs(browser, 'buyer');
  const cva = await pageAs(browser, 'cva');
  ids = {
    vehicle: await firstId(owner, '/vehicles', '/vehicles/'),
    credit: await firstId(owner, '/credits', '/credits/'),
    certificate: await firstId(owner, '/wallet', '/verify/', 'main .certificates'),
    importReport: await importReport(owner),
    request: await firstId(cva, '/cva', '/cva/requests/'),
    order: await firstId(buyer, '/orders', '/orders/'),
    sale: await firstId(owner, '/sell', '/orders/'),
    listing: await firstId(buyer, '/market', '/market/'),
    auction: await firstId(buyer, '/auctions', '/auctions/'),
  };
  for (const page of [owner, buyer, cva]) await page.context().close();
});

// The roles go through the routes side by side, each in its own browser context: quicker than
// one after the other, and concurrent requests are what the server meets in real use.
test(`every route hydrates cleanly for every role, ${loads} full loads each`, async ({ browser }) => {
  // About 3½ minutes with 3 loads on two busy cores; more when other builds share them.
  test.setTimeout(120_000 + loads * 180_000);
  const outcomes = await Promise.allSettled(
    everyone.map(async (role) => {
      const page = await pageAs(browser, role);
      const problems = new Problems(page);
      const left: Landings = new Set();
      for (const route of routes) await visit(page, problems, role, route, ids, left);
      await page.context().close();
    }),
  );
  // Every role's first failure, not just the first role's.
  const failures = outcomes.flatMap((o) => (o.status === 'rejected' ? [String(o.reason?.message ?? o.reason)] : []));
  expect(failures.join('\n\n'), 'routes that failed').toBe('');
});
