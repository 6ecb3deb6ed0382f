import { test, expect, Page } from '@playwright/test';
import * as path from 'path';
import { gotoHydrated, hydrated, login, randomVin, signUp, uniqueEmail } from './helpers';

const fixture = path.join(__dirname, '..', 'fixtures', 'trips-with-bad-rows.csv');

async function signUpOwner(page: Page): Promise<void> {
  await signUp(page, { role: 'owner', name: 'Võ Thị Thu', email: uniqueEmail('driver'), phone: '+84 93 111 2233', password: 'quiet electric miles' });
}

async function registerVehicle(page: Page, vin: string): Promise<void> {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Vehicles' }).click();
  await expect(page.getByRole('heading', { name: 'Your vehicles' })).toBeVisible();
  await hydrated(page);
  const form = page.locator('section', { hasText: 'Register a vehicle' });
  await form.getByLabel('Make').fill('VinFast');
  await form.getByLabel('Model', { exact: true }).fill('VF e34');
  await form.getByLabel('Model year').fill('2023');
  await form.getByLabel('VIN').fill(vin.slice(0, 8) + (vin[8] === '1' ? '2' : '1') + vin.slice(9));
  await form.getByLabel('Licence plate').fill('30H-555.21');
  await form.getByLabel('Battery (kWh)').fill('42');
  await form.getByLabel('Efficiency (kWh/100 km)').fill('15,5');
  await form.getByRole('button', { name: 'Register vehicle' }).click();
  await expect(form.getByText('check digit')).toBeVisible();
  await form.getByLabel('VIN').fill(vin);
  await form.getByRole('button', { name: 'Register vehicle' }).click();
  await expect(page.locator(`tr[data-vin="${vin}"]`)).toContainText('2023 VinFast VF e34 (30H-555.21)');
}

test('an owner registers a vehicle, imports a file with bad rows and reads the report', async ({ page }) => {
  await signUpOwner(page);
  await registerVehicle(page, randomVin());

  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Dashboard' }).click();
  await expect(page.getByTestId('total-avoided')).toHaveText('0.0 kg');

  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Import data' }).click();
  await expect(page.getByRole('heading', { name: 'Import trips or charging sessions' })).toBeVisible();
  await hydrated(page);
  await page.getByLabel('File', { exact: true }).setInputFiles(fixture);
  await page.getByRole('button', { name: 'Import' }).click();

  await expect(page.getByRole('heading', { name: 'Import report' })).toBeVisible();
  await expect(page.getByTestId('import-headline')).toHaveText('2 of 5 rows imported as trips.');
  await expect(page.getByTestId('rejected')).toHaveText('3');
  const rows = page.locator('table.rejections tbody tr');
  await expect(rows).toHaveCount(3);
  await expect(rows.nth(0)).toContainText('4');
  await expect(rows.nth(0)).toContainText('end_time is not after start_time');
  await expect(rows.nth(1)).toContainText('distance_km “abc” is not a number');
  await expect(rows.nth(2)).toContainText('overlaps the trip on line 2');

  // The dashboard now shows the two trips: 37.4 km × 100 g/km = 3.74 kg, and the chart has a bar.
  await gotoHydrated(page, '/dashboard?by=year');
  await expect(page.getByTestId('total-avoided')).toHaveText('3.7 kg');
  await expect(page.getByTestId('total-trips')).toHaveText('2');
  await expect(page.getByTestId('total-distance')).toHaveText('37 km');
  await expect(page.locator('figure.chart svg rect').first()).toBeAttached();
  await expect(page.locator('table.dashboard-table tbody tr').first()).toContainText('3.7');

  // The trips page lists them; the owner deletes one and the dashboard follows.
  await gotoHydrated(page, '/trips');
  await expect(page.getByTestId('trip-count')).toHaveText('2 trips');
  const last = page.locator('table.trips tbody tr').first();
  await expect(last).toContainText('2026-01-05 17:30');
  await last.getByText('Delete', { exact: true }).click();
  await last.getByRole('button', { name: 'Delete this trip' }).click();
  await expect(page.getByTestId('trip-count')).toHaveText('1 trip');
  await gotoHydrated(page, '/dashboard?by=year');
  await expect(page.getByTestId('total-distance')).toHaveText('18 km');

  // The same file again: nothing new, and the page says so.
  await gotoHydrated(page, '/import');
  await page.getByLabel('File', { exact: true }).setInputFiles(fixture);
  await page.getByRole('button', { name: 'Import' }).click();
  // The deleted trip comes back; the other rows are duplicates now.
  await expect(page.getByTestId('imported')).toHaveText('1');
  await expect(page.getByText('This same file was imported before')).toBeVisible();
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('a file that is not trip data is refused with a clear message', async ({ browser }) => {
    // Sign up and register with JavaScript, then import with it off.
    const setup = await browser.newContext({ javaScriptEnabled: true });
    const page = await setup.newPage();
    await signUpOwner(page);
    await registerVehicle(page, randomVin());
    const cookies = await setup.cookies();
    await setup.close();

    const context = await browser.newContext({ javaScriptEnabled: false });
    await context.addCookies(cookies);
    const plain = await context.newPage();
    await plain.goto('/import');
    await plain.getByLabel('File', { exact: true }).setInputFiles({
      name: 'contacts.csv', mimeType: 'text/csv', buffer: Buffer.from('name,email\nAn,an@example.com\n'),
    });
    await plain.getByRole('button', { name: 'Import' }).click();
    await expect(plain.getByRole('alert')).toContainText('This does not look like trip data');

    await plain.getByLabel('File', { exact: true }).setInputFiles(fixture);
    await plain.getByRole('button', { name: 'Import' }).click();
    await expect(plain.getByRole('heading', { name: 'Import report' })).toBeVisible();
    await expect(plain.getByTestId('imported')).toHaveText('2');
    await context.close();
  });
});
