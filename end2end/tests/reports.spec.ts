import { test, expect } from '@playwright/test';
import { demo, gotoHydrated, login } from './helpers';

test('an owner reads their report, as a chart, a table, CSV and PDF', async ({ page }) => {
  await login(page, demo.owner.email, demo.owner.password);
  await gotoHydrated(page, '/reports');
  await expect(page.getByRole('heading', { name: 'Your CO₂, credits and revenue' })).toBeVisible();
  // A year of demo trips: twelve months, CO₂ in every one, drawn on the server.
  await expect(page.getByTestId('report-table').locator('tbody tr')).toHaveCount(12);
  await expect(page.getByRole('img', { name: /Chart of co₂ avoided per month/ })).toBeVisible();
  await expect(page.getByRole('img', { name: /Chart of co₂ avoided per month/ }).locator('svg')).toBeVisible();
  await expect(page.getByTestId('report-totals')).toContainText('CO₂ avoided');

  // By year: the table follows the URL.
  await page.getByLabel('By').selectOption('year');
  await page.getByRole('button', { name: 'Show' }).click();
  await expect(page).toHaveURL(/by=year/);
  await expect(page.getByTestId('report-table').locator('tbody tr').first()).toContainText(/20\d\d/);

  const csv = page.waitForEvent('download');
  await page.getByRole('link', { name: 'CSV' }).click();
  const file = await csv;
  const text = await (await file.createReadStream())!.toArray().then(chunks => Buffer.concat(chunks).toString('utf8'));
  expect(text.split('\r\n')[0]).toBe('period_start,period,CO₂ avoided (kg),Trips,Credits issued (kg),Credits sold (kg),Revenue (VND),Seller fees (VND)');
  expect(text).toContain(',Total,');

  const pdf = page.waitForEvent('download');
  await page.getByRole('link', { name: 'PDF' }).click();
  const bytes = await (await (await pdf).createReadStream())!.toArray().then(chunks => Buffer.concat(chunks));
  expect(bytes.subarray(0, 5).toString()).toBe('%PDF-');
});

test('market trends and the suggested price, for visitors and sellers', async ({ page }) => {
  await gotoHydrated(page, '/market/trends');
  await expect(page.getByRole('heading', { name: 'Market trends' })).toBeVisible();
  const vn = page.getByTestId('trend').filter({ hasText: 'VN · vintage 2026' });
  await expect(vn.getByTestId('suggested')).toHaveText(/₫$/);
  await expect(vn.getByRole('img', { name: /average price per tonne of VN 2026/ })).toBeVisible();

  await login(page, demo.owner.email, demo.owner.password);
  await gotoHydrated(page, '/sell');
  const suggestions = page.getByTestId('price-suggestions');
  await expect(suggestions).toContainText('VN · 2026');
  await expect(suggestions).toContainText('trades of the last year');
});
