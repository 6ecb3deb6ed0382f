import { test, expect } from '@playwright/test';
import { demo, gotoHydrated, hydrated, login, mailed, mailedLink, signUp, uniqueEmail } from './helpers';

test('sign up, sign out, sign in again and edit the profile', async ({ page }) => {
  const email = uniqueEmail('owner');
  await gotoHydrated(page, '/signup');

  // A bad form first: every problem is named next to its field, nothing is lost.
  await page.getByLabel('Full name').fill('Lê Minh');
  await page.getByLabel('E-mail').fill('name@example');
  await page.getByLabel('Phone').fill('12');
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page.getByText('That does not look like an e-mail address')).toBeVisible();
  await expect(page.getByText('A phone number has 7 to 15 digits (this one has 2).')).toBeVisible();
  await expect(page.getByLabel('Full name')).toHaveValue('Lê Minh');

  await page.getByLabel('E-mail').fill(email);
  await page.getByLabel('Phone').fill('+84 90 555 1234');
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page.getByTestId('sign-up-sent')).toContainText('Check your e-mail');

  // The mailed link opens the page where the password is chosen; a weak one is named.
  const link = await mailedLink(email, '/signup/confirm');
  await gotoHydrated(page, link);
  await expect(page.getByTestId('sign-up-email')).toHaveText(email);
  await page.getByLabel('Password', { exact: true }).fill('short');
  await page.getByLabel('Repeat the password').fill('short');
  await page.getByRole('button', { name: 'Create my account' }).click();
  await expect(page.getByText('Use at least 10 characters (you typed 5).')).toBeVisible();
  await page.getByLabel('Password', { exact: true }).fill('charging at night');
  await page.getByLabel('Repeat the password').fill('charging at night');
  await page.getByRole('button', { name: 'Create my account' }).click();

  await expect(page.getByRole('heading', { name: 'Your EV owner home' })).toBeVisible();
  await expect(page.getByRole('link', { name: /Lê Minh/ })).toBeVisible();

  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login/);
  await expect(page.getByRole('link', { name: 'Sign in' })).toBeVisible();

  // Wrong password: a clear error, still on the login page.
  await hydrated(page);
  await page.getByLabel('E-mail').fill(email);
  await page.getByLabel('Password').fill('not my password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toContainText('e-mail address or password is not correct');

  await page.getByLabel('Password').fill('charging at night');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Your EV owner home' })).toBeVisible();

  await page.getByRole('link', { name: /Lê Minh/ }).click();
  await expect(page.getByRole('heading', { name: 'Your profile' })).toBeVisible();
  await hydrated(page);
  await page.getByLabel('Full name').fill('Lê Minh Châu');
  await page.getByLabel('Phone').fill('+84 90 555 9999');
  await page.getByRole('button', { name: 'Save details' }).click();
  await expect(page.getByText('Your details are saved.')).toBeVisible();
  await expect(page.getByRole('link', { name: /Lê Minh Châu/ })).toBeVisible();

  // The change is stored, not only shown.
  await page.reload();
  await expect(page.getByLabel('Full name')).toHaveValue('Lê Minh Châu');
  await expect(page.getByLabel('Phone')).toHaveValue('+84905559999');
});

test('signing up with an address that has an account answers the same and mails its owner', async ({ page }) => {
  const email = uniqueEmail('twice');
  await signUp(page, { role: 'buyer', name: 'Trần Hai', email, phone: '+84 90 555 2222', password: 'signing up twice' });
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login/);

  await gotoHydrated(page, '/signup');
  await page.getByLabel('Full name').fill('Someone Else');
  await page.getByLabel('E-mail').fill(email);
  await page.getByLabel('Phone').fill('+84 90 555 3333');
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page.getByTestId('sign-up-sent')).toContainText('Check your e-mail');
  // The owner is told, with the way back in; no second account can be made.
  const notice = await mailed(email, 'You already have an EV Carbon Exchange account');
  expect(notice).toContain('/forgot-password');
  expect(notice).not.toContain('token=');
  await gotoHydrated(page, await mailedLink(email, '/signup/confirm'));
  await expect(page.getByRole('alert')).toContainText('invalid, already used or expired');
  await expect(page.getByRole('link', { name: 'Sign up again' })).toBeVisible();
});

test('each demo account lands on its role home', async ({ page }) => {
  for (const account of Object.values(demo)) {
    await login(page, account.email, account.password);
    await expect(page.getByRole('heading', { name: account.home })).toBeVisible();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await expect(page).toHaveURL(/\/login/);
  }
});

test('the login page lists the demo accounts in development mode', async ({ page }) => {
  await page.goto('/login');
  const table = page.getByRole('complementary', { name: 'Demo accounts' });
  await expect(table).toContainText(demo.buyer.email);
  await expect(table).toContainText(demo.buyer.password);
});

test('a visitor asking for a protected page is sent to sign in and back', async ({ page }) => {
  await page.goto('/profile');
  await expect(page).toHaveURL(/\/login\?next=%2Fprofile|\/login\?next=\/profile/);
  await hydrated(page);
  await page.getByLabel('E-mail').fill(demo.cva.email);
  await page.getByLabel('Password').fill(demo.cva.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Your profile' })).toBeVisible();
});

test('unknown addresses get the 404 page', async ({ page }) => {
  const response = await page.goto('/no/such/page');
  expect(response?.status()).toBe(404);
  await expect(page.getByRole('heading', { name: 'Page not found' })).toBeVisible();
});
