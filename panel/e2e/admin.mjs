// The admin screens: an admin adds a category (a second one of the same name is refused and
// the typed name stays), renames and removes another after confirming, adds a template that
// the composer offers at once, invites an agent with a role and a category (a taken email is
// refused first; their one-time password shown once), changes their role, deactivates
// another agent, changes the greeting, creates an API token whose secret is shown once, works and is
// gone after a reload, and revokes it. An agent who opens /admin is told it is not for them.
import { check, DESKTOP, newPage, PHONE, run, screenshot, signIn } from './harness.mjs';

/** A screenshot at both sizes, back at the desktop size after. */
async function both(page, config, name) {
  await screenshot(page, config, name);
  await page.setViewportSize(PHONE);
  await screenshot(page, config, name);
  await page.setViewportSize(DESKTOP);
}

async function tokenAnswers(config, token) {
  const response = await fetch(new URL('/graphql', config.base), {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: '{ dashboard { totalTickets } }' }),
  });
  const body = await response.json();
  return body.data?.dashboard ? 'works' : (body.errors?.[0]?.extensions?.code ?? JSON.stringify(body));
}

await run(async (browser, config) => {
  const admin = await newPage(browser, config);
  await admin.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: config.base });
  await signIn(admin, config.admin.email, config.admin.password);
  await admin.getByRole('link', { name: 'Admin', exact: true }).click();
  await admin.getByRole('heading', { name: 'Admin', level: 1 }).waitFor();
  const tabs = admin.getByRole('navigation', { name: 'Admin sections' });
  check(new URL(admin.url()).pathname === '/admin/agents', `agents first: ${admin.url()}`);

  // Categories.
  await tabs.getByRole('link', { name: 'Categories' }).click();
  const categories = admin.getByTestId('category-list');
  for (const name of ['Returns', 'Obsolete']) {
    await admin.getByLabel('Name').fill(name);
    await admin.getByRole('button', { name: 'Add category' }).click();
    await categories.locator(`[data-category="${name}"]`).waitFor();
  }
  // The server refuses a name it has (ignoring case); the form keeps what was typed.
  await admin.getByLabel('Name').fill('returns');
  await admin.getByRole('button', { name: 'Add category' }).click();
  await admin.locator('form.card [role=alert]').waitFor();
  check((await admin.getByLabel('Name').inputValue()) === 'returns', 'the refused name is still there');
  await both(admin, config, 'admin-categories');
  // A rename, then removing, which asks first; cancelling changes nothing.
  await categories.locator('[data-category="Obsolete"]').getByRole('button', { name: 'Rename' }).click();
  await categories.getByRole('textbox', { name: 'Name' }).fill('Old stuff');
  await categories.getByRole('button', { name: 'Save' }).click();
  const obsolete = categories.locator('[data-category="Old stuff"]');
  await obsolete.waitFor();
  await obsolete.getByRole('button', { name: 'Remove' }).click();
  await obsolete.getByRole('button', { name: 'Cancel' }).click();
  check((await obsolete.getByText('removed').count()) === 0, 'cancelled: not removed');
  await obsolete.getByRole('button', { name: 'Remove' }).click();
  await obsolete.getByRole('group').waitFor();
  await obsolete.getByRole('button', { name: 'Yes, remove' }).click();
  await obsolete.getByText('removed', { exact: true }).waitFor();

  // Templates.
  await tabs.getByRole('link', { name: 'Templates' }).click();
  await admin.getByLabel('Title').fill(config.template.title);
  await admin.getByLabel('Reply text').fill(config.template.text);
  await admin.getByRole('button', { name: 'Add template' }).click();
  await admin.getByTestId('template-list').locator(`[data-template="${config.template.title}"]`).waitFor();
  await both(admin, config, 'admin-templates');

  // Agents: an invitation with a role and a category; the one-time password is shown once.
  await tabs.getByRole('link', { name: 'Agents' }).click();
  const invite = admin.locator('form', { has: admin.getByRole('heading', { name: 'Invite an agent' }) });
  await invite.getByLabel('Name').fill(config.invitee.name);
  // An email the team has is refused, and the form keeps everything typed.
  await invite.getByLabel('Email').fill(config.agent.email);
  await invite.getByLabel('Role').selectOption('AGENT');
  await invite.getByLabel('Returns').check();
  await invite.getByRole('button', { name: 'Invite' }).click();
  await invite.getByRole('alert').waitFor();
  check((await invite.getByLabel('Name').inputValue()) === config.invitee.name, 'the name stays');
  check(await invite.getByLabel('Returns').isChecked(), 'the category stays ticked');
  await invite.getByLabel('Email').fill(config.invitee.email);
  await invite.getByRole('button', { name: 'Invite' }).click();
  const shown = admin.getByTestId('one-time-secret');
  await shown.waitFor();
  const oneTimePassword = await shown.getByRole('textbox').inputValue();
  check(oneTimePassword.length >= 8, `a one-time password is shown: ${oneTimePassword}`);
  await shown.getByText('You won’t see it again').waitFor();
  const invited = admin.getByTestId('agent-list').locator(`[data-agent="${config.invitee.email}"]`);
  await invited.getByTestId('agent-categories').getByText('Returns', { exact: true }).waitFor();
  await invited.getByTestId('agent-role').getByText('Agent', { exact: true }).waitFor();
  await both(admin, config, 'admin-agents');
  await shown.getByRole('button', { name: 'Done' }).click();
  check((await admin.getByTestId('one-time-secret').count()) === 0, 'the password is gone once closed');
  // A role change asks first; so does deactivating.
  const team = admin.getByTestId('agent-list');
  await invited.getByLabel('Role').selectOption('AUDITOR');
  await invited.getByRole('button', { name: 'Change role' }).click();
  await invited.getByRole('button', { name: 'Yes, change' }).click();
  await invited.getByTestId('agent-role').getByText('Auditor', { exact: true }).waitFor();
  const leaver = team.locator(`[data-agent="${config.leaver.email}"]`);
  await leaver.getByRole('button', { name: 'Deactivate' }).click();
  await leaver.getByRole('button', { name: 'Yes, deactivate' }).click();
  await leaver.getByText(/^Deactivated /).waitFor();
  check((await leaver.getByRole('button').count()) === 0, 'a deactivated agent has no controls');

  // The greeting.
  await tabs.getByRole('link', { name: 'Greeting' }).click();
  const english = admin.locator('form[data-language=en]');
  await english.getByRole('textbox').fill(config.greeting);
  await english.getByRole('button', { name: 'Save' }).click();
  await english.getByText('Saved.').waitFor();
  await both(admin, config, 'admin-greeting');

  // An API token: its secret once, with a copy button.
  await tabs.getByRole('link', { name: 'API tokens' }).click();
  await admin.getByLabel('What it is for').fill(config.tokenName);
  await admin.getByLabel('tickets:read').check();
  await admin.getByLabel('dashboard:read').check();
  await admin.getByRole('button', { name: 'Create token' }).click();
  const secret = admin.getByTestId('one-time-secret');
  await secret.waitFor();
  const token = await secret.getByRole('textbox').inputValue();
  await secret.getByRole('button', { name: 'Copy' }).click();
  await secret.getByText('Copied.').waitFor();
  const copied = await admin.evaluate(() => navigator.clipboard.readText());
  check(copied === token, 'the copy button copies the token');
  const listed = admin.getByTestId('token-list').locator(`[data-token="${config.tokenName}"]`);
  await listed.getByText('dashboard:read').waitFor();
  await both(admin, config, 'admin-tokens');
  const before = await tokenAnswers(config, token);
  check(before === 'works', `the new token works: ${before}`);
  // After a reload the secret is nowhere on the page.
  await admin.reload();
  await listed.waitFor();
  check((await admin.getByTestId('one-time-secret').count()) === 0, 'no secret after a reload');
  check(!(await admin.content()).includes(token), 'the token is not in the page');
  await listed.getByRole('button', { name: 'Revoke' }).click();
  await listed.getByRole('button', { name: 'Yes, revoke' }).click();
  await listed.getByText(/^Revoked /).waitFor();
  const after = await tokenAnswers(config, token);
  check(after === 'UNAUTHENTICATED', `the revoked token is refused: ${after}`);

  // The new template is a quick reply in the composer at once.
  await admin.getByRole('link', { name: 'Inbox' }).click();
  await admin.locator('[data-testid=ticket-list] a.ticket').first().click();
  const composer = admin.getByRole('textbox', { name: 'Reply', exact: true });
  await composer.fill(`/${config.template.title.split(' ')[0].toLowerCase()}`);
  await admin.getByRole('listbox', { name: 'Quick replies' }).getByText(config.template.title).waitFor();
  await composer.fill('');

  // An agent has no Admin link, and the address tells them it is not for them.
  const agent = await newPage(browser, config, PHONE);
  await signIn(agent, config.agent.email, config.agent.password);
  await agent.getByRole('link', { name: 'Dashboard' }).waitFor();
  check((await agent.getByRole('link', { name: 'Admin', exact: true }).count()) === 0, 'agents have no Admin link');
  await agent.goto('/admin/tokens');
  await agent.getByTestId('not-allowed').waitFor();
  check((await agent.locator('form, input, textarea').count()) === 0, 'no admin controls for an agent');
  await screenshot(agent, config, 'admin-not-allowed');
  return { oneTimePassword, token };
});
