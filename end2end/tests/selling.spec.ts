import { test, expect, Browser, Page } from '@playwright/test';
import { demo, gotoHydrated, login, signUp, uniqueEmail } from './helpers';

async function signedIn(browser: Browser, who: { email: string; password: string }): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  await login(page, who.email, who.password);
  return page;
}

test('an owner lists credits, changes the price, and a buyer finds the listing', async ({ page, browser }) => {
  await login(page, demo.owner.email, demo.owner.password);
  await gotoHydrated(page, '/sell');
  const form = page.getByTestId('create-listing');
  await form.getByLabel('Quantity (t)').fill('5');
  await form.getByLabel('Price per tonne').fill('199000');
  await page.getByRole('button', { name: 'List for sale' }).click();
  await expect(form.getByText(/You have [0-9.]+ t of VN \d{4} credits available to list\./)).toBeVisible();

  await form.getByLabel('Quantity (t)').fill('0.005');
  await form.getByLabel('Description (optional)').fill('Five kilograms for the end-to-end test');
  await page.getByRole('button', { name: 'List for sale' }).click();
  const row = page.getByTestId('my-listings').locator('tbody tr').first();
  await expect(row).toContainText('199.000 ₫');
  await expect(row).toContainText('0.005 t');
  const number = (await row.getByRole('link').textContent())!;

  await row.getByLabel(`New price for ${number}`).fill('205000');
  await row.getByRole('button', { name: 'Set price' }).click();
  await expect(page.getByTestId('my-listings').locator('tbody tr').first()).toContainText('205.000 ₫');

  const buyer = await signedIn(browser, demo.buyer);
  await gotoHydrated(buyer, `/market?q=${number}`);
  await expect(buyer.getByTestId('market-count')).toHaveText('1 listing');
  await buyer.getByRole('link', { name: number }).click();
  await expect(buyer.getByTestId('listing-price')).toHaveText('205.000 ₫ per t');
  await expect(buyer.getByTestId('evidence')).toContainText('REQ-');

  // Withdrawn: the credits return and the listing is no longer for sale.
  await page.getByTestId('my-listings').locator('tbody tr').first().getByRole('button', { name: 'Withdraw' }).click();
  await expect(page.getByTestId('my-listings').locator('tbody tr').first()).toContainText('cancelled');
  await gotoHydrated(buyer, `/market/${number}`);
  await expect(buyer.getByTestId('listing-status')).toHaveText('Cancelled');
});

test('prices typed as the site shows them read as shown; a price far from the suggestion is confirmed first', async ({ page }) => {
  await login(page, demo.owner.email, demo.owner.password);
  await gotoHydrated(page, '/sell');
  const form = page.getByTestId('create-listing');
  // Each field says what it reads as, while you type.
  await form.getByLabel('Quantity (t)').fill('0,003');
  await expect(form.getByTestId('field-quantity-reads')).toHaveText('Read as 0.003 t (3 kg).');
  await form.getByLabel('Price per tonne').fill('215.5');
  await expect(form.getByTestId('field-price-reads')).toHaveText('“215.5” is not a whole amount of đồng: did you mean 215.500 ₫ or 215 ₫?');
  await form.getByLabel('Price per tonne').fill('215.000');
  await expect(form.getByTestId('field-price-reads')).toHaveText('Read as 215.000 ₫ per tonne.');
  // 215 ₫ next to a suggestion in the hundreds of thousands: asked first.
  await form.getByLabel('Price per tonne').fill('215');
  await expect(form.getByTestId('field-price-reads')).toHaveText('Read as 215 ₫ per tonne.');
  await page.getByRole('button', { name: 'List for sale' }).click();
  const confirm = page.getByTestId('confirm-listing-price');
  await expect(confirm).toContainText(/^215 ₫ per tonne is less than half the suggested price of [0-9.]+ ₫ for VN \d{4} credits/);
  await confirm.getByRole('button', { name: 'List at 215 ₫ per t anyway' }).click();
  const row = page.getByTestId('my-listings').locator('tbody tr').first();
  await expect(row).toContainText('215 ₫');
  await expect(row).toContainText('0.003 t');
  await expect(page.getByTestId('confirm-listing-price')).toHaveCount(0);
  await row.getByRole('button', { name: 'Withdraw' }).click();
  await expect(page.getByTestId('my-listings').locator('tbody tr').first()).toContainText('cancelled');
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('a price far above the suggestion is listed with plain HTML forms, once confirmed', async ({ page }) => {
    await page.goto('/login');
    await page.getByLabel('E-mail').fill(demo.owner.email);
    await page.getByLabel('Password').fill(demo.owner.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('heading', { name: demo.owner.home })).toBeVisible();

    await page.goto('/sell');
    const form = page.getByTestId('create-listing');
    await form.getByLabel('Quantity (t)').fill('0,002');
    await form.getByLabel('Price per tonne').fill('2.150.000 ₫');
    await page.getByRole('button', { name: 'List for sale' }).click();
    const confirm = page.getByTestId('confirm-listing-price');
    await expect(confirm).toContainText(/^2\.150\.000 ₫ per tonne is more than double the suggested price/);
    await confirm.getByRole('button', { name: 'List at 2.150.000 ₫ per t anyway' }).click();
    const row = page.getByTestId('my-listings').locator('tbody tr').first();
    await expect(row).toContainText('2.150.000 ₫');
    await expect(row).toContainText('0.002 t');
    await row.getByRole('button', { name: 'Withdraw' }).click();
    await expect(page.getByTestId('my-listings').locator('tbody tr').first()).toContainText('cancelled');
  });
});

