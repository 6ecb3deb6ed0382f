import { test, expect } from '@playwright/test';
import { demo, mailedLink, uniqueEmail } from './helpers';

test.use({ javaScriptEnabled: false });

test('sign up without JavaScript, with a mistake first', async ({ page }) => {
  const email = uniqueEmail('nojs');
  await page.goto('/signup');
  await page.getByLabel('A buyer').check();
  await page.getByLabel('Full name').fill('No Script Buyer');
  await page.getByLabel('E-mail').fill(email);
  await page.getByLabel('Phone').fill('12');
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page.getByText('A phone number has 7 to 15 digits (this one has 2).')).toBeVisible();

  await page.getByLabel('A buyer').check();
  await page.getByLabel('Full name').fill('No Script Buyer');
  await page.getByLabel('E-mail').fill(email);
  await page.getByLabel('Phone').fill('+84 90 111 2222');
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page.getByTestId('sign-up-sent')).toContainText('Check your e-mail');

  await page.goto(await mailedLink(email, '/signup/confirm'));
  await page.getByLabel('Password', { exact: true }).fill('plain html forms');
  await page.getByLabel('Repeat the password').fill('plain html form');
  await page.getByRole('button', { name: 'Create my account' }).click();
  await expect(page.getByText('The two passwords do not match.')).toBeVisible();

  await page.getByLabel('Password', { exact: true }).fill('plain html forms');
  await page.getByLabel('Repeat the password').fill('plain html forms');
  await page.getByRole('button', { name: 'Create my account' }).click();
  await expect(page.getByRole('heading', { name: 'Your buyer home' })).toBeVisible();
});

test('sign in without JavaScript', async ({ page }) => {
  await page.goto('/login');
  await page.getByLabel('E-mail').fill(demo.owner.email);
  await page.getByLabel('Password').fill('wrong password here');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toContainText('e-mail address or password is not correct');

  await page.getByLabel('E-mail').fill(demo.owner.email);
  await page.getByLabel('Password').fill(demo.owner.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Your EV owner home' })).toBeVisible();

  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login/);
});
