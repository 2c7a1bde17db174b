// The panel's figures for `cargo bench --bench panel` (benches/panel.rs has the whole story).
// Config, as the benchmark passes it: `base` and `webhook` (the server's), `secret` (the
// webhook's), `sessions` (stored sign-ins: one per inbox load, and one for the open inbox),
// `customers` (ids of customers with a ticket each, one message each), `round`.
// Prints one JSON line: the inbox loads' times, the messages' p50/p99/max, the first screen's
// JavaScript in bytes (gzip level 9 and raw).
import { gzipSync } from 'node:zlib';
import { DESKTOP, check, run } from '../e2e/harness.mjs';

const SESSION_KEY = 'ledgerdesk.session';
const ROW = '[data-testid=ticket-list] a.ticket';

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** The smallest value at or above the `p` share of `values` (nearest rank). */
function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(p * sorted.length)));
  return sorted[rank - 1];
}

/** A browser context already signed in with `session`, whose pages note when the first inbox
 * row is in the page (`__rowAt`) and when the frame after it was made (`__usableAt`), on the
 * page's clock: milliseconds since the navigation started. */
async function signedInContext(browser, config, session) {
  const context = await browser.newContext({ viewport: DESKTOP, baseURL: config.base });
  await context.addInitScript(
    ({ key, value, row }) => {
      localStorage.setItem(key, value);
      const observer = new MutationObserver(() => {
        if (!document.querySelector(row)) return;
        observer.disconnect();
        window.__rowAt = performance.now();
        // The row's frame is made, and the main thread takes the next task: it answers input.
        requestAnimationFrame(() => setTimeout(() => { window.__usableAt = performance.now(); }, 0));
      });
      observer.observe(document, { childList: true, subtree: true });
    },
    { key: SESSION_KEY, value: JSON.stringify(session), row: ROW },
  );
  return context;
}

/** One cold load of the inbox (a new context: nothing cached): its times. */
async function loadInbox(browser, config, session) {
  const context = await signedInContext(browser, config, session);
  try {
    const page = await context.newPage();
    await page.goto('/');
    await page.waitForFunction(() => window.__usableAt !== undefined, null, { timeout: 20_000 });
    const times = await page.evaluate(() => {
      // Where the time went: the document's scripts run (DOMContentLoaded), and the last API
      // answer before the row (the session's, the directory's and the tickets' queries).
      const [navigation] = performance.getEntriesByType('navigation');
      const answers = performance
        .getEntriesByType('resource')
        .filter((entry) => entry.name.endsWith('/graphql') && entry.responseEnd <= window.__rowAt);
      return {
        row: window.__rowAt,
        usable: window.__usableAt,
        scripts: navigation.domContentLoadedEventEnd,
        data: Math.max(0, ...answers.map((entry) => entry.responseEnd)),
        query: Math.max(0, ...answers.map((entry) => entry.responseEnd - entry.requestStart)),
      };
    });
    // Usable: the first row opens its ticket.
    await page.locator(ROW).first().click();
    await page.waitForURL(/\/tickets\/[0-9a-f-]{36}$/, { timeout: 10_000 });
    return times;
  } finally {
    await context.close();
  }
}

/** The scripts `index.html` loads at once (as panel/tools/precompress.ts finds them): their
 * size raw and gzipped at level 9. */
async function firstScreen(config) {
  const html = await (await fetch(new URL('/', config.base))).text();
  const found = [
    ...html.matchAll(/<script[^>]*\ssrc="([^"]+\.js)"/g),
    ...html.matchAll(/<link[^>]*rel="modulepreload"[^>]*href="([^"]+\.js)"/g),
  ].map((match) => match[1]);
  let raw = 0;
  let gzip = 0;
  for (const src of new Set(found)) {
    const body = Buffer.from(await (await fetch(new URL(src, config.base))).arrayBuffer());
    raw += body.length;
    gzip += gzipSync(body, { level: 9 }).length;
  }
  check(raw > 0, `no scripts found in index.html: ${html}`);
  return { raw, gzip };
}

await run(async (browser, config) => {
  const [inboxSession, ...loadSessions] = config.sessions;
  const loads = [];
  for (const session of loadSessions) loads.push(await loadInbox(browser, config, session));

  // The open inbox, live.
  const context = await signedInContext(browser, config, inboxSession);
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  await page.goto('/');
  await page.locator(ROW).first().waitFor({ timeout: 20_000 });
  await page.getByTestId('connection').getByText('Live').waitFor({ timeout: 20_000 });

  const latencies = [];
  let updateId = 800_000_000 + config.round * 10_000;
  for (const [n, customer] of config.customers.entries()) {
    updateId += 1;
    const text = `Any news? (${config.round}.${n})`;
    const update = {
      update_id: updateId,
      message: {
        message_id: updateId,
        from: { id: customer, is_bot: false, first_name: 'Customer', language_code: 'en' },
        chat: { id: customer, first_name: 'Customer', type: 'private' },
        date: Math.floor(Date.now() / 1000),
        text,
      },
    };
    // Posted from the page, so the start and the end are read on the same clock.
    const took = await page.evaluate(
      async ({ webhook, secret, update, text }) => {
        const list = document.querySelector('[data-testid=ticket-list]');
        let observer;
        const shown = new Promise((resolve) => {
          observer = new MutationObserver(() => {
            if (list.textContent.includes(text)) resolve(performance.now());
          });
          observer.observe(list, { childList: true, subtree: true, characterData: true });
        });
        const timeout = new Promise((resolve) => setTimeout(() => resolve(null), 10_000));
        const started = performance.now();
        const response = await fetch(webhook, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': secret },
          body: JSON.stringify(update),
        });
        if (response.status !== 200) return { error: `the webhook answered ${response.status}` };
        const at = await Promise.race([shown, timeout]);
        observer.disconnect();
        return at === null ? { error: 'not shown within 10 s' } : { ms: at - started };
      },
      { webhook: config.webhook, secret: config.secret, update, text },
    );
    check(took.ms !== undefined, `message ${n} of customer ${customer}: ${took.error}`);
    latencies.push(took.ms);
  }
  check(problems.length === 0, `the browser reported problems: ${problems.join('\n')}`);
  await context.close();

  const size = await firstScreen(config);
  return {
    inboxMs: median(loads.map((load) => load.usable)),
    inboxRowMs: median(loads.map((load) => load.row)),
    inboxLoadsMs: loads.map((load) => Math.round(load.usable)),
    inboxScriptsMs: median(loads.map((load) => load.scripts)),
    inboxDataMs: median(loads.map((load) => load.data)),
    inboxSlowestQueryMs: median(loads.map((load) => load.query)),
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    maxMs: Math.max(...latencies),
    firstScreenGzipBytes: size.gzip,
    firstScreenRawBytes: size.raw,
  };
});
