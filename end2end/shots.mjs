import { chromium } from '@playwright/test';
const base = process.env.BASE ?? 'http://127.0.0.1:3211';
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu'] });
async function as(email, password, pages) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  if (email) {
    await page.goto(base + '/login');
    await page.locator('html[data-hydrated="true"]').waitFor({ state: 'attached' });
    await page.getByLabel('E-mail').fill(email);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(base + '/');
  }
  for (const [path, name] of pages) {
    await page.goto(base + path);
    await page.locator('html[data-hydrated="true"]').waitFor({ state: 'attached' });
    await page.screenshot({ path: `/tmp/shots/${name}.png`, fullPage: true });
  }
  await ctx.close();
}
await as('admin@evcx.demo', 'run-the-platform-2026', [['/admin/disputes', 'admin-disputes'], ['/admin/transactions', 'admin-tx'], ['/admin/transactions?view=listings', 'admin-listings'], ['/admin/money', 'admin-money'], ['/reports', 'admin-report'], ['/notifications', 'admin-inbox'], ['/admin/settings', 'admin-settings']]);
await as('owner@evcx.demo', 'green-miles-2026', [['/reports', 'owner-report'], ['/sell', 'owner-sell'], ['/notifications', 'owner-inbox'], ['/notifications/settings', 'owner-settings']]);
await as('buyer@evcx.demo', 'offset-today-2026', [['/reports', 'buyer-report'], ['/money', 'buyer-money']]);
await as(null, null, [['/market/trends', 'trends']]);
await browser.close();
