// Reconnecting: the server restarts under an open conversation; the connection badge shows
// the connection lost, then live again, and the message the customer sent meanwhile appears
// without a reload (the feeds resume after the last event they saw).
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { check, eventually, newPage, run, screenshot, signIn } from './harness.mjs';

await run(async (browser, config) => {
  const page = await newPage(browser, config);
  await signIn(page, config.agent.email, config.agent.password);
  const badge = page.getByTestId('connection');
  await badge.getByText('Live').waitFor({ timeout: 10_000 });
  await page.locator('[data-testid=ticket-list] a.ticket', { hasText: 'My order has not shipped' }).click();
  await page.getByTestId('timeline').getByText('My order has not shipped').waitFor();
  // Marks this page: a reload would lose it.
  await page.evaluate(() => (window.samePage = true));

  mkdirSync(config.screenshots, { recursive: true });
  writeFileSync(join(config.screenshots, 'restart-now'), '');
  await badge.getByText('Reconnecting…').waitFor({ timeout: 20_000 });
  await screenshot(page, config, 'reconnecting');
  writeFileSync(join(config.screenshots, 'saw-reconnecting'), '');
  await eventually(async () => existsSync(join(config.screenshots, 'restarted')), 60_000, 'the restart');
  await badge.getByText('Live').waitFor({ timeout: 30_000 });
  await page.getByTestId('timeline').getByText('Any news? It has been a week.').waitFor({ timeout: 20_000 });
  await page.locator('[data-testid=ticket-list] a.ticket', { hasText: 'Any news?' }).waitFor({ timeout: 20_000 });
  check((await page.evaluate(() => window.samePage)) === true, 'the page was not reloaded');
  await screenshot(page, config, 'reconnected');
  return {};
});
