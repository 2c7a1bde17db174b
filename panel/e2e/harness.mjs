// What every browser scenario shares: Debian's Chromium driven by playwright-core (no
// browser is downloaded), pages at two sizes, screenshots into the test's folder, and the
// fake customer writing to the bot's webhook.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
}

/**
 * A page of its own browser context (its own storage: one agent's tab); `options` are more
 * of the context's (a `locale`, as the browser's language).
 */
export async function newPage(browser, config, viewport = DESKTOP, options = {}) {
  const context = await browser.newContext({ viewport, baseURL: config.base, ...options });
  const page = await context.newPage();
  const problems = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.problems = problems;
  return page;
}

export async function screenshot(page, config, name) {
  mkdirSync(config.screenshots, { recursive: true });
  const size = page.viewportSize();
  const file = join(config.screenshots, `${name}-${size.width}x${size.height}.png`);
  await page.screenshot({ path: file, fullPage: false });
  return file;
}

export async function signIn(page, email, password) {
  await page.goto('/');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

let updateId = 900_000_000;
let messageId = 5_000;

/** A customer's text message, posted to the bot's webhook as Telegram would. */
export async function customerWrites(config, customer, text) {
  updateId += 1;
  messageId += 1;
  const from = { id: customer.id, is_bot: false, first_name: customer.firstName, language_code: 'en' };
  const update = {
    update_id: updateId,
    message: {
      message_id: messageId,
      from,
      chat: { id: customer.id, first_name: customer.firstName, type: 'private' },
      date: Math.floor(Date.now() / 1000),
      text,
    },
  };
  await postUpdate(config, update);
}

export async function postUpdate(config, update) {
  const response = await fetch(config.webhook, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': config.secret },
    body: JSON.stringify(update),
  });
  if (response.status !== 200) throw new Error(`the webhook answered ${response.status}`);
}

/** Polls `condition` (async) every 250 ms until it holds, or throws `what` after `timeout` ms. */
export async function eventually(condition, timeout, what) {
  const deadline = Date.now() + timeout;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

export function check(condition, message) {
  if (!condition) throw new Error(message);
}

/** Runs `scenario(config)` and prints one line of JSON: its result, or the error. */
export async function run(scenario) {
  const config = JSON.parse(process.argv[2] ?? '{}');
  const browser = await launch();
  try {
    const result = await scenario(browser, config);
    console.log(JSON.stringify({ ok: true, ...result }));
  } catch (error) {
    for (const context of browser.contexts()) {
      for (const page of context.pages()) {
        await screenshot(page, config, 'failure').catch(() => undefined);
        for (const problem of page.problems ?? []) console.error(problem);
      }
    }
    console.log(JSON.stringify({ ok: false, error: String(error?.stack ?? error) }));
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}
