// Roles: an auditor reads and has no write control; an agent limited to a category never
// sees another category's ticket; a second agent's browser sees an assignment live, and the
// auditor's live event feed shows it.
import { check, newPage, run, screenshot, signIn } from './harness.mjs';

await run(async (browser, config) => {
  const auditor = await newPage(browser, config);
  await signIn(auditor, config.auditor.email, config.auditor.password);
  await auditor.locator('select[aria-label=Status]').selectOption('all');
  const rows = auditor.locator('[data-testid=ticket-list] a.ticket');
  await rows.first().waitFor();
  check((await rows.count()) === 2, `the auditor sees both tickets: ${await rows.count()}`);
  await rows.filter({ hasText: config.tickets.billing }).click();
  await auditor.locator('[data-testid=message]').first().waitFor();
  await auditor.getByText('read only').waitFor();
  for (const control of ['Send', 'Resolve', 'Assign to me', 'Ban']) {
    check((await auditor.getByRole('button', { name: control, exact: true }).count()) === 0, `the auditor has no ${control}`);
  }
  check((await auditor.getByRole('textbox', { name: 'Reply' }).count()) === 0, 'the auditor has no composer');
  check((await auditor.getByLabel('Assignee').count()) === 0, 'the auditor cannot assign');
  await screenshot(auditor, config, 'auditor');
  // The auditor follows the log live.
  await auditor.getByRole('link', { name: 'Activity' }).click();
  await auditor.getByText('Waiting for events…').waitFor();

  // The limited agent and an admin, side by side.
  const limited = await newPage(browser, config);
  await signIn(limited, config.limited.email, config.limited.password);
  await limited.getByTestId('connection').getByText('Live').waitFor({ timeout: 10_000 });
  const limitedRows = limited.locator('[data-testid=ticket-list] a.ticket');
  await limitedRows.first().waitFor();
  check((await limitedRows.count()) === 1, `the limited agent sees one ticket: ${await limitedRows.count()}`);
  check((await limitedRows.filter({ hasText: config.tickets.other }).count()) === 0, 'never the other category');
  check((await limited.getByRole('link', { name: 'Activity' }).count()) === 0, 'agents have no event feed');

  const admin = await newPage(browser, config);
  await signIn(admin, config.admin.email, config.admin.password);
  await admin.locator('[data-testid=ticket-list] a.ticket', { hasText: config.tickets.billing }).click();
  await admin.getByRole('button', { name: 'Assign to me' }).click();
  // The limited agent's inbox shows the assignment without a reload.
  await limitedRows.filter({ hasText: config.tickets.billing }).getByText(`→ ${config.admin.name}`).waitFor({ timeout: 5_000 });
  await screenshot(limited, config, 'assigned-live');
  await auditor.locator('[data-testid=activity] code', { hasText: 'ticket.assigned' }).waitFor({ timeout: 5_000 });
  await screenshot(auditor, config, 'activity');

  // Even by its address, the other category's ticket is not shown to the limited agent.
  await limited.goto(`/tickets/${config.tickets.otherId}`);
  await limited.getByRole('alert').waitFor();
  check((await limited.getByText(config.tickets.other).count()) === 0, 'the other ticket stays hidden');
  return {};
});
