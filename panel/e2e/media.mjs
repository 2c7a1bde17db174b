// Messages as Telegram formatted them, and files: a customer's formatted text shows as DOM
// nodes (no unsafe link), a photo loads (preview, then the full picture on a click, through a
// fresh URL when the first one expired), a voice message plays, a document downloads, a file
// too large for the Bot API says so; then the agent attaches two files and sends them.
import { DESKTOP, PHONE, check, eventually, newPage, run, screenshot, signIn } from './harness.mjs';

await run(async (browser, config) => {
  const page = await newPage(browser, config);
  await signIn(page, config.admin.email, config.admin.password);
  await page.getByTestId('connection').getByText('Live').waitFor({ timeout: 10_000 });
  await page.goto(`/tickets/${config.ticketId}`);
  const timeline = page.getByTestId('timeline');
  await timeline.waitFor();

  // The formatted text: nodes for each entity, the text whole and in order.
  const formatted = timeline.getByTestId('formatted').filter({ hasText: 'Привет' });
  await formatted.waitFor();
  check((await formatted.textContent()) === config.text, `the text as sent: ${await formatted.textContent()}`);
  check((await formatted.locator('strong em').innerText()) === 'Привет', 'italic inside bold, at UTF-16 offsets');
  check((await formatted.locator('strong').innerText()) === 'Привет!', 'the bold span');
  check((await formatted.locator('code').innerText()) === 'ls', 'the code span');
  const link = formatted.locator('a', { hasText: 'docs' });
  check((await link.getAttribute('href')) === 'https://example.com/docs', 'the link target');
  check((await link.getAttribute('target')) === '_blank', 'links open in a new tab');
  check((await link.getAttribute('rel')) === 'noopener noreferrer', 'links tell nothing to the target');
  check((await formatted.locator('a').count()) === 1, 'the javascript: link is no link');
  const spoiler = formatted.locator('.spoiler');
  check((await spoiler.innerText()) === '42', 'the spoiler holds its text');
  await spoiler.click();
  await formatted.locator('.spoiler.revealed').waitFor();
  const caption = timeline.getByTestId('formatted').filter({ hasText: 'the broken box' });
  check((await caption.locator('u').innerText()) === 'broken', 'the caption is formatted');

  // The photo: its preview loads, then the full picture.
  const photo = timeline.locator('[data-testid=media][data-kind=photo] img');
  await photo.waitFor();
  await page.waitForFunction((img) => img.complete && img.naturalWidth > 0, await photo.elementHandle(), { timeout: 15_000 });
  await screenshot(page, config, 'media');

  // The voice message: the player reads its length.
  const audio = timeline.locator('[data-testid=media][data-kind=voice] audio');
  await audio.waitFor();
  await page.waitForFunction((element) => Number.isFinite(element.duration) && element.duration > 0,
    await audio.elementHandle(), { timeout: 15_000 });

  // The document: a link with its name that downloads it.
  const file = timeline.locator('a[data-testid=media][data-kind=document]', { hasText: 'invoice.pdf' });
  await file.waitFor();
  const href = await file.getAttribute('href');
  const fetched = await page.evaluate(async (url) => {
    const response = await fetch(url);
    return { status: response.status, size: (await response.arrayBuffer()).byteLength };
  }, href);
  check(fetched.status === 200 && fetched.size === config.pdfBytes, `the document: ${JSON.stringify(fetched)}`);

  // A file over the Bot API's limit: a click tells why it cannot be had.
  const huge = timeline.locator('a[data-testid=media][data-kind=document]', { hasText: 'backup.zip' });
  await huge.click();
  const refused = timeline.locator('[data-testid=media][data-problem=tooLarge]');
  await refused.waitFor({ timeout: 15_000 });
  check((await refused.innerText()).includes('backup.zip'), 'the placeholder names the file');
  await screenshot(page, config, 'media-refused');
  await page.setViewportSize(PHONE);
  await screenshot(page, config, 'media');
  await page.setViewportSize(DESKTOP);

  // The URLs live four seconds here: the full picture's first URL has expired by now, and
  // the panel reads the ticket again for a fresh one.
  const expiry = (url) => Number(new URL(url, config.base).searchParams.get('exp'));
  const thumb = await photo.getAttribute('src');
  const first = expiry(thumb);
  // Until the server refuses the URLs read with the page.
  await eventually(
    async () => (await page.evaluate(async (url) => (await fetch(url, { method: 'HEAD', cache: 'no-store' })).status, thumb)) === 403,
    15_000,
    'the first URLs expire',
  );
  await photo.click();
  await page.waitForFunction(
    ([img, before]) => {
      const url = new URL(img.src);
      return img.complete && img.naturalWidth > 0 && !url.pathname.endsWith('.thumb')
        && Number(url.searchParams.get('exp')) >= before + 4;
    },
    [await photo.elementHandle(), first],
    { timeout: 15_000 },
  );

  // The agent attaches a text file (with a Cyrillic name) and a picture, and sends them.
  const png = Buffer.from(await page.evaluate(async () => {
    const canvas = new OffscreenCanvas(20, 10);
    canvas.getContext('2d').fillRect(0, 0, 20, 10);
    const blob = await canvas.convertToBlob({ type: 'image/png' });
    return [...new Uint8Array(await blob.arrayBuffer())];
  }));
  await page.getByTestId('attach-input').setInputFiles([
    { name: 'счёт.txt', mimeType: 'text/plain', buffer: Buffer.from('the invoice, again') },
    { name: 'label.png', mimeType: 'image/png', buffer: png },
  ]);
  await page.getByTestId('uploaded').nth(1).waitFor({ timeout: 15_000 });
  await screenshot(page, config, 'attached');
  await page.getByRole('textbox', { name: 'Reply', exact: true }).fill('Here are both files.');
  await page.getByRole('button', { name: 'Send', exact: true }).click();
  await timeline.locator('[data-testid=message][data-delivery=delivered]').waitFor({ timeout: 30_000 });
  return {};
});
