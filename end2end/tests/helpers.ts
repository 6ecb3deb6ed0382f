import { expect, Page } from '@playwright/test';
import * as fs from 'fs';
import * as path from 'path';

export const demo = {
  owner: { email: 'owner@evcx.demo', password: 'green-miles-2026', home: 'Your EV owner home' },
  buyer: { email: 'buyer@evcx.demo', password: 'offset-today-2026', home: 'Your buyer home' },
  cva: { email: 'cva@evcx.demo', password: 'verify-carefully-2026', home: 'Your verifier home' },
  admin: { email: 'admin@evcx.demo', password: 'run-the-platform-2026', home: 'Platform administration' },
  // A second demo buyer (from the marketplace demo data).
  roaster: { email: 'roaster@evcx.demo', password: 'offset-today-2026', home: 'Your buyer home' },
};

export function uniqueEmail(tag: string): string {
  return `${tag}-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.com`;
}

/** A valid 17-character VIN with a random serial (check digit computed). */
export function randomVin(): string {
  const chars = 'ABCDEFGHJKLMNPRSTUVWXYZ0123456789';
  const values: Record<string, number> = {};
  'ABCDEFGH'.split('').forEach((c, i) => (values[c] = i + 1));
  'JKLMN'.split('').forEach((c, i) => (values[c] = i + 1));
  values['P'] = 7; values['R'] = 9;
  'STUVWXYZ'.split('').forEach((c, i) => (values[c] = i + 2));
  for (let d = 0; d <= 9; d++) values[String(d)] = d;
  const weights = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];
  const vin = ('RLL' + Array.from({ length: 14 }, () => chars[Math.floor(Math.random() * chars.length)]).join('')).split('');
  const sum = vin.reduce((s, c, i) => s + values[c] * weights[i], 0) % 11;
  vin[8] = sum === 10 ? 'X' : String(sum);
  return vin.join('');
}

/** Waits until the browser has taken over the server-rendered page. */
export async function hydrated(page: Page): Promise<void> {
  await page.locator('html[data-hydrated="true"]').waitFor({ state: 'attached' });
}

export async function gotoHydrated(page: Page, path: string): Promise<void> {
  await page.goto(path);
  await hydrated(page);
}

export async function login(page: Page, email: string, password: string): Promise<void> {
  await gotoHydrated(page, '/login');
  await page.getByLabel('E-mail').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/$/);
}

/** Where the server under test writes its mail in development (see playwright.config.ts). */
const outbox = path.resolve(__dirname, '../../target/e2e-data/outbox');

/** A delivered message's recipient, subject and decoded text. */
function readMail(file: string): { to: string; subject: string; text: string } {
  const raw = fs.readFileSync(file, 'utf8');
  const split = raw.search(/\r?\n\r?\n/);
  const head = raw.slice(0, split).replace(/\r?\n[ \t]+/g, ' ');
  const body = raw.slice(split).trim();
  const header = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'im').exec(head)?.[1] ?? '';
  const encoding = header('Content-Transfer-Encoding').trim().toLowerCase();
  let text = body;
  if (encoding === 'base64') {
    text = Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  } else if (encoding === 'quoted-printable') {
    const bytes = body
      .replace(/=\r?\n/g, '')
      .replace(/=([0-9A-Fa-f]{2})/g, (_, hex) => String.fromCharCode(parseInt(hex, 16)));
    text = Buffer.from(bytes, 'latin1').toString('utf8');
  }
  return { to: header('To'), subject: header('Subject'), text };
}

/** The first answer `pick` gives for the mails delivered to `to`, newest first, once the
 * server's mail job has delivered one it likes. */
async function fromMail<T>(to: string, what: string, pick: (mail: { subject: string; text: string }) => T | undefined): Promise<T> {
  let found: T | undefined;
  await expect
    .poll(
      () => {
        if (!fs.existsSync(outbox)) return false;
        const files = fs
          .readdirSync(outbox)
          .filter((f) => f.endsWith('.eml'))
          .map((f) => path.join(outbox, f))
          .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
        for (const file of files) {
          const mail = readMail(file);
          if (!mail.to.toLowerCase().includes(to.toLowerCase())) continue;
          found = pick(mail);
          if (found !== undefined) return true;
        }
        return false;
      },
      { message: `a mail to ${to} with ${what}`, timeout: 30_000 },
    )
    .toBe(true);
  return found!;
}

/** The text of the newest mail to `to` with this subject. */
export async function mailed(to: string, subject: string): Promise<string> {
  return fromMail(to, `the subject ${subject}`, (mail) => (mail.subject === subject ? mail.text : undefined));
}

/** The path and query of the newest `page?token=…` link mailed to `to`. */
export async function mailedLink(to: string, page: string): Promise<string> {
  const pattern = new RegExp(`https?://[^/\\s]+(${page.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\?token=[0-9a-f]+)`);
  return fromMail(to, `a ${page} link`, (mail) => pattern.exec(mail.text)?.[1]);
}

export type NewAccount = { role: 'owner' | 'buyer'; name: string; email: string; phone: string; password: string };

/** Signs up as a person does: the form, the link in the mail, the password; ends signed in on
 * the role's home page. `hydrate` false works the forms without waiting for the browser's code
 * (for pages with JavaScript off). */
export async function signUp(page: Page, who: NewAccount, hydrate = true): Promise<void> {
  const open = (path: string) => (hydrate ? gotoHydrated(page, path) : page.goto(path).then(() => undefined));
  await open('/signup');
  await page.getByLabel(who.role === 'buyer' ? 'A buyer' : 'An EV owner').check();
  await page.getByLabel('Full name').fill(who.name);
  await page.getByLabel('E-mail').fill(who.email);
  await page.getByLabel('Phone').fill(who.phone);
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page.getByTestId('sign-up-sent')).toContainText('Check your e-mail');
  await open(await mailedLink(who.email, '/signup/confirm'));
  await expect(page.getByTestId('sign-up-email')).toHaveText(who.email.toLowerCase());
  await page.getByLabel('Password', { exact: true }).fill(who.password);
  await page.getByLabel('Repeat the password').fill(who.password);
  await page.getByRole('button', { name: 'Create my account' }).click();
  const home = who.role === 'buyer' ? 'Your buyer home' : 'Your EV owner home';
  await expect(page.getByRole('heading', { name: home })).toBeVisible();
}
