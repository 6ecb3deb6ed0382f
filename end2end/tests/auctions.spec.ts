import { test, expect, Browser, Page } from '@playwright/test';
import { demo, gotoHydrated, login } from './helpers';

async function signedIn(browser: Browser, who: { email: string; password: string }): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  await login(page, who.email, who.password);
  return page;
}

/** The admin's soft-close window, for auctions listed afterwards. */
async function setSoftClose(admin: Page, seconds: string): Promise<void> {
  await gotoHydrated(admin, '/admin/settings');
  await admin.getByLabel('Auction soft close (seconds)').fill(seconds);
  await admin.getByRole('button', { name: 'Save' }).click();
  await expect(admin.getByLabel('Auction soft close (seconds)')).toHaveValue(seconds);
}

/** Opens the auction and waits until its live stream is connected. */
async function watchLive(page: Page, number: string): Promise<void> {
  await gotoHydrated(page, `/auctions/${number}`);
  await expect(page.locator('[data-live="on"]')).toBeAttached();
}

async function bid(page: Page, max: string): Promise<void> {
  await page.getByLabel('Your maximum per tonne').fill(max);
  await page.getByRole('button', { name: 'Place bid' }).click();
}

test('two buyers bid against each other live while the seller watches; a late bid extends the end; the winner pays', async ({ browser }) => {
  test.setTimeout(240_000);
  const admin = await signedIn(browser, demo.admin);
  await setSoftClose(admin, '20');

  // The seller auctions a small lot for one minute.
  const seller = await signedIn(browser, demo.owner);
  await gotoHydrated(seller, '/sell');
  const form = seller.getByTestId('create-auction');
  await form.getByLabel('Lot (t)').fill('0.02');
  await form.getByLabel('Starting price').fill('100000');
  await form.getByLabel('Runs for').selectOption('1');
  await seller.getByRole('button', { name: 'Start the auction' }).click();
  await expect(seller).toHaveURL(/\/auctions\/LST-\d{6}$/);
  const number = seller.url().split('/').pop()!;
  await watchLive(seller, number);
  await expect(seller.getByText('This is your lot')).toBeVisible();
  await expect(seller.getByTestId('high-bid')).toHaveText('100.000 ₫ per t (starting price, no bids yet)');

  const a = await signedIn(browser, demo.buyer);
  const b = await signedIn(browser, demo.roaster);
  await watchLive(a, number);
  await watchLive(b, number);

  // The form answers as you type, with the server's rules.
  await a.getByLabel('Your maximum per tonne').fill('90000');
  await expect(a.getByTestId('bid-feedback')).toHaveText('Bid at least 100.000 ₫ per tonne.');
  await a.getByLabel('Your maximum per tonne').fill('150.000');
  await expect(a.getByTestId('bid-feedback')).toContainText('Read as 150.000 ₫ per tonne: commits up to 3.075 ₫');

  await bid(a, '150000');
  await expect(a.getByTestId('my-standing')).toContainText('You are the highest bidder');
  // Seen live by the seller and the other buyer, without reloading.
  await expect(seller.getByTestId('high-bid')).toHaveText('100.000 ₫ per t');
  await expect(seller.getByTestId('leader')).toHaveText('Bidder 1');
  await expect(b.getByTestId('bid-count')).toHaveText('1 from 1 bidder');

  // B bids below A's maximum: A's proxy answers one increment above.
  await bid(b, '140000');
  await expect(b.getByTestId('my-standing')).toContainText('You have been outbid');
  await expect(seller.getByTestId('high-bid')).toHaveText('145.000 ₫ per t');
  await expect(a.getByTestId('leader')).toHaveText('Bidder 1 (you)');

  // B raises: B leads one increment above A's maximum, and A is told at once.
  await bid(b, '200000');
  await expect(b.getByTestId('my-standing')).toContainText('You are the highest bidder');
  await expect(a.getByTestId('my-standing')).toContainText('You have been outbid');
  await expect(a.getByTestId('leader')).toHaveText('Bidder 2');
  await expect(seller.getByTestId('high-bid')).toHaveText('155.000 ₫ per t');
  await expect(seller.getByTestId('bid-history').locator('tbody tr')).toHaveCount(3);

  // In the last 20 seconds, A's bid moves the end 20 seconds later, for everyone.
  await expect
    .poll(async () => Number(await a.getByTestId('time-left').getAttribute('data-seconds-left')), { timeout: 90_000 })
    .toBeLessThan(17);
  // A also asks for the lot to be retired at once if they win.
  await a.getByTestId('bid-form').getByLabel(/If I win, retire/).check();
  await a.getByTestId('bid-form').getByLabel('Beneficiary (if retiring)').fill('Trường Tiểu học Xanh');
  await a.getByTestId('bid-form').getByLabel('Reason (if retiring)').fill('Offsetting the school run');
  await bid(a, '250000');
  await expect(seller.getByTestId('ends-at')).toContainText('extended 1 time by late bids');
  await expect(b.getByTestId('ends-at')).toContainText('extended 1 time by late bids');
  await expect(seller.getByTestId('leader')).toHaveText('Bidder 1');
  await expect(seller.getByTestId('high-bid')).toHaveText('205.000 ₫ per t');
  await expect(b.getByTestId('my-standing')).toContainText('You have been outbid');

  // The auction closes by itself; everyone sees the result live; the winner has the order.
  await expect(seller.getByTestId('auction-status')).toHaveText('Sold to Bidder 1 at 205.000 ₫ per t', { timeout: 60_000 });
  await expect(a.getByTestId('my-standing')).toContainText('You won this auction.');
  await expect(b.getByTestId('my-standing')).toContainText('This auction has ended');
  await gotoHydrated(a, `/auctions/${number}`);
  await a.getByTestId('auction-order').getByRole('link').click();
  await expect(a.getByRole('heading', { name: /^Order ORD-\d{6}$/ })).toBeVisible();
  await expect(a.getByTestId('order-status')).toContainText('Completed');
  await expect(a.getByRole('link', { name: /^certificate CERT-\d{4}-\d{6}$/ })).toBeVisible();

  // The auctions page: the ended auction, and the buyers' parts in it.
  await gotoHydrated(b, '/auctions?filter=my_bids');
  await expect(b.getByTestId(`auction-${number}`)).toContainText('Not won');
  await gotoHydrated(a, '/auctions?filter=my_bids');
  await expect(a.getByTestId(`auction-${number}`)).toContainText('Won');

  await setSoftClose(admin, '120');
});

