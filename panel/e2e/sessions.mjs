// Sessions: a first sign-in with a one-time password asks for a new one; a session revoked
// elsewhere sends the agent back to sign-in, and the half-written reply is still there after
// signing in again; sign-out forgets the tokens.
import { check, customerWrites, newPage, run, screenshot, signIn } from './harness.mjs';

await run(async (browser, config) => {
  const page = await newPage(browser, config);
  await signIn(page, 'wrong@example.com', 'not the password at all');
  await page.getByRole('alert').waitFor();
  await screenshot(page, config, 'sign-in');

  await signIn(page, config.newcomer.email, config.newcomer.oneTimePassword);
  await page.getByRole('heading', { name: 'Choose your password' }).waitFor();
  await screenshot(page, config, 'first-password');
  await page.getByLabel('Current password').fill(config.newcomer.oneTimePassword);
  await page.getByLabel('New password', { exact: true }).fill(config.newcomer.newPassword);
  await page.getByLabel('New password again').fill(config.newcomer.newPassword);
  await page.getByRole('button', { name: 'Change password' }).click();
  await page.getByTestId('connection').getByText('Live').waitFor({ timeout: 10_000 });

  // A half-written reply on a ticket.
  await customerWrites(config, { id: 7101, firstName: 'Oleg' }, 'Where is my refund?');
  const row = page.locator('[data-testid=ticket-list] a.ticket', { hasText: 'Where is my refund?' });
  await row.click();
  await page.getByRole('textbox', { name: 'Reply', exact: true }).fill('We are looking into your ref');

  // The session ends elsewhere (signed out everywhere): the live connection is closed by
  // the server, the panel cannot refresh the session, and goes back to sign-in.
  const stored = JSON.parse(await page.evaluate(() => localStorage.getItem('ledgerdesk.session')));
  const ended = await fetch(`${config.base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${stored.accessToken}` },
    body: JSON.stringify({ query: 'mutation { logout(input: {everywhere: true}) { ok } }' }),
  }).then((response) => response.json());
  check(ended.data?.logout?.ok === true, `logout everywhere: ${JSON.stringify(ended)}`);
  await page.getByText('Your session has ended').waitFor({ timeout: 10_000 });
  await screenshot(page, config, 'session-ended');

  // Signing in again brings the agent back to the ticket with the reply as it was.
  await page.getByLabel('Email').fill(config.newcomer.email);
  await page.getByLabel('Password').fill(config.newcomer.newPassword);
  await page.getByRole('button', { name: 'Sign in' }).click();
  const kept = page.getByRole('textbox', { name: 'Reply', exact: true });
  await kept.waitFor();
  check((await kept.inputValue()) === 'We are looking into your ref', 'the draft survived');

  // Sign-out forgets the session in this browser.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('button', { name: 'Sign in' }).waitFor();
  const after = await page.evaluate(() => localStorage.getItem('ledgerdesk.session'));
  check(after === null, 'the tokens are gone');
  return {};
});
