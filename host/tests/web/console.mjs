// Drives the web page's operator console in headless Chromium with the admin key: pauses a kind, retries
// a failed job, cancels a selection of queued jobs, resumes the kind. Run by host/tests/e2e/web.rs, which
// prepares the jobs and checks the outcome through the API.
//
// Environment: KILN_URL (the page), KILN_ADMIN_KEY, KILN_FAILED (id of a failed job of kind `hostile`),
// KILN_QUEUE (a tenant key: this script submits two `hostile` jobs with it while the kind is paused),
// CHROMIUM, KILN_SHOT (screenshot path). Prints `RESULT <json>`; exits non-zero with the reason otherwise.

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
const adminKey = env('KILN_ADMIN_KEY');
const failed = env('KILN_FAILED');
const tenantKey = env('KILN_QUEUE');
const TIMEOUT = 30_000;

const profile = mkdtempSync(join(tmpdir(), 'kiln-chromium-'));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: env('CHROMIUM'),
  headless: true,
  viewport: { width: 1280, height: 1400 },
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const problems = [];
const result = {};

try {
  const page = await browser.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on('pageerror', (err) => problems.push('page error: ' + err.message));
  // A 401 before the key is entered is expected, the 403 that tells the page the admin key has no jobs
  // of its own, and a 404 for a job with no webhook deliveries; nothing else may fail.
  page.on('response', (r) => {
    const expected = r.status() === 401 || (r.status() === 403 && /\/v1\/jobs\?/.test(r.url())) ||
      (r.status() === 404 && /\/deliveries/.test(r.url()));
    if (r.status() >= 400 && !expected) problems.push(`${r.status()} from ${r.url()}`);
  });
  await page.goto(url);
  await page.locator('#banner').filter({ hasText: 'needs an API key' }).waitFor();
  await page.fill('#api-key', adminKey);
  await page.click('#save-key');
  await page.locator('[data-testid=console]').waitFor({ state: 'visible' });

  // Pause the kind from the dashboard; two jobs submitted now stay queued.
  await page.click('[data-testid=pause-kinds-hostile]');
  await page.locator('[data-testid=resume-kinds-hostile]').waitFor();
  const queued = [];
  for (let i = 0; i < 2; i++) {
    const response = await fetch(new URL('/v1/jobs/hostile', url), {
      method: 'POST',
      headers: { Authorization: `Bearer ${tenantKey}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ params: { mode: 'noop' } }),
    });
    if (response.status !== 202) throw new Error(`submit answered ${response.status}`);
    queued.push((await response.json()).id);
  }
  result.queued = queued;

  // The failed job: filter, look at it, retry it by its checkbox.
  await page.selectOption('#console-status', 'failed');
  await page.click('#console-apply');
  const failedRow = page.locator(`#console-jobs tr[data-id="${failed}"]`);
  await failedRow.waitFor();
  await failedRow.locator('a').click();
  await page.locator('#console-job-params').filter({ hasText: 'panic' }).waitFor();
  result.params_shown = await page.textContent('#console-job-params');
  await failedRow.locator('.console-pick').check();
  await page.click('#console-retry');
  await page.locator('[data-testid=console-message]').filter({ hasText: 'retried' }).waitFor();
  result.retry_message = await page.textContent('[data-testid=console-message]');

  // Every queued job (the two and the retry), selected at once and cancelled.
  await page.selectOption('#console-status', 'queued');
  await page.click('#console-apply');
  await page.waitForFunction(() => document.querySelectorAll('#console-jobs tr').length === 3);
  await page.check('#console-all');
  await page.click('#console-cancel');
  await page.locator('[data-testid=console-message]').filter({ hasText: 'cancelled' }).waitFor();
  result.cancel_message = await page.textContent('[data-testid=console-message]');

  await page.click('[data-testid=resume-kinds-hostile]');
  await page.locator('[data-testid=pause-kinds-hostile]').waitFor();
  await page.screenshot({ path: env('KILN_SHOT'), fullPage: true });
  result.own_jobs_hint = await page.textContent('#jobs-empty');
  result.problems = problems;
  console.log('RESULT ' + JSON.stringify(result));
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
