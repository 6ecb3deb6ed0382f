import { expect, Page } from '@playwright/test';

export const demo = {
  owner: { email: 'owner@evcx.demo', password: 'green-miles-2026', home: 'Your EV owner home' },
  buyer: { email: 'buyer@evcx.demo', password: 'offset-today-2026', home: 'Your buyer home' },
  cva: { email: 'cva@evcx.demo', password: 'verify-carefully-2026', home: 'Your verifier home' },
  admin: { email: 'admin@evcx.demo', password: 'run-the-platform-2026', home: 'Platform administration' },
};

export function uniqueEmail(tag: string): string {
  return `${tag}-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.com`;
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
