// Languages: a browser that asks for Russian gets the sign-in page and the inbox in Russian
// (dates in Russian too); switching to English changes every text at once, and the choice
// survives a reload.
import { DESKTOP, PHONE, check, newPage, run, screenshot } from './harness.mjs';

await run(async (browser, config) => {
  const page = await newPage(browser, config, DESKTOP, { locale: 'ru-RU' });
  await page.goto('/');
  await page.getByRole('button', { name: 'Войти' }).waitFor();
  check((await page.evaluate(() => document.documentElement.lang)) === 'ru', 'the page says it is Russian');
  await screenshot(page, config, 'sign-in-ru');

  // A wrong password is told in Russian.
  await page.getByLabel('Эл. почта').fill(config.admin.email);
  await page.getByLabel('Пароль').fill('not the password at all');
  await page.getByRole('button', { name: 'Войти' }).click();
  await page.getByRole('alert').getByText('Неверная почта или пароль.').waitFor();

  await page.getByLabel('Пароль').fill(config.admin.password);
  await page.getByRole('button', { name: 'Войти' }).click();
  await page.getByTestId('connection').getByText('На связи').waitFor({ timeout: 10_000 });
  const row = page.locator('[data-testid=ticket-list] a.ticket', { hasText: 'Где мой заказ?' });
  await row.waitFor();
  check((await row.locator('.status').innerText()) === 'Новое', 'the status is in Russian');
  await page.getByRole('link', { name: 'Входящие' }).waitFor();
  await page.getByRole('button', { name: 'Выйти' }).waitFor();
  await page.getByLabel('Чьи').waitFor();
  await screenshot(page, config, 'inbox-ru');

  // The conversation: its header date is Russian ("7 дек. 2026 г., 21:05").
  await row.click();
  const opened = page.locator('.conversation .title .muted');
  await opened.getByText('открыто').waitFor();
  const when = await opened.innerText();
  check(/г\./.test(when), `the date is written in Russian: ${when}`);
  await page.getByRole('textbox', { name: 'Ответ', exact: true }).waitFor();
  await screenshot(page, config, 'conversation-ru');
  await page.setViewportSize(PHONE);
  await screenshot(page, config, 'conversation-ru');
  await page.setViewportSize(DESKTOP);

  // English at once: no reload, every text of the screen.
  await page.getByTestId('language').first().selectOption('en');
  await page.getByRole('button', { name: 'Sign out' }).waitFor({ timeout: 2_000 });
  await page.getByTestId('connection').getByText('Live').waitFor({ timeout: 2_000 });
  await page.getByRole('textbox', { name: 'Reply', exact: true }).waitFor({ timeout: 2_000 });
  check((await row.locator('.status').innerText()) === 'New', 'the status changed to English');
  check(!/г\./.test(await opened.innerText()), 'the date changed to English');
  check((await page.evaluate(() => document.documentElement.lang)) === 'en', 'the page says it is English');
  await screenshot(page, config, 'conversation-en');

  // The choice outlives a reload (the browser still asks for Russian).
  await page.reload();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
  await page.getByRole('link', { name: 'Inbox' }).waitFor();
  check((await page.getByTestId('language').first().inputValue()) === 'en', 'the switch shows English');

  // And on the sign-in page, after signing out.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('button', { name: 'Sign in' }).waitFor();
  await page.getByTestId('language').selectOption('ru');
  await page.getByRole('button', { name: 'Войти' }).waitFor({ timeout: 2_000 });
  check(page.problems.length === 0, `the page logged errors: ${page.problems.join('\n')}`);
  return {};
});
