// Silent refresh: with access tokens that live ten seconds, the panel renews its session in
// the background; the agent keeps working well past the first token's end (a customer
// message shows live, a reply goes out) and never sees the sign-in page.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { check, eventually, newPage, run, screenshot, signIn } from './harness.mjs';

await run(async (browser, config) => {
  const page = await newPage(browser, config);
  await signIn(page, config.agent.email, config.agent.password);
  await page.getByTestId('connection').getByText('Live').waitFor({ timeout: 10_000 });
  await page.evaluate(() => {
    window.sawSignIn = false;
    new MutationObserver(() => {
      if (document.querySelector('input[name=password]')) window.sawSignIn = true;
    }).observe(document.body, { childList: true, subtree: true });
  });
  const token = () => page.evaluate(() => JSON.parse(localStorage.getItem('ledgerdesk.session') ?? 'null')?.accessToken);
  const first = await token();
  await page.locator('[data-testid=ticket-list] a.ticket', { hasText: 'Is my parcel insured?' }).click();
  await page.getByRole('textbox', { name: 'Reply', exact: true }).waitFor();

  // Two renewals: past the first token's end (and its five seconds of grace).
  const seen = new Set([first]);
  await eventually(async () => {
    seen.add(await token());
    return seen.size >= 3;
  }, 40_000, 'two silent renewals');
  check(!seen.has(undefined) && !seen.has(null), 'the session was never dropped');
  mkdirSync(config.screenshots, { recursive: true });
  writeFileSync(join(config.screenshots, 'renewed-twice'), '');

  // The live view still works: the customer's new message appears without a reload.
  await page.getByTestId('timeline').getByText('Also, can you gift-wrap it?').waitFor({ timeout: 20_000 });
  await page.getByRole('textbox', { name: 'Reply', exact: true }).fill('Yes, it is insured.');
  await page.getByRole('button', { name: 'Send', exact: true }).click();
  await page.locator('[data-testid=message][data-delivery=delivered]').waitFor({ timeout: 30_000 });
  check((await page.evaluate(() => window.sawSignIn)) === false, 'the sign-in page never showed');
  await screenshot(page, config, 'after-renewals');
  return {};
});
