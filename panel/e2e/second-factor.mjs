// A second factor the team requires: the agent's first sign-in asks them to add an
// authenticator app (the key shown to copy, a code computed here as the app would), shows
// the recovery codes once, then opens the desk; the next sign-in asks for a code.
import { createHmac } from 'node:crypto';
import { check, newPage, run, screenshot, signIn } from './harness.mjs';

/** RFC 4648 base32 to bytes. */
function base32(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const char of text.replace(/=+$/, '').toUpperCase()) {
    const value = alphabet.indexOf(char);
    if (value < 0) throw new Error(`not base32: ${char}`);
    bits += value.toString(2).padStart(5, '0');
  }
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

/** The RFC 6238 code (SHA-1, six digits, 30-second steps) of `step`. */
function totp(secret, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', base32(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const number = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(number).padStart(6, '0');
}

await run(async (browser, config) => {
  // RFC 6238's own test vector: the secret "12345678901234567890" at 59 s.
  check(totp('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ', 1) === '287082', 'the TOTP computation');

  const page = await newPage(browser, config);
  await signIn(page, config.agent.email, config.agent.password);
  await page.getByRole('heading', { name: 'Add an authenticator app' }).waitFor({ timeout: 10_000 });
  await page.getByLabel('Current password').fill(config.agent.password);
  await page.getByRole('button', { name: 'Continue' }).click();
  const secret = (await page.getByTestId('secret').innerText()).trim();
  await screenshot(page, config, 'enrol');
  const step = Math.floor(Date.now() / 1000 / 30);
  await page.getByLabel('Code from the app').fill(totp(secret, step));
  await page.getByRole('button', { name: 'Confirm' }).click();
  const codes = page.getByTestId('recovery-codes').locator('li');
  await codes.first().waitFor();
  check((await codes.count()) === 10, 'ten recovery codes');
  await screenshot(page, config, 'recovery-codes');
  await page.getByRole('button', { name: 'I have kept them: open the desk' }).click();
  await page.getByTestId('connection').getByText('Live').waitFor({ timeout: 10_000 });

  // The next sign-in asks for a code (the next step's: a code works once).
  await page.getByRole('button', { name: 'Sign out' }).click();
  await signIn(page, config.agent.email, config.agent.password);
  await page.getByLabel('Code').waitFor();
  await page.getByLabel('Code').fill(totp(secret, step + 1));
  await page.getByRole('button', { name: 'Verify' }).click();
  await page.getByTestId('connection').getByText('Live').waitFor({ timeout: 10_000 });
  return {};
});
