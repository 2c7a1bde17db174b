// Broadcasts: an agent (in Tokyo's time zone) writes a broadcast to all customers; the server
// refuses a bad link and the form keeps what was typed; fixed, it is started from the panel,
// paused (an auditor then sees it without any control), resumed, and its progress bar runs to
// the total, live; the recipients' table and the CSV report list every customer. A second
// broadcast to listed customers is scheduled at a local time and previewed. Screenshots of the list, the
// editor and the detail at desktop and phone sizes.
import { DESKTOP, PHONE, check, newPage, run, screenshot, signIn } from './harness.mjs';
import { readFile } from 'node:fs/promises';

/** A page in a time zone of its own (the harness's pages take the machine's). */
async function pageInZone(browser, config, viewport, timezoneId) {
  const context = await browser.newContext({ viewport, baseURL: config.base, timezoneId });
  const page = await context.newPage();
  const problems = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.problems = problems;
  return page;
}

const button = (page, name) => page.getByRole('button', { name, exact: true });
const badge = (page, state) => page.locator(`[data-testid=broadcast-state][data-state=${state}]`);

await run(async (browser, config) => {
  const total = config.customers.length;
  const writer = await pageInZone(browser, config, DESKTOP, 'Asia/Tokyo');
  await signIn(writer, config.agent.email, config.agent.password);
  await writer.getByTestId('connection').getByText('Live').waitFor({ timeout: 10_000 });
  await writer.getByRole('link', { name: 'Broadcasts' }).click();
  await writer.getByText('No broadcasts yet.').waitFor();

  // The editor: all customers (the default), a text, a row of a link and a callback button.
  await button(writer, 'New broadcast').click();
  await writer.getByRole('heading', { name: 'New broadcast' }).waitFor();
  check(await writer.getByRole('radio', { name: 'All customers' }).isChecked(), 'all customers by default');
  await writer.getByRole('textbox', { name: 'Text', exact: true }).fill(config.text);
  await button(writer, 'Add a row').click();
  await writer.getByLabel('Label 1.1').fill('Shop');
  await writer.getByLabel('Link (https://…) 1.1').fill('shop.example/sale');
  await button(writer, 'Add a button').click();
  await writer.getByLabel('Label 1.2').fill('Thanks');
  await writer.getByLabel('Kind 1.2').selectOption('callback');
  await writer.getByLabel('Callback data 1.2').fill('thanks');
  check(await writer.getByRole('checkbox', { name: /Unsubscribe/ }).isChecked(), 'the unsubscribe button is on by default');
  await screenshot(writer, config, 'editor');

  // The server refuses the link; its words show beside the form, and nothing typed is lost.
  await button(writer, 'Save draft').click();
  const errors = writer.getByTestId('editor-errors');
  await errors.getByText('https://').waitFor();
  check((await writer.getByRole('textbox', { name: 'Text', exact: true }).inputValue()) === config.text, 'the text is kept');
  check((await writer.getByLabel('Label 1.2').inputValue()) === 'Thanks', 'the buttons are kept');
  await screenshot(writer, config, 'editor-refused');
  await writer.getByLabel('Link (https://…) 1.1').fill('https://shop.example/sale');

  // Start now, after a confirmation: the broadcast's page with its live progress.
  await button(writer, 'Start now').click();
  await button(writer, 'Yes, start sending').click();
  await writer.waitForURL(/\/broadcasts\/[0-9a-f-]{36}$/);
  const broadcastId = writer.url().split('/').pop();
  await badge(writer, 'RUNNING').waitFor({ timeout: 15_000 });
  const bar = writer.getByTestId('progress-bar');
  await bar.waitFor();
  check(Number(await bar.getAttribute('aria-valuemax')) === total, `the bar counts ${total} recipients`);

  // Pause, confirmed: it stops short of the total.
  await button(writer, 'Pause').click();
  await button(writer, 'Yes, pause').click();
  await badge(writer, 'PAUSED').waitFor({ timeout: 10_000 });
  await button(writer, 'Resume').waitFor();
  await button(writer, 'Cancel broadcast').waitFor();
  check((await button(writer, 'Pause').count()) === 0, 'no pause while paused');
  await screenshot(writer, config, 'paused');

  // An auditor reads the paused broadcast and has no control over it.
  const auditor = await newPage(browser, config);
  await signIn(auditor, config.auditor.email, config.auditor.password);
  await auditor.getByRole('link', { name: 'Broadcasts' }).click();
  await auditor.getByTestId('broadcast-row').first().waitFor();
  check((await button(auditor, 'New broadcast').count()) === 0, 'an auditor cannot write a broadcast');
  await auditor.getByTestId('broadcast-row').first().click();
  await badge(auditor, 'PAUSED').waitFor();
  await auditor.getByText('read only').waitFor();
  await auditor.getByTestId('broadcast-message').getByText(config.text).waitFor();
  for (const control of ['Resume', 'Pause', 'Cancel broadcast', 'Start now', 'Save draft']) {
    check((await button(auditor, control).count()) === 0, `the auditor has no ${control}`);
  }
  await screenshot(auditor, config, 'auditor-detail');

  // Resumed: the bar reaches the total without a reload, and the broadcast completes.
  await button(writer, 'Resume').click();
  await badge(writer, 'RUNNING').waitFor({ timeout: 10_000 });
  await writer.locator('[data-testid=progress-bar]:not([aria-valuenow="0"])').waitFor({ timeout: 30_000 });
  await screenshot(writer, config, 'running');
  await writer.locator(`[data-testid=progress-bar][aria-valuenow="${total}"]`).waitFor({ timeout: 45_000 });
  await badge(writer, 'COMPLETED').waitFor({ timeout: 15_000 });
  await writer.getByTestId('counter-sent').getByText(String(total)).waitFor();
  await writer.getByTestId('progress-figure').getByText(`${total} of ${total}`).waitFor();
  check((await button(writer, 'Pause').count()) + (await button(writer, 'Cancel broadcast').count()) === 0, 'nothing to stop once completed');
  const rows = writer.locator('[data-testid=recipient][data-state=DELIVERED]');
  await writer.waitForFunction((n) => document.querySelectorAll('[data-testid=recipient][data-state=DELIVERED]').length === n, total, { timeout: 10_000 });
  check((await rows.count()) === total, `every recipient delivered: ${await rows.count()}`);
  await screenshot(writer, config, 'detail');

  // The CSV report, fetched with the agent's token and saved as a file.
  const [download] = await Promise.all([writer.waitForEvent('download'), button(writer, 'Download CSV').click()]);
  const csv = await readFile(await download.path(), 'utf8');
  const lines = csv.trim().split(/\r?\n/);
  check(lines[0].startsWith('customer_id,state'), `the report's header: ${lines[0]}`);
  check(lines.length === total + 1, `the report lists every recipient: ${lines.length - 1}`);
  for (const customer of config.customers) {
    check(lines.some((line) => line.startsWith(`${customer},delivered`)), `the report has ${customer} delivered`);
  }
  check(download.suggestedFilename().endsWith('.csv'), `a CSV file: ${download.suggestedFilename()}`);

  // A second broadcast to two listed customers, scheduled at 10:00 on a day in Tokyo.
  await writer.getByRole('link', { name: 'All broadcasts' }).click();
  await writer.getByTestId('broadcast-row').first().waitFor();
  await button(writer, 'New broadcast').click();
  await writer.getByRole('radio', { name: 'Listed customers' }).check();
  await writer.getByRole('textbox', { name: 'Telegram user ids' }).fill(config.customers.slice(0, 2).join('\n'));
  await writer.getByText('2 customers').waitFor();
  await writer.getByRole('textbox', { name: 'Text', exact: true }).fill('Our shop opens an hour later on Monday.');
  await writer.locator('input[type=datetime-local]').fill('2030-06-15T10:00');
  await button(writer, 'Save and schedule').click();
  await writer.waitForURL((url) => url.pathname !== `/broadcasts/${broadcastId}` && /\/broadcasts\/[0-9a-f-]{36}$/.test(url.pathname));
  const scheduledId = writer.url().split('/').pop();
  await badge(writer, 'SCHEDULED').waitFor({ timeout: 10_000 });
  check((await writer.locator('input[type=datetime-local]').inputValue()) === '2030-06-15T10:00', 'the editor shows the local time again');
  await button(writer, 'Cancel broadcast').waitFor();

  // A preview of it to one customer; it stays scheduled.
  await writer.getByRole('textbox', { name: 'Telegram user id', exact: true }).fill(String(config.customers[1]));
  await button(writer, 'Send a preview').click();
  await writer.getByRole('status').getByText(/The preview (was sent|is on its way)/).waitFor({ timeout: 15_000 });
  await badge(writer, 'SCHEDULED').waitFor({ timeout: 10_000 }).catch(async (error) => {
    const shown = await writer.getByTestId('broadcast-state').getAttribute('data-state');
    throw new Error(`${error.message}\nthe page shows ${shown}`);
  });

  await writer.getByRole('link', { name: 'All broadcasts' }).click();
  await writer.getByTestId('broadcast-row').nth(1).waitFor();
  await screenshot(writer, config, 'list');

  // The auditor: the scheduled one without its editor or controls.
  await auditor.goto(`/broadcasts/${scheduledId}`);
  await badge(auditor, 'SCHEDULED').waitFor();
  await auditor.getByTestId('broadcast-message').waitFor();
  for (const control of ['Cancel broadcast', 'Start now', 'Save and schedule', 'Save draft']) {
    check((await button(auditor, control).count()) === 0, `the auditor has no ${control}`);
  }

  // The same screens at phone width.
  const phone = await pageInZone(browser, config, PHONE, 'Asia/Tokyo');
  await signIn(phone, config.agent.email, config.agent.password);
  await phone.getByTestId('connection').waitFor();
  await phone.goto('/broadcasts');
  await phone.getByTestId('broadcast-row').nth(1).waitFor();
  await screenshot(phone, config, 'list');
  await button(phone, 'New broadcast').click();
  await phone.getByRole('textbox', { name: 'Text', exact: true }).fill('A draft seen on a phone');
  await button(phone, 'Add a row').click();
  await screenshot(phone, config, 'editor');
  await button(phone, 'Discard').click();
  await phone.goto(`/broadcasts/${broadcastId}`);
  await badge(phone, 'COMPLETED').waitFor();
  await phone.locator('[data-testid=recipient]').first().waitFor();
  await screenshot(phone, config, 'detail');
  // In Russian: the same page, its words and numbers in the agent's language.
  await phone.getByTestId('language').selectOption('ru');
  await phone.getByRole('heading', { name: 'Рассылка' }).waitFor();
  await phone.getByTestId('broadcast-state').getByText('Завершена').waitFor();
  await screenshot(phone, config, 'detail-ru');

  const problems = [...writer.problems, ...auditor.problems, ...phone.problems];
  check(problems.length === 0, `the browser reported problems: ${problems.join('\n')}`);
  return { broadcastId, scheduledId, scheduledAt: '2030-06-15T01:00:00.000Z' };
});
