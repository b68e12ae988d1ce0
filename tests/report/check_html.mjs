// Opens an index.html in headless Chromium (playwright-core) and prints a JSON verdict:
//   {"ok": bool, "errors": [...], "plots": [{"id", "ok", "kind"}], "toc": {"links", "broken": [...]}}
// usage: node tests/report/check_html.mjs path/to/index.html [screenshot-prefix]
// With a screenshot prefix, each figure's section is also saved as <prefix><figure id>.png (for review).
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const file = process.argv[2];
if (!file) {
  console.log(JSON.stringify({ ok: false, errors: ['usage: check_html.mjs INDEX.html'] }));
  process.exit(2);
}
const profile = mkdtempSync(join(tmpdir(), 'mechscope-chromium-'));
const errors = [];
let browser;
try {
  // A fresh profile directory per run (playwright passes it as --user-data-dir).
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1200, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = browser.pages()[0] || await browser.newPage();
  page.on('console', (m) => { if (m.type() === 'error') errors.push('console: ' + m.text()); });
  page.on('pageerror', (e) => errors.push('page: ' + e.message));
  // Offline: any request that is not the file itself is an error (the page must be self-contained).
  await page.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith('file:') || url.startsWith('data:') || url.startsWith('blob:')) return route.continue();
    errors.push('network request: ' + url);
    return route.abort();
  });
  await page.goto(pathToFileURL(resolve(file)).href, { waitUntil: 'load', timeout: 30000 });
  await page.waitForTimeout(300);
  const result = await page.evaluate(() => {
    const plots = [...document.querySelectorAll('div.plot')].map((div) => {
      const svg = div.querySelector('.main-svg');
      const gl = div.querySelector('canvas');
      const traces = div.querySelectorAll('.trace, .hm, .heatmaplayer image, .surface, .gl-container canvas').length;
      const kind = div.querySelector('.gl-container canvas') ? 'gl' : 'svg';
      const nonEmpty = !!svg && svg.getBoundingClientRect().height > 50 && (traces > 0 || !!gl);
      return { id: div.id, ok: nonEmpty && Array.isArray(div.data) && div.data.length > 0, kind,
               traces: Array.isArray(div.data) ? div.data.length : 0, frames: (div._transitionData && div._transitionData._frames || []).length };
    });
    const links = [...document.querySelectorAll('nav#toc a[href^="#"]')].map((a) => a.getAttribute('href').slice(1));
    const broken = links.filter((id) => !document.getElementById(id));
    return { plots, toc: { links: links.length, broken } };
  });
  if (process.argv[3]) {
    for (const p of result.plots) {
      const section = page.locator(`#${p.id}`);
      await section.scrollIntoViewIfNeeded();
      await section.screenshot({ path: `${process.argv[3]}${p.id.replace(/^plot-/, '')}.png` });
    }
  }
  const ok = errors.length === 0 && result.plots.length > 0 && result.plots.every((p) => p.ok) && result.toc.broken.length === 0 &&
             result.toc.links >= result.plots.length;
  console.log(JSON.stringify({ ok, errors, ...result }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, errors: [...errors, 'exception: ' + e.message] }));
} finally {
  if (browser) await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
