// Drives Kiln's web page in headless Chromium (Debian's, through playwright-core; no browser download).
// Run by host/tests/web.rs, which starts Redis and `kiln serve` and checks what this prints.
//
// Environment: KILN_URL (the page), KILN_IMAGE (a PNG to crop), KILN_API_KEY (a tenant key; the page
// must ask for it; unset for a Kiln in dev mode, where the page must work without one), CHROMIUM (the browser), KILN_SHOT and KILN_SHOT_PHONE (screenshot paths).
// Prints `RESULT <json>` on success; exits non-zero with the reason otherwise.

import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const url = env('KILN_URL');
const image = env('KILN_IMAGE');
const key = process.env.KILN_API_KEY || '';
const shot = env('KILN_SHOT');
const phoneShot = env('KILN_SHOT_PHONE');
const TIMEOUT = 60_000;

const check = (ok, message) => {
  if (!ok) throw new Error(message);
};

const profile = mkdtempSync(join(tmpdir(), 'kiln-chromium-'));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: env('CHROMIUM'),
  headless: true,
  viewport: { width: 1280, height: 900 },
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-dev-shm-usage',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
const problems = [];
const result = {};
let page;

function watchConsole(p) {
  p.on('console', (msg) => {
    // Chromium logs every 4xx answer; the 401 before the key is entered, the refused submit's 422 and
    // the 403 that hides the admin-only dashboard from a tenant's key are expected. Anything else is a bug.
    if (msg.type() === 'error' && !/status of (401|403|422) /.test(msg.text())) problems.push('console: ' + msg.text());
  });
  p.on('pageerror', (err) => problems.push('page error: ' + err.message));
  p.on('response', (r) => {
    const expected = [401, 422].includes(r.status()) || (r.status() === 403 && r.url().endsWith('/v1/stats'));
    if (r.status() >= 400 && !expected) problems.push(`${r.status()} from ${r.url()}`);
  });
}

