// Drives Debian's headless chromium (playwright-core, executablePath /usr/bin/chromium)
// through otel2dd's preview pages, for tests/e2e/test_preview.py, and prints one JSON report
// line of what it saw; the Python test makes the assertions.
//
//   node preview_browser.js --url http://127.0.0.1:PORT --http-service S --llm-service L
//        --hostile-trace HEX32 --screenshot out.png
//
// Steps: the trace list shows the HTTP app's trace (found through the service filter); a
// click opens its waterfall at /traces/<id>; a click on a span opens the three columns and
// the per-attribute table at /traces/<id>/spans/<id>; "Copy as JSON" copies the APM span; a
// reload renders the same span from its URL alone; the back button returns to the trace. The
// LLM trace's LLM view shows messages by role and token counts; its llm span's LLM Obs column
// is copied as JSON. The hostile trace's span page is opened: any dialog or page error is
// recorded. Console errors are recorded throughout.
'use strict';

const { chromium } = require('playwright-core');

function args() {
  const a = {};
  const v = process.argv.slice(2);
  for (let i = 0; i < v.length; i += 2) a[v[i].replace(/^--/, '')] = v[i + 1];
  return a;
}

async function main() {
  const a = args();
  const report = { steps: [], dialogs: [], page_errors: [], console_errors: [] };
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    page.setDefaultTimeout(15000);
    page.on('dialog', async (d) => { report.dialogs.push(d.message()); await d.dismiss(); });
    page.on('pageerror', (e) => report.page_errors.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error') report.console_errors.push(m.text()); });
    report.failed_responses = [];
    page.on('response', (r) => { if (r.status() >= 400) report.failed_responses.push(r.status() + ' ' + r.url()); });
    // A page may not run script that another origin serves: count such requests too.
    page.on('request', (r) => {
      if (!r.url().startsWith(a.url)) report.page_errors.push('request off the preview: ' + r.url());
    });

    // ---- the list, filtered by service (the filter form drives the URL) ----
    await page.goto(a.url + '/');
    await page.fill('input[name=service]', a['http-service']);
    await page.click('form.filters button[type=submit]');
    await page.waitForURL(/\?service=/);
    // the URL changes at once, the filtered list a fetch later
    await page.waitForFunction((svc) => {
      const rows = document.querySelectorAll('#traces tbody tr');
      return rows.length > 0 && Array.from(rows).every((r) => r.innerText.includes(svc));
    }, a['http-service']);
    const row = page.locator('#traces tbody tr').first();
    await row.waitFor();
    report.list_row = await row.innerText();
    report.list_url = page.url();

    // ---- the trace view ----
    await row.locator('a').click();
    await page.waitForURL(/\/traces\/[0-9a-f]{32}$/);
    report.trace_url = page.url();
    await page.locator('#waterfall tbody tr').first().waitFor();
    report.waterfall_rows = await page.locator('#waterfall tbody tr').count();
    report.waterfall_bars = await page.locator('#waterfall .wf-bar').count();

    // ---- a span: three columns and the attribute table ----
    await page.locator('#waterfall tbody tr').nth(1).locator('a').click();
    await page.waitForURL(/\/traces\/[0-9a-f]{32}\/spans\/[0-9a-f]{16}$/);
    report.span_url = page.url();
    await page.locator('#attributes tbody tr').first().waitFor();
    report.columns = await page.locator('.cols .col h3').allInnerTexts();
    report.attribute_rows = await page.locator('#attributes tbody tr').count();
    report.attribute_text = await page.locator('#attributes').innerText();
    report.apm_column = await page.locator('#col-apm pre').innerText();
    await page.locator('#col-apm button').click();
    await page.waitForFunction(() => typeof window.__lastCopied === 'string');
    report.apm_copied = await page.evaluate(() => window.__lastCopied);

    // ---- first load from the URL alone, then back ----
    await page.reload();
    await page.locator('#attributes tbody tr').first().waitFor();
    report.reload_title = await page.locator('#span-title').innerText();
    await page.goBack();
    await page.waitForURL(/\/traces\/[0-9a-f]{32}$/);
    await page.waitForFunction(() => document.querySelector('#waterfall tbody tr') &&
                                     !document.querySelector('#span-title'));
    report.back_url = page.url();
    report.back_has_span_detail = await page.locator('#attributes').count();

    // ---- the LLM trace: its LLM view ----
    await page.goto(a.url + '/?service=' + encodeURIComponent(a['llm-service']));
    const llmRow = page.locator('#traces tbody tr').first();
    await llmRow.waitFor();
    await llmRow.locator('a').click();
    await page.waitForURL(/\/traces\/[0-9a-f]{32}$/);
    await page.locator('a[href$="/llm"]').first().click();
    await page.waitForURL(/\/traces\/[0-9a-f]{32}\/llm$/);
    await page.locator('#llm-tree .llm-node').first().waitFor();
    report.llm_url = page.url();
    report.llm_nodes = await page.locator('#llm-tree .llm-node').count();
    report.llm_messages = await page.locator('#llm-tree .msg').evaluateAll((ms) =>
      ms.map((m) => ({ role: m.dataset.role,
                     text: m.querySelector('.content') ? m.querySelector('.content').innerText : '' })));
    report.llm_text = await page.locator('#llm-tree').innerText();
    // the llm span's page: its LLM Obs event copied as JSON
    const llmLink = page.locator('.llm-node:has(> .llm-head .badge.llm:text-is("llm")) > .llm-head a').first();
    await llmLink.click();
    await page.waitForURL(/\/spans\/[0-9a-f]{16}$/);
    await page.locator('#col-llmobs button').waitFor();
    report.llm_span_url = page.url();
    await page.evaluate(() => { delete window.__lastCopied; });
    await page.locator('#col-llmobs button').click();
    await page.waitForFunction(() => typeof window.__lastCopied === 'string');
    report.llmobs_copied = await page.evaluate(() => window.__lastCopied);
    report.llmobs_export = await page.locator('#llmobs-export').innerText();
    await page.screenshot({ path: a.screenshot, fullPage: false }); // README's picture

    // ---- the hostile trace ----
    await page.goto(a.url + '/traces/' + a['hostile-trace']);
    await page.locator('#waterfall tbody tr').first().waitFor();
    report.hostile_waterfall = await page.locator('#waterfall').innerText();
    await page.locator('#waterfall tbody tr').first().locator('a').click();
    await page.waitForURL(/\/spans\/[0-9a-f]{16}$/);
    await page.locator('#attributes tbody tr').first().waitFor();
    report.hostile_text = await page.locator('main').innerText();
    report.hostile_imgs = await page.locator('img').count();
    report.hostile_scripts = await page.locator('script').count();
    await page.goto(a.url + '/?q=' + encodeURIComponent('<script>'));
    await page.locator('#traces').waitFor();
    report.hostile_list = await page.locator('#traces').innerText();

    // ---- lints and status render ----
    await page.goto(a.url + '/lints');
    await page.locator('#lints').waitFor();
    report.lints_text = await page.locator('#lints').innerText();
    await page.goto(a.url + '/status');
    await page.locator('#outputs').waitFor();
    report.status_text = await page.locator('main').innerText();
    report.ok = true;
  } catch (e) {
    report.ok = false;
    report.error = String(e && e.stack || e);
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(report));
}

main();
