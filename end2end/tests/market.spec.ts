import { test, expect, Page } from '@playwright/test';
import { demo, gotoHydrated, hydrated, login, signUp, uniqueEmail } from './helpers';

/** A fresh buyer, signed in. */
async function newBuyer(page: Page, name: string): Promise<void> {
  await signUp(page, { role: 'buyer', name: name, email: uniqueEmail('market'), phone: '+84 28 3822 1111', password: 'offsets for the fleet' });
}

/** Tops the wallet up through the sandbox gateway's own page. */
async function topUp(page: Page, amount: string): Promise<void> {
  await gotoHydrated(page, '/money');
  await page.getByTestId('top-up').getByLabel('Amount').fill(amount);
  await page.getByRole('button', { name: 'Continue to payment' }).click();
  await expect(page.getByRole('heading', { name: /^Pay / })).toBeVisible();
  await expect(page.getByText('test gateway')).toBeVisible();
  await page.getByRole('button', { name: /^Pay / }).click();
  await expect(page.getByTestId('payment-status')).toContainText('succeeded');
}

test('a buyer tops up, searches, buys part of a listing, gets the invoice and retires on purchase', async ({ page }) => {
  await newBuyer(page, 'Công ty Vận tải Xanh');
  await topUp(page, '100,000');
  await expect(page.getByTestId('money-available')).toHaveText('100.000 ₫');

  // Search with filters; the query lives in the URL.
  await gotoHydrated(page, '/market');
  await page.getByLabel('Region').selectOption('VN');
  await page.getByLabel('Vintage').selectOption('2026');
  await page.getByLabel('Price to (per t)').fill('250000');
  await page.getByLabel('Sort').selectOption('price_desc');
  await page.getByRole('button', { name: 'Search' }).click();
  await expect(page).toHaveURL(/region=VN.*vintage=2026.*max_price=250000.*sort=price_desc/);
  const rows = page.getByTestId('listings').locator('tbody tr');
  await expect(rows.first()).toBeVisible();
  for (const price of await rows.locator('td:nth-child(4)').allTextContents()) {
    expect(Number(price.replace(/[^0-9]/g, ''))).toBeLessThanOrEqual(250000);
  }
  await rows.first().getByRole('link').click();
  await hydrated(page);
  await expect(page.getByRole('heading', { name: /^LST-\d{6} · VN 2026 credits$/ })).toBeVisible();
  const before = await page.getByTestId('listing-available').textContent();

  // Part of it: 10 kg (the largest minimum lot of the demo). The total is worked out as you type, with the fee.
  await page.getByLabel('Quantity (t)').fill('0.010');
  await expect(page.getByTestId('buy-estimate')).toContainText('to pay');
  await page.getByRole('button', { name: 'Buy' }).click();
  await expect(page.getByRole('heading', { name: /^Order ORD-\d{6}$/ })).toBeVisible();
  await expect(page.getByTestId('order-status')).toContainText('Completed');
  const order = (await page.getByRole('heading', { name: /^Order / }).textContent())!.replace('Order ', '');

  // The invoice is a real PDF.
  const download = page.waitForEvent('download');
  await page.getByRole('link', { name: /Download invoice INV-\d{6}/ }).click();
  const pdf = await download;
  const bytes = await (await pdf.createReadStream())!.toArray();
  expect(Buffer.concat(bytes).subarray(0, 4).toString()).toBe('%PDF');

  // The listing has 10 kg less; the buyer's orders list it.
  await page.getByRole('link', { name: /^LST-/ }).click();
  await hydrated(page);
  await expect(page.getByTestId('listing-available')).not.toHaveText(before!);
  await gotoHydrated(page, '/orders');
  await expect(page.getByTestId('orders')).toContainText(order);

  // Again, retiring at once for a beneficiary: the order links the certificate.
  await gotoHydrated(page, '/market?region=VN&vintage=2026&max_price=250000&sort=price_desc');
  await page.getByTestId('listings').locator('tbody tr').first().getByRole('link').click();
  await hydrated(page);
  await page.getByLabel('Quantity (t)').fill('0.012');
  await page.getByLabel('Retire these credits at once').check();
  await page.getByLabel('Beneficiary (if retiring)').fill('Công ty Vận tải Xanh');
  await page.getByLabel('Reason (if retiring)').fill('Offsetting November deliveries');
  await page.getByRole('button', { name: 'Buy' }).click();
  await expect(page.getByTestId('order-status')).toContainText('Completed');
  await page.getByRole('link', { name: /^certificate CERT-\d{4}-\d{6}$/ }).click();
  await expect(page.getByText('Offsetting November deliveries')).toBeVisible();
  await expect(page.getByText('Công ty Vận tải Xanh').first()).toBeVisible();
});

