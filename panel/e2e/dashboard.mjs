// The dashboard: the admin reads the seeded history (three tickets, one answered and
// resolved) as tiles, per category and as a chart of the daily medians; switching the period
// keeps them; an agent reads the same dashboard on a phone.
import { check, newPage, PHONE, run, screenshot, signIn } from './harness.mjs';

async function tile(page, status) {
  return (await page.locator(`[data-testid=status-tiles] [data-status=${status}] .value`).innerText()).trim();
}

async function tilesShow(page, expected) {
  for (const [status, count] of Object.entries(expected)) {
    await page.locator(`[data-testid=status-tiles] [data-status=${status}] .value`, { hasText: new RegExp(`^${count}$`) }).waitFor({ timeout: 10_000 });
  }
}

await run(async (browser, config) => {
  const admin = await newPage(browser, config);
  await signIn(admin, config.admin.email, config.admin.password);
  await admin.getByRole('link', { name: 'Dashboard' }).click();
  await admin.getByRole('heading', { name: 'Dashboard', level: 1 }).waitFor();
  check(new URL(admin.url()).pathname === '/dashboard', `the address is the dashboard's: ${admin.url()}`);

  const expected = { TOTAL: 3, NEW: 2, OPEN: 0, PENDING: 0, RESOLVED: 1, CLOSED: 0 };
  await tilesShow(admin, expected);
  for (const [status, count] of Object.entries(expected)) {
    check((await tile(admin, status)) === String(count), `${status} shows ${count}: ${await tile(admin, status)}`);
  }
  // The answered and resolved ticket gives both medians.
  for (const id of ['median-first-response', 'median-resolution']) {
    const value = (await admin.getByTestId(id).locator('.value').innerText()).trim();
    check(/\d/.test(value) && value !== 'none yet', `${id} shows a duration: ${value}`);
  }
  // Per category: the billing ticket under its name, the other two without one.
  const table = admin.getByTestId('category-table');
  await table.getByRole('row', { name: /Billing/ }).waitFor();
  check((await table.getByRole('row', { name: /No category/ }).innerText()).includes('2'), 'two uncategorised tickets');

  // The chart: one point a line for today, named on hover, and the same figures as a table.
  const chart = admin.getByTestId('daily-chart');
  await chart.locator('svg title', { hasText: 'Daily medians' }).waitFor({ state: 'attached' });
  for (const line of ['first-response', 'resolution']) {
    const points = await chart.getByTestId(`chart-${line}`).locator('circle').count();
    check(points === 1, `the ${line} line has today's point: ${points}`);
  }
  const hover = await chart.getByTestId('chart-first-response').locator('circle title').textContent();
  check(/first response .+ \(median of 1\)/.test(hover ?? ''), `a point names its value: ${hover}`);
  check((await chart.locator('.grid text').count()) >= 4, 'the axes are labelled');
  await chart.getByText('The figures as a table').click();
  check((await chart.getByTestId('chart-table').locator('tbody tr').count()) === 1, 'one day in the table');
  await screenshot(admin, config, 'dashboard');

  // Another period: the counts stay (they are now), the chart is drawn again.
  await admin.getByLabel('Period').selectOption('7');
  await tilesShow(admin, expected);
  check((await chart.getByTestId('chart-resolution').locator('circle').count()) === 1, 'the 7-day chart has the point');

  // In Russian, durations and words follow the language.
  await admin.getByLabel('Language').selectOption('ru');
  await admin.getByRole('heading', { name: 'Сводка', level: 1 }).waitFor();
  await admin.getByText('Медиана первого ответа').first().waitFor();
  await screenshot(admin, config, 'dashboard-ru');
  await admin.getByLabel('Язык').selectOption('en');

  // An agent reads the dashboard too, on a phone.
  const agent = await newPage(browser, config, PHONE);
  await signIn(agent, config.agent.email, config.agent.password);
  await agent.getByRole('link', { name: 'Dashboard' }).click();
  await tilesShow(agent, expected);
  await agent.getByTestId('daily-chart').locator('circle').first().waitFor({ state: 'attached' });
  await screenshot(agent, config, 'dashboard');
  for (const page of [admin, agent]) check(page.problems.length === 0, `no errors in the page: ${page.problems.join('; ')}`);
  return {};
});
