import { expect, Page } from '@playwright/test';

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
