import { test, expect, Browser, Page } from '@playwright/test';
import { demo, gotoHydrated, hydrated, login, signUp, uniqueEmail } from './helpers';

async function signedIn(browser: Browser, who: { email: string; password: string }): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  await login(page, who.email, who.password);
  return page;
}

test('a buyer disputes an order; an admin refunds it and the buyer sees it live', async ({ page, browser }) => {
  // A fresh buyer with money buys 10 kg from a fixed-price listing.
  await signUp(page, { role: 'buyer', name: 'Dispute Tester', email: uniqueEmail('dispute'), phone: '+84 90 333 5555', password: 'fair is fair 2026' });
  await gotoHydrated(page, '/money');
  await page.getByTestId('top-up').getByLabel('Amount').fill('100000');
  await page.getByRole('button', { name: 'Continue to payment' }).click();
  await page.getByRole('button', { name: /^Pay / }).click();
  await expect(page.getByTestId('payment-status')).toContainText('succeeded');

  await gotoHydrated(page, '/market?sort=price&type=fixed');
  await page.getByTestId('listings').locator('tbody tr').first().getByRole('link').click();
  await hydrated(page);
  await page.getByLabel('Quantity (t)').fill('0.010');
  await page.getByRole('button', { name: 'Buy' }).click();
  await expect(page.getByTestId('order-status')).toContainText('Completed');
  const order = (await page.getByRole('heading', { name: /^Order / }).textContent())!.replace('Order ', '');
  const paid = (await page.getByTestId('buyer-pays').textContent())!;
  await gotoHydrated(page, '/money');
  const afterPurchase = (await page.getByTestId('money-available').textContent())!;

  // The top-up was announced under the bell; the buyer reads it.
  await gotoHydrated(page, '/notifications');
  await expect(page.getByTestId('inbox')).toContainText('Payment PAY-');
  await expect(page.getByTestId('bell-count')).toHaveText('1');
  await page.getByRole('button', { name: 'Mark all read' }).click();
  await expect(page.getByTestId('unread-summary')).toHaveText('Nothing unread.');
  await expect(page.getByTestId('bell-count')).toHaveCount(0);

  // The buyer opens a dispute from the order page.
  await gotoHydrated(page, `/orders/${order}`);
  await page.getByText('Something wrong with this order? Open a dispute').click();
  await page.getByLabel('What went wrong').fill('The serials do not match the issuance evidence.');
  await page.getByRole('button', { name: 'Open the dispute' }).click();
  await expect(page.getByTestId('dispute-status')).toHaveText('Open: an administrator will decide it.');
  const dispute = (await page.getByTestId('dispute').getByRole('heading').textContent())!.replace('Dispute ', '');

  // The admin refunds it while the buyer watches the order page.
  const admin = await signedIn(browser, demo.admin);
  await gotoHydrated(admin, '/admin/disputes');
  const card = admin.locator('.dispute-card', { hasText: dispute });
  await expect(card).toContainText('The serials do not match the issuance evidence.');
  await card.getByRole('radio', { name: /Refund:/ }).check();
  await card.getByLabel('Note to both parties (required to reject)').fill('The evidence was incomplete.');
  await card.getByRole('button', { name: 'Decide' }).click();
  await expect(card).toHaveCount(0);
  await gotoHydrated(admin, '/admin/disputes?status=refunded');
  await expect(admin.getByTestId('dispute-queue')).toContainText(dispute);

  // Live on the buyer's open page: the bell, the notification, the refunded order.
  await expect(page.getByTestId('bell-count')).toHaveText('1');
  await expect(page.getByTestId('toast')).toContainText(`Dispute ${dispute}: refunded`);
  await expect(page.getByTestId('toast')).toContainText(`${paid} is back in your wallet`);
  await expect(page.getByTestId('order-status')).toHaveText(`Refunded after dispute ${dispute}.`);
  await expect(page.getByTestId('dispute-status')).toContainText(`Refunded: ${paid} back to the buyer`);

  // The money is back; the notification is in the inbox and opens the order.
  await gotoHydrated(page, '/money');
  // Amounts as the page writes them: "1.896,25 ₫".
  const vnd = (s: string) => Number(s.replace(/[^0-9,]/g, '').replace(',', '.'));
  const write = (n: number) => {
    const [whole, cents] = n.toFixed(2).split('.');
    return `${Number(whole).toLocaleString('de-DE')}${cents === '00' ? '' : ',' + cents} ₫`;
  };
  await expect(page.getByTestId('money-available')).toHaveText(write(vnd(afterPurchase) + vnd(paid)));
  await gotoHydrated(page, '/notifications');
  await expect(page.getByTestId('unread-summary')).toHaveText('1 unread notification.');
  await page.getByTestId('inbox').getByRole('button', { name: `Dispute ${dispute}: refunded` }).click();
  await expect(page).toHaveURL(new RegExp(`/orders/${order}$`));
  await expect(page.getByTestId('bell-count')).toHaveCount(0);

  // The admin's reconciliation stays green.
  await gotoHydrated(admin, '/admin/money');
  await expect(admin.getByTestId('reconciliation')).toContainText('Reconciled at');
  await expect(admin.getByTestId('money-moves')).toContainText(order);
});