test('the auctions page counts down live and filters', async ({ page }) => {
  await login(page, demo.buyer.email, demo.buyer.password);
  await gotoHydrated(page, '/auctions');
  const rows = page.getByTestId('auctions').locator('tbody tr');
  await expect(rows.first()).toBeVisible();
  const cell = rows.first().locator('.countdown');
  const first = Number(await cell.getAttribute('data-seconds-left'));
  await expect.poll(async () => Number(await cell.getAttribute('data-seconds-left'))).toBeLessThan(first);
  await page.getByRole('link', { name: 'Ending within the hour' }).click();
  await expect(page).toHaveURL(/filter=ending_soon/);
  await page.getByRole('link', { name: 'My bids' }).click();
  await expect(page).toHaveURL(/filter=my_bids/);
  await expect(page.getByTestId('auctions')).toContainText(/Leading|Outbid|Won/);
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('a buyer bids with a plain HTML form, a too-low bid first', async ({ page }) => {
    await page.goto('/login');
    await page.getByLabel('E-mail').fill(demo.buyer.email);
    await page.getByLabel('Password').fill(demo.buyer.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('heading', { name: demo.buyer.home })).toBeVisible();

    // The demo's days-long auction, led by the other demo buyer.
    await page.goto('/auctions');
    await page.getByTestId('auctions').locator('tbody tr', { hasText: 'Lê Hoàng Nam' }).getByRole('link').first().click();
    await expect(page.getByTestId('leader')).toHaveText(/^Bidder \d+$/);
    await page.getByLabel('Your maximum per tonne').fill('1000');
    await page.getByRole('button', { name: 'Place bid' }).click();
    await expect(page.getByText(/Bid at least [0-9.]+ ₫ per tonne\./)).toBeVisible();

    // Far above the price suggestion and where the auction stands: asked first, then bid anyway.
    await page.getByLabel('Your maximum per tonne').fill('900.000');
    await page.getByRole('button', { name: 'Place bid' }).click();
    const confirm = page.getByTestId('confirm-bid');
    await expect(confirm).toContainText('A maximum of 900.000 ₫ per tonne is more than double the suggested price');
    await expect(page.getByTestId('my-standing')).toHaveCount(0);
    await confirm.getByRole('button', { name: 'Bid 900.000 ₫ per t anyway' }).click();
    await expect(page.getByTestId('my-standing')).toContainText('You are the highest bidder (your maximum: 900.000 ₫ per t).');
    await expect(page.getByTestId('leader')).toHaveText(/\(you\)$/);
  });
});
