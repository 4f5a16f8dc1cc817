// Checks a pocketcv report page the way a person sees it: headless Chromium (Debian's
// `chromium`, driven by playwright-core from tools/oracle) loads report.html with the network
// blocked, and the check fails on
//   - any console error or uncaught page error,
//   - any request that leaves the page (everything must be inline: the page works offline),
//   - a chart canvas whose pixels are blank (too few painted pixels or no variance),
//   - a picture (data: URI) that did not decode,
//   - a missing stage card.
// It saves a full-page screenshot and prints one JSON line with what it measured.
//
//   node tools/report/check_report.mjs --report OUT/report.html --screenshot OUT/report.png
//        [--card-shots] [--allow-no-charts] [--chromium /usr/bin/chromium]
// --card-shots also saves the first screen and each card on its own (report.top.png,
// report.train.png, ...).
// Exit status: 0 pass, 1 a check failed, 2 usage / environment (chromium or node_modules missing).
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
function opt(name, def) {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : def;
}
const reportPath = opt('--report');
const shotPath = opt('--screenshot');
const chromium = opt('--chromium', '/usr/bin/chromium');
const allowNoCharts = args.includes('--allow-no-charts');
if (!reportPath) {
  console.error('usage: check_report.mjs --report report.html [--screenshot out.png] [--allow-no-charts]');
  process.exit(2);
}
if (!fs.existsSync(chromium)) {
  console.error(`SKIP: ${chromium} not found (apt-get install chromium)`);
  process.exit(2);
}
const require = createRequire(path.join(here, '../oracle/package.json'));
let playwright;
try {
  playwright = require('playwright-core');
} catch (e) {
  console.error('SKIP: tools/oracle/node_modules has no playwright-core (scripts/setup --with-oracles)');
  process.exit(2);
}

const failures = [];
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pcv-report-chromium-'));
// A fresh profile per run (playwright passes it to chromium as --user-data-dir).
const context = await playwright.chromium.launchPersistentContext(userDataDir, {
  executablePath: chromium,
  headless: true,
  args: ['--no-sandbox', '--headless', '--disable-gpu', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync'],
  viewport: { width: 1280, height: 900 },
  deviceScaleFactor: 1,
});
try {
  const page = await context.newPage();
  const url = pathToFileURL(path.resolve(reportPath)).href;
  page.on('console', (m) => { if (m.type() === 'error') failures.push(`console error: ${m.text()}`); });
  page.on('pageerror', (e) => failures.push(`page error: ${e.message}`));
  await page.route('**/*', (route) => {
    const u = route.request().url();
    if (u === url || u.startsWith('data:')) return route.continue();
    failures.push(`request leaves the page: ${u}`);
    return route.abort();
  });
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForTimeout(300);

  const m = await page.evaluate(() => {
    const charts = [...document.querySelectorAll('canvas[data-chart]')].map((c) => {
      const ctx = c.getContext('2d');
      const { width: w, height: h } = c;
      if (!w || !h) return { chart: c.dataset.chart, width: w, height: h, painted: 0, variance: 0 };
      const d = ctx.getImageData(0, 0, w, h).data;
      let painted = 0, sum = 0, sum2 = 0;
      const n = w * h;
      for (let i = 0; i < d.length; i += 4) {
        // Composite over white, as the card shows it.
        const a = d[i + 3] / 255;
        const lum = (0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2]) * a + 255 * (1 - a);
        if (d[i + 3] > 0) painted++;
        sum += lum; sum2 += lum * lum;
      }
      const mean = sum / n;
      return { chart: c.dataset.chart, width: w, height: h, painted: painted / n, variance: sum2 / n - mean * mean };
    });
    const images = [...document.querySelectorAll('img')].map((i) => ({ alt: i.alt, ok: i.complete && i.naturalWidth > 0 }));
    const stages = [...document.querySelectorAll('section.card')].map((s) => s.id);
    const noCharts = document.querySelectorAll('.nochart').length;
    return { charts, images, stages, noCharts, title: document.title, height: document.body.scrollHeight };
  });

  for (const c of m.charts) {
    if (c.painted < 0.005 || c.variance < 20) {
      failures.push(`chart '${c.chart}' looks blank (painted ${(100 * c.painted).toFixed(2)}%, variance ${c.variance.toFixed(1)})`);
    }
  }
  if (!allowNoCharts) {
    if (m.noCharts > 0) failures.push(`${m.noCharts} chart(s) unavailable (chart.js not embedded?)`);
    if (m.charts.length === 0) failures.push('no chart canvas on the page');
  }
  m.images.filter((i) => !i.ok).forEach((i) => failures.push(`picture '${i.alt}' did not decode`));
  for (const id of ['train', 'convert', 'optimize', 'integrate', 'predict']) {
    if (!m.stages.includes(`stage-${id}`)) failures.push(`no card for stage '${id}'`);
  }
  if (shotPath) {
    await page.screenshot({ path: shotPath, fullPage: true });
    // Also one picture per card (report.train.png, ...): easier to look at than one tall page.
    if (args.includes('--card-shots')) {
      const base = shotPath.replace(/\.png$/, '');
      await page.screenshot({ path: `${base}.top.png`, clip: { x: 0, y: 0, width: 1280, height: 900 } });
      for (const id of m.stages) {
        await page.locator(`#${id}`).screenshot({ path: `${base}.${id.replace('stage-', '')}.png` });
      }
    }
  }
  console.log(JSON.stringify({ ok: failures.length === 0, failures, ...m, screenshot: shotPath || null }));
} finally {
  await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
process.exit(failures.length === 0 ? 0 : 1);