try {
  page = browser.pages()[0] || (await browser.newPage());
  page.setDefaultTimeout(TIMEOUT);
  watchConsole(page);
  await page.goto(url);

  // Keyed mode: the page says it needs a key; enter it once, and it is kept across reloads.
  if (key) {
    await page.locator('#banner').filter({ hasText: 'needs an API key' }).waitFor();
    await page.fill('#api-key', key);
    await page.click('#save-key');
    await page.reload();
    check((await page.inputValue('#api-key')) === key, 'the API key was not kept in the browser');
  }
  await page.locator('[data-testid="jobs"]').waitFor({ state: 'attached' });

  // Crop: a file that is no image fails as a job; its error is shown in words.
  await page.check('#kind-crop');
  await page.setInputFiles('#crop-file', {
    name: 'notes.png',
    mimeType: 'image/png',
    buffer: Buffer.from('this is not an image'),
  });
  await page.locator('#preview-note').filter({ hasText: 'cannot show' }).waitFor();
  await page.click('#submit');
  const failed = page.locator('#job-error').filter({ hasText: 'invalid-input' });
  await failed.waitFor();
  result.failed_error = await failed.textContent();
  await page.locator('#job-detail').screenshot({ path: shot.replace(/\.png$/, '-failed.png') });

  // The real image: the preview shows it at its natural size.
  await page.setInputFiles('#crop-file', image);
  await page.locator('#preview-note').filter({ hasText: '200 × 150' }).waitFor();

  // Drag the crop rectangle on the preview, from image pixel (20, 30) to (120, 90).
  const box = await page.locator('#preview').boundingBox();
  const at = (x, y) => [box.x + (x * box.width) / 200, box.y + (y * box.height) / 150];
  await page.mouse.move(...at(20, 30));
  await page.mouse.down();
  await page.mouse.move(...at(70, 60), { steps: 5 });
  await page.mouse.move(...at(120, 90), { steps: 5 });
  await page.mouse.up();
  result.crop = {};
  for (const field of ['x', 'y', 'w', 'h']) result.crop[field] = Number(await page.inputValue('#crop-' + field));
  check(await page.locator('#crop-rect').isVisible(), 'the crop rectangle is not drawn over the preview');

  // A resize the server refuses: its problem detail is shown.
  await page.fill('#resize-w', '20000');
  await page.click('#submit');
  const refused = page.locator('#form-error').filter({ hasText: 'params do not fit' });
  await refused.waitFor();
  result.refused_detail = await refused.textContent();

  // The real submit: width 50 (the height follows the aspect ratio), nearest filter.
  await page.fill('#resize-w', '50');
  await page.selectOption('#resize-filter', 'nearest');
  await page.click('#submit');
  await page.waitForFunction(() => {
    const img = document.querySelector('[data-testid="result-image"]');
    return img && img.complete && img.naturalWidth > 0 && !img.closest('[hidden]');
  }, null, { timeout: TIMEOUT });
  Object.assign(result, await page.evaluate(() => {
    const img = document.querySelector('[data-testid="result-image"]');
    const row = document.querySelector('[data-testid="job-row"].selected');
    return {
      natural_width: img.naturalWidth,
      natural_height: img.naturalHeight,
      job_id: document.getElementById('job-id').textContent,
      status: document.getElementById('job-status').textContent,
      progress: document.getElementById('job-progress').getAttribute('aria-valuenow'),
      download: document.getElementById('download').getAttribute('download'),
      download_visible: !document.getElementById('download').hidden,
      row_status: row && row.dataset.status,
      rows: document.querySelectorAll('[data-testid="job-row"]').length,
    };
  }));
  await page.waitForTimeout(500); // let the progress bar's transition end
  await page.screenshot({ path: shot, fullPage: true });

  // The result as the next job's input, by reference, in a pipeline: crop to 20 wide, then crop to 10.
  const first = result.job_id;
  await page.click('#use-result');
  await page.locator('#file-info').filter({ hasText: `result of job ${first}` }).waitFor();
  await page.click('#crop-clear');
  await page.fill('#resize-w', '20');
  await page.check('#then-on');
  await page.locator('#then-kind option[value="crop"]').waitFor({ state: 'attached' });
  await page.selectOption('#then-kind', 'crop');
  await page.fill('#then-params', '{"resize": {"width": 10}}');
  await page.click('#submit');
  await page.waitForFunction((first) => {
    const img = document.querySelector('[data-testid="result-image"]');
    const id = document.getElementById('job-id').textContent;
    return id !== first && img && img.complete && img.naturalWidth > 0 && !img.closest('[hidden]');
  }, first, { timeout: TIMEOUT });
  result.pipeline = await page.evaluate(() => ({
    job_id: document.getElementById('job-id').textContent,
    kind: document.getElementById('job-kind').textContent,
    natural_width: document.querySelector('[data-testid="result-image"]').naturalWidth,
    steps: [...document.querySelectorAll('#job-steps li')].map((li) => li.dataset.status),
  }));
  await page.screenshot({ path: shot.replace(/\.png$/, '-pipeline.png'), fullPage: true });

  // A phone-sized screen (same browser profile, so the key is still there): plot a CSV.
  const phone = await browser.newPage();
  phone.setDefaultTimeout(TIMEOUT);
  watchConsole(phone);
  await phone.setViewportSize({ width: 390, height: 844 });
  await phone.goto(url);
  await phone.locator('[data-testid="job-row"]').first().waitFor();
  // The crop preview fits the narrow screen, and dragging on it still picks image pixels.
  await phone.setInputFiles('#crop-file', image);
  await phone.locator('#preview-note').filter({ hasText: '200 × 150' }).waitFor();
  const small = await phone.locator('#preview').boundingBox();
  await phone.mouse.move(small.x + small.width * 0.5, small.y + small.height * 0.2);
  await phone.mouse.down();
  await phone.mouse.move(small.x + small.width * 0.9, small.y + small.height * 0.8, { steps: 5 });
  await phone.mouse.up();
  result.phone_crop = {};
  for (const field of ['x', 'y', 'w', 'h']) result.phone_crop[field] = Number(await phone.inputValue('#crop-' + field));
  result.phone_crop_overflow = await phone.evaluate(
    () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
  );
  await phone.screenshot({ path: phoneShot.replace(/\.png$/, '-crop.png') });
  await phone.check('#kind-plot');
  await phone.click('#csv-example');
  check((await phone.inputValue('#plot-y')) === 'a, b', 'the y columns were not taken from the CSV header');
  await phone.fill('#plot-title', 'a and b');
  await phone.fill('#plot-width', '640');
  await phone.fill('#plot-height', '400');
  await phone.click('#submit');
  await phone.waitForFunction(() => {
    const img = document.querySelector('[data-testid="result-image"]');
    return img && img.complete && img.naturalWidth > 0 && !img.closest('[hidden]');
  }, null, { timeout: TIMEOUT });
  result.plot = await phone.evaluate(() => {
    const img = document.querySelector('[data-testid="result-image"]');
    return { natural_width: img.naturalWidth, natural_height: img.naturalHeight };
  });
  result.phone_overflow = await phone.evaluate(
    () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
  );
  await phone.waitForTimeout(500);
  await phone.screenshot({ path: phoneShot, fullPage: true });

  result.problems = problems;
  console.log('RESULT ' + JSON.stringify(result));
} catch (err) {
  if (page) await page.screenshot({ path: '/tmp/kiln-web-failure.png', fullPage: true }).catch(() => {});
  console.error(`drive.mjs: ${err.stack || err}\nsee /tmp/kiln-web-failure.png; so far: ${JSON.stringify(result)}; ${problems.join('; ')}`);
  process.exitCode = 1;
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
