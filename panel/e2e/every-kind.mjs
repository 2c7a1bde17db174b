// Every kind of message a customer can send (the bot's fixtures, as one customer's ticket):
// each shows with what Telegram told about it; files as placeholders with their kind, size
// and name; a location and a venue with a map link; a contact; a forward with its origin; an
// edit with the text it replaced. Screenshots at both sizes.
import { PHONE, check, newPage, run, screenshot, signIn } from './harness.mjs';

await run(async (browser, config) => {
  for (const viewport of [undefined, PHONE]) {
    const page = await newPage(browser, config, viewport);
    await signIn(page, config.admin.email, config.admin.password);
    await page.getByTestId('connection').getByText('Live').waitFor({ timeout: 10_000 });
    await page.goto(`/tickets/${config.ticketId}`);
    const shown = page.locator('[data-testid=message]');
    await shown.first().waitFor();
    // Albums show once, on their first message.
    await page.waitForFunction((least) => document.querySelectorAll('[data-testid=message]').length >= least, config.messages - 2);
    for (const kind of ['photo', 'video', 'voice', 'audio', 'document', 'sticker', 'animation', 'video_note']) {
      const media = page.locator(`[data-testid=media][data-kind=${kind}]`);
      check((await media.count()) > 0, `a ${kind} placeholder`);
    }
    const document = page.locator('[data-testid=media][data-kind=document]').first();
    check(/\d+(\.\d)? (B|KB|MB)/.test(await document.innerText()), 'a file shows its size');
    const mapLinks = page.locator('a[href^="https://www.openstreetmap.org/"]');
    check((await mapLinks.count()) >= 2, 'the location and the venue link to a map');
    check((await page.locator('[data-kind=contact]').count()) === 1, 'the contact');
    check((await page.getByText('Forwarded from').count()) >= 3, 'forwards show their origin');
    const edited = page.getByRole('button', { name: 'edited' }).first();
    await edited.click();
    await page.locator('.edits li').first().waitFor();
    await screenshot(page, config, 'every-kind');
    check(page.problems.length === 0, `the browser reported problems: ${page.problems.join('\n')}`);
    await page.context().close();
  }
  return {};
});
