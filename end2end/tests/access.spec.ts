import { test, expect } from '@playwright/test';
import { demo, gotoHydrated, login, signUp, uniqueEmail } from './helpers';

test('a buyer opening the admin users page gets the 403 page', async ({ page }) => {
  await login(page, demo.buyer.email, demo.buyer.password);
  const response = await page.goto('/admin/users');
  expect(response?.status()).toBe(403);
  await expect(page.getByRole('heading', { name: '403 — No access' })).toBeVisible();
  await expect(page.getByRole('table')).toHaveCount(0);
  await expect(page.getByRole('link', { name: 'Users' })).toHaveCount(0);
});

test('an admin creates a CVA account and suspends a user, whose session ends at once', async ({ browser }) => {
  // A buyer signs up in one browser and stays signed in.
  const buyerContext = await browser.newContext();
  const buyer = await buyerContext.newPage();
  const buyerEmail = uniqueEmail('suspend-me');
  await signUp(buyer, { role: 'buyer', name: 'Soon Suspended', email: buyerEmail, phone: '0901234000', password: 'offsetting my flights' });

  // The admin, in another browser.
  const adminContext = await browser.newContext();
  const admin = await adminContext.newPage();
  await login(admin, demo.admin.email, demo.admin.password);
  await admin.getByRole('link', { name: 'Users', exact: true }).click();
  await expect(admin.getByRole('heading', { name: 'Users' })).toBeVisible();

  const cvaEmail = uniqueEmail('cva');
  await gotoHydrated(admin, '/admin/users');
  const create = admin.locator('section', { hasText: 'Create a CVA or admin account' });
  await create.getByLabel('Full name').fill('Phạm Quốc Bảo');
  await create.getByLabel('E-mail').fill(cvaEmail);
  await create.getByLabel('Phone').fill('+84 91 000 1111');
  await create.getByLabel('Role').selectOption('cva');
  await create.getByRole('button', { name: 'Create account' }).click();
  await expect(admin.getByText('The account is created and the invitation is on its way.')).toBeVisible();
  await expect(admin.locator(`tr[data-email="${cvaEmail}"]`)).toContainText('Verifier (CVA)');

  // Search finds the buyer; suspend them.
  await admin.getByLabel('Search').fill(buyerEmail);
  await admin.getByRole('button', { name: 'Search' }).click();
  await expect(admin.getByText('1 account found')).toBeVisible();
  const row = admin.locator(`tr[data-email="${buyerEmail}"]`);
  await row.getByRole('button', { name: 'Suspend', exact: true }).click();
  await expect(row.getByText('Suspended', { exact: true })).toBeVisible();

  // The buyer's very next request finds them signed out.
  await buyer.reload();
  await expect(buyer).toHaveURL(/\/login/);

  // And they cannot sign back in.
  await gotoHydrated(buyer, '/login');
  await buyer.getByLabel('E-mail').fill(buyerEmail);
  await buyer.getByLabel('Password').fill('offsetting my flights');
  await buyer.getByRole('button', { name: 'Sign in' }).click();
  await expect(buyer.getByRole('alert')).toContainText('This account is suspended');

  await buyerContext.close();
  await adminContext.close();
});
