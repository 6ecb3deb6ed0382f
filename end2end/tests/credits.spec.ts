import { test, expect, Browser, Page } from '@playwright/test';
import { demo, gotoHydrated, hydrated, login, randomVin, signUp, uniqueEmail } from './helpers';

/** A fresh owner with one vehicle and ten 100 km trips in March 2026 (1,000 km). */
async function ownerWithTrips(page: Page): Promise<void> {
  await signUp(page, { role: 'owner', name: 'Lê Minh Châu', email: uniqueEmail('credits'), phone: '+84 93 444 5566', password: 'quiet electric miles' });

  await gotoHydrated(page, '/vehicles');
  const form = page.locator('section', { hasText: 'Register a vehicle' });
  await form.getByLabel('Make').fill('VinFast');
  await form.getByLabel('Model', { exact: true }).fill('VF 5');
  await form.getByLabel('Model year').fill('2025');
  await form.getByLabel('VIN').fill(randomVin());
  await form.getByLabel('Licence plate').fill('29A-777.01');
  await form.getByLabel('Battery (kWh)').fill('37');
  await form.getByLabel('Efficiency (kWh/100 km)').fill('14');
  await form.getByRole('button', { name: 'Register vehicle' }).click();
  await expect(page.locator('tr[data-vin]')).toHaveCount(1);

  let csv = 'start_time,end_time,distance_km\n';
  for (let day = 1; day <= 10; day++) {
    const d = String(day).padStart(2, '0');
    csv += `2026-03-${d}T08:00:00+07:00,2026-03-${d}T10:00:00+07:00,100\n`;
  }
  await gotoHydrated(page, '/import');
  await page.getByLabel('File', { exact: true }).setInputFiles({ name: 'march.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
  await page.getByRole('button', { name: 'Import' }).click();
  await expect(page.getByTestId('imported')).toHaveText('10');
}

async function signedIn(browser: Browser, who: { email: string; password: string }): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  await login(page, who.email, who.password);
  return page;
}

test('an owner requests credits, the verifier approves, the owner retires part and anyone can verify it', async ({ page, browser }) => {
  await ownerWithTrips(page);

  // Preview, then submit: SEED-2025, 1,000 km → 100 kg gross, 5 kg buffer, 95 kg to the owner.
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Credits' }).click();
  await hydrated(page);
  await page.getByLabel('From').fill('2026-03-01');
  await page.getByLabel('To').fill('2026-03-31');
  await page.getByRole('button', { name: 'Preview' }).click();
  await expect(page.getByTestId('preview').getByTestId('gross-buffer-net')).toHaveText('100 / 5 / 95 kg');
  await expect(page.getByTestId('request-trips')).toHaveText('10');
  await hydrated(page);
  await page.getByRole('button', { name: 'Submit for verification' }).click();
  await expect(page.getByRole('heading', { name: /^Request REQ-\d{6}$/ })).toBeVisible();
  const number = (await page.getByRole('heading', { name: /^Request REQ-/ }).textContent())!.replace('Request ', '');
  await expect(page.getByTestId('request-status')).toHaveText('pending');

  // The verifier finds it in the queue and approves it.
  const cva = await signedIn(browser, demo.cva);
  await gotoHydrated(cva, '/cva?sort=newest');
  await cva.getByRole('link', { name: number }).click();
  await expect(cva.getByRole('heading', { name: `Request ${number}` })).toBeVisible();
  await expect(cva.locator('table.steps')).toContainText('1,000 km × 120 g/km');
  await expect(cva.locator('figure.chart svg')).toBeAttached();
  await hydrated(cva);
  await cva.getByRole('button', { name: 'Approve', exact: true }).click();
  await expect(cva.getByTestId('request-status')).toHaveText('approved');
  await expect(cva.getByTestId('serials')).toHaveText(/^EVCX-VN-2026-\d{9}-\d{9}$/);

  // The owner sees the decision, the credits and their serials.
  await page.reload();
  await expect(page.getByTestId('request-status')).toHaveText('approved');
  await gotoHydrated(page, '/wallet');
  await expect(page.getByTestId('available')).toHaveText('0.095 t');
  await expect(page.getByTestId('movements')).toContainText('issuance');

  // Retire 20 kg for a beneficiary: the certificate page shows it, the wallet follows.
  await page.getByLabel('Quantity (kg)').fill('200');
  await page.getByLabel('Beneficiary').fill('Hanoi Green School');
  await page.getByLabel('Reason').fill('School bus offset 2026');
  await page.getByRole('button', { name: 'Retire', exact: true }).click();
  await expect(page.locator('#field-quantity_kg-error')).toHaveText('You have 95 kg available to retire.');
  await page.getByLabel('Quantity (kg)').fill('20');
  await page.getByRole('button', { name: 'Retire', exact: true }).click();
  await expect(page.getByTestId('certificate-number')).toHaveText(/^CERT-\d{4}-\d{6}$/);
  const certificate = (await page.getByTestId('certificate-number').textContent())!;
  await expect(page.getByTestId('certificate-quantity')).toHaveText('0.020 t CO₂e (20 kg)');
  await gotoHydrated(page, '/wallet');
  await expect(page.getByTestId('available')).toHaveText('0.075 t');
  await expect(page.getByTestId('retired')).toHaveText('0.020 t');

  // Anyone, signed out, can verify it and download the PDF.
  const visitor = await (await browser.newContext()).newPage();
  await visitor.goto(`/verify/${certificate}`);
  await expect(visitor.getByTestId('certificate-beneficiary')).toHaveText('Hanoi Green School');
  await expect(visitor.getByTestId('certificate-status')).toContainText('Valid');
  const pdf = await visitor.request.get(`/certificates/${certificate}.pdf`);
  expect(pdf.status()).toBe(200);
  expect(pdf.headers()['content-type']).toBe('application/pdf');
  expect((await pdf.body()).subarray(0, 5).toString()).toBe('%PDF-');
});
