// Serves the dashboard outside VS Code for development: webview/preview.html, the built bundle
// (dist/webview, run `npm run build` first) and a recorded events.jsonl, replayed by a fake
// acquireVsCodeApi (webview/preview/shim.js).
//
//   node scripts/previewDashboard.mjs <events.jsonl> [--port 5177]
//       open http://127.0.0.1:5177/?theme=dark (light, high-contrast, high-contrast-light; &live=200 replays live)
//   node scripts/previewDashboard.mjs <events.jsonl> --screenshot <dir> [--width 1280] [--themes dark,light,high-contrast]
//       [--query live=150 --wait 3000 --name live]
//       writes <dir>/dashboard-<theme>[-name].png with Debian's chromium through playwright-core, then exits
//       (--query adds URL parameters, --wait waits that long after the first points, e.g. to catch a live replay mid-run).
/* global document */ // used inside page.waitForFunction (runs in the browser)
import { createServer } from 'node:http';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};
const eventsPath = args[0] !== undefined && !args[0].startsWith('--') ? resolve(args[0]) : null;
if (eventsPath === null || !existsSync(eventsPath)) {
  console.error('usage: node scripts/previewDashboard.mjs <events.jsonl> [--port N] [--screenshot DIR]');
  process.exit(2);
}
if (!existsSync(join(root, 'dist/webview/dashboard.js'))) {
  console.error('previewDashboard: dist/webview/dashboard.js is missing; run `npm run build` first');
  process.exit(2);
}

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.map': 'application/json', '.jsonl': 'application/x-ndjson' };
// Fixed routes only: nothing in the URL becomes a file path.
const routes = new Map([
  ['/', join(root, 'webview/preview.html')],
  ['/dashboard.js', join(root, 'dist/webview/dashboard.js')],
  ['/dashboard.js.map', join(root, 'dist/webview/dashboard.js.map')],
  ['/dashboard.css', join(root, 'dist/webview/dashboard.css')],
  ['/preview/shim.js', join(root, 'webview/preview/shim.js')],
  ['/preview/themes.css', join(root, 'webview/preview/themes.css')],
  ['/events.jsonl', eventsPath],
]);

const server = createServer((req, res) => {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  if (path === '/favicon.ico') {
    res.writeHead(204).end();
    return;
  }
  const file = routes.get(path);
  if (file === undefined || !existsSync(file)) {
    res.writeHead(404).end('not found');
    return;
  }
  res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
  res.end(readFileSync(file));
});

const port = Number(flag('port', args.includes('--screenshot') ? '0' : '5177'));
server.listen(port, '127.0.0.1', async () => {
  const url = `http://127.0.0.1:${server.address().port}/`;
  const shots = flag('screenshot', null);
  if (shots === null) {
    console.log(`dashboard preview at ${url}?theme=dark (Ctrl+C to stop)`);
    return;
  }
  try {
    await screenshots(url, resolve(shots));
  } finally {
    server.close();
  }
});

async function screenshots(url, dir) {
  const { chromium } = await import('playwright-core');
  const executablePath = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
  if (executablePath === undefined) throw new Error('previewDashboard: no chromium found (apt-get install -y chromium)');
  mkdirSync(dir, { recursive: true });
  const browser = await chromium.launch({ executablePath, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
  try {
    const width = Number(flag('width', '1280'));
    for (const theme of flag('themes', 'dark,light,high-contrast').split(',')) {
      const page = await browser.newPage({ viewport: { width, height: 900 }, deviceScaleFactor: 1 });
      const problems = [];
      page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(m.text()); });
      page.on('pageerror', (e) => problems.push(e.message));
      const query = flag('query', null);
      await page.goto(`${url}?theme=${theme}${query === null ? '' : `&${query}`}`);
      await page.waitForFunction(() => Number(document.querySelector('[data-testid="loss-chart"]')?.getAttribute('data-points') ?? 0) > 0, null, { timeout: 15_000 });
      await page.waitForTimeout(Number(flag('wait', '300')));
      const points = await page.$$eval('[data-points]', (els) => els.map((e) => `${e.getAttribute('data-testid')}=${e.getAttribute('data-points')}`));
      const name = flag('name', null);
      const out = join(dir, `dashboard-${theme}${name === null ? '' : `-${name}`}.png`);
      await page.screenshot({ path: out, fullPage: true });
      console.log(`${out}: ${points.join(' ')}`);
      for (const p of problems) console.log(`  console: ${p}`);
      await page.close();
    }
  } finally {
    await browser.close();
  }
}