test('a withdrawal is held, then an admin pays it out', async ({ page, browser }) => {
  const email = uniqueEmail('payout');
  await signUp(page, { role: 'buyer', name: 'Payout Tester', email: email, phone: '+84 90 222 4444', password: 'money back please' });

  await gotoHydrated(page, '/money');
  await page.getByTestId('top-up').getByLabel('Amount').fill('200000');
  await page.getByRole('button', { name: 'Continue to payment' }).click();
  await page.getByRole('button', { name: /^Pay / }).click();
  await expect(page.getByTestId('payment-status')).toContainText('succeeded');

  // A new account's identity is not checked yet: withdrawals wait for an admin to check it.
  await expect(page.getByTestId('kyc-needed')).toBeVisible();
  const admin = await signedIn(browser, demo.admin);
  await gotoHydrated(admin, `/admin/users?q=${encodeURIComponent(email)}`);
  await admin.getByRole('button', { name: `Mark checked the identity of ${email}` }).click();
  await expect(admin.locator(`tr[data-email="${email}"]`)).toContainText('Checked');
  await gotoHydrated(page, '/money');
  await expect(page.getByTestId('kyc-needed')).toHaveCount(0);

  const form = page.getByTestId('withdraw');
  await form.getByLabel('Amount').fill('100000');
  await form.getByLabel('Bank').fill('Vietcombank');
  await form.getByLabel('Account holder').fill('Payout Tester');
  await form.getByLabel('Account number').fill('0071 0000 12345');
  await page.getByRole('button', { name: 'Request withdrawal' }).click();
  // 100,000 + the 11,000 fee are held until an admin decides.
  await expect(page.getByTestId('money-held')).toHaveText('111.000 ₫');
  await expect(page.getByTestId('money-available')).toHaveText('89.000 ₫');
  const number = (await page.getByTestId('withdrawals').locator('tbody tr td').first().textContent())!;

  await gotoHydrated(admin, '/admin/withdrawals');
  await admin.getByRole('button', { name: `Pay ${number}` }).click();
  // Paid: it leaves the pending queue (wait for that before leaving the page).
  await expect(admin.getByRole('button', { name: `Pay ${number}` })).toHaveCount(0);
  await gotoHydrated(admin, '/admin/withdrawals?status=paid');
  await expect(admin.getByTestId('withdrawal-queue')).toContainText(number);
  await expect(admin.getByTestId('withdrawal-queue')).toContainText('0071000012345');

  await gotoHydrated(page, '/money');
  await expect(page.getByTestId('money-held')).toHaveText('0 ₫');
  await expect(page.getByTestId('withdrawals').locator('tbody tr').first()).toContainText('paid');
});