test('too much, and a wallet that does not cover it, are refused with the reason', async ({ page }) => {
  await newBuyer(page, 'Small Buyer Ltd');
  await gotoHydrated(page, '/market?sort=price&type=fixed');
  await page.getByTestId('listings').locator('tbody tr').first().getByRole('link').click();
  await hydrated(page);
  await page.getByLabel('Quantity (t)').fill('900');
  await expect(page.getByTestId('buy-estimate')).toContainText('left in this listing');
  await page.getByRole('button', { name: 'Buy' }).click();
  await expect(page.getByText(/Only \d+ kg are left in this listing\./).last()).toBeVisible();
  await page.getByLabel('Quantity (t)').fill('0.001');
  await page.getByRole('button', { name: 'Buy' }).click();
  await expect(page.getByRole('alert')).toContainText('your wallet does not cover it');
});

test('a price raised while the buyer looks is refused with the new price, then bought at it', async ({ page, browser }) => {
  // Two browsers, a sign-up and a top-up: more than the default minute on a busy machine.
  test.setTimeout(120_000);
  // A seller lists a few kilograms at 199.000 ₫.
  const seller = await (await browser.newContext()).newPage();
  await login(seller, demo.owner.email, demo.owner.password);
  await gotoHydrated(seller, '/sell');
  const form = seller.getByTestId('create-listing');
  await form.getByLabel('Quantity (t)').fill('0.004');
  await form.getByLabel('Price per tonne').fill('199.000');
  await seller.getByRole('button', { name: 'List for sale' }).click();
  const row = seller.getByTestId('my-listings').locator('tbody tr').first();
  await expect(row).toContainText('199.000 ₫');
  const number = (await row.getByRole('link').textContent())!;

  await newBuyer(page, 'Price Watcher Co');
  await topUp(page, '100.000');
  await gotoHydrated(page, `/market/${number}`);
  await expect(page.getByTestId('listing-price')).toHaveText('199.000 ₫ per t');
  await page.getByLabel('Quantity (t)').fill('0,001');
  await expect(page.getByTestId('buy-estimate')).toContainText('0.001 t at 199.000 ₫ per t');

  // Meanwhile the seller raises the price.
  await row.getByLabel(`New price for ${number}`).fill('210.000');
  await row.getByRole('button', { name: 'Set price' }).click();
  await expect(seller.getByTestId('my-listings').locator('tbody tr').first()).toContainText('210.000 ₫');

  // The buyer's click is refused, says the new price, and the page shows it.
  await page.getByRole('button', { name: 'Buy' }).click();
  await expect(page.getByText('The price changed from 199.000 ₫ to 210.000 ₫ per tonne since you opened the page; nothing was bought.')).toBeVisible();
  await expect(page.getByTestId('listing-price')).toHaveText('210.000 ₫ per t');
  await expect(page.getByTestId('listing-available')).toContainText('0.004 t of 0.004 t');
  // Bought at the price now shown.
  await page.getByLabel('Quantity (t)').fill('0.001');
  await page.getByRole('button', { name: 'Buy' }).click();
  await expect(page.getByRole('heading', { name: /^Order ORD-\d{6}$/ })).toBeVisible();

  await gotoHydrated(seller, '/sell');
  await seller.getByTestId('my-listings').locator('tbody tr').first().getByRole('button', { name: 'Withdraw' }).click();
  await expect(seller.getByTestId('my-listings').locator('tbody tr').first()).toContainText('cancelled');
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('a buyer tops up and buys with plain HTML forms', async ({ page }) => {
    const email = uniqueEmail('nojs-market');
    await signUp(page, { role: 'buyer', name: 'Plain Forms Buyer', email, phone: '+84 90 111 3333', password: 'plain html forms' }, false);

    await page.goto('/money');
    await page.getByTestId('top-up').getByLabel('Amount').fill('50000');
    await page.getByRole('button', { name: 'Continue to payment' }).click();
    await page.getByRole('button', { name: /^Pay / }).click();
    await expect(page.getByTestId('payment-status')).toContainText('succeeded');

    await page.goto('/market?sort=price&type=fixed');
    await page.getByTestId('listings').locator('tbody tr').first().getByRole('link').click();
    await page.getByLabel('Quantity (t)').fill('0.001');
    await page.getByRole('button', { name: 'Buy' }).click();
    await expect(page.getByRole('heading', { name: /^Order ORD-\d{6}$/ })).toBeVisible();
    await expect(page.getByTestId('order-status')).toContainText('Completed');
    await expect(page.getByTestId('buyer-pays')).toHaveText(/₫$/);
  });
});
