#!/usr/bin/env node
// Browser tests: serve the project with Vite and open test pages in Debian's Chromium
// (WebGPU enabled), then check what each page reports in `window.__result`.
//
//   node test/browser/run.mjs            run all pages
//   node test/browser/run.mjs smoke      run only the named page(s): smoke, mlp, demo, demo-nogpu, demo-presets
//   node test/browser/run.mjs demo --update-screenshot   also copy the mid-training screenshot to demo/screenshot.png
//
// Pages:
//   smoke.html  requests a WebGPU adapter + device and doubles an array in a compute shader
//               (proves WebGPU works in this Chromium)
//   mlp.html    trains a small MLP with the engine from src/index.ts (proves training works)
//   demo        the demo page (demo/, served with demo/vite.config.ts): Names preset until the loss falls and a
//               sample shows, live stats and the per-kernel table, download + safetensors parse, reload and
//               load the saved model, one size of the kernels tab; screenshot in test-results/demo.png
//   demo-nogpu  the demo page with navigator.gpu deleted: the no-WebGPU message appears
//   demo-presets  Classifier to its held-out accuracy; Fine-tune full and LoRA to a sample, Generate, download
//
// Needs /usr/bin/chromium (Debian package `chromium`; `node scripts/setup-gpu.mjs --browser`
// installs it). Without it the tests are skipped (exit 0), except under CI=... (exit 1).
// Env: BROWSER_TEST_TIMEOUT_MS (per page, default 120000); BROWSER_TEST_CHROMIUM (default /usr/bin/chromium).
// Last line printed: `browser: N passed, M failed[, K skipped]`.

import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CHROMIUM = process.env.BROWSER_TEST_CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
];
const TIMEOUT_MS = Number(process.env.BROWSER_TEST_TIMEOUT_MS) || 120_000;
const IN_CI = !!process.env.CI && process.env.CI !== 'false' && process.env.CI !== '0';

const fmtAdapter = (a) =>
  a && typeof a === 'object'
    ? Object.entries(a)
        .filter(([, v]) => v !== '' && v != null)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ') || '(adapter info empty)'
    : String(a);

/** The pages, each with the check of its window.__result (returns an error string or null). */
const PAGES = [
  {
    name: 'smoke',
    url: '/test/browser/smoke.html',
    check(r) {
      if (!Array.isArray(r.values)) return '__result.values is not an array';
      return null;
    },
    summary: (r) => `doubled 1000 floats in ${r.ms} ms`,
  },
  {
    name: 'mlp',
    url: '/test/browser/mlp.html',
    check(r) {
      const l = r.losses;
      if (!Array.isArray(l) || l.length < 2) return `__result.losses is not an array of >= 2 numbers: ${JSON.stringify(l)}`;
      if (!l.every((v) => typeof v === 'number' && Number.isFinite(v))) return `non-finite loss in ${JSON.stringify(l)}`;
      if (!(l[l.length - 1] < l[0])) return `loss did not decrease: first ${l[0]}, last ${l[l.length - 1]}`;
      return null;
    },
    summary: (r) =>
      `${r.losses.length} steps, loss ${r.losses[0].toFixed(4)} -> ${r.losses[r.losses.length - 1].toFixed(4)}` +
      (r.ms != null ? ` in ${r.ms} ms` : ''),
  },
  // The demo page, driven like a person would (see test/browser/demo.mjs).
  { name: 'demo', demo: true },
  { name: 'demo-nogpu', demo: true },
  { name: 'demo-presets', demo: true },
];

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function main() {
  const argv = process.argv.slice(2);
  const updateScreenshot = argv.includes('--update-screenshot');
  const only = argv.filter((a) => !a.startsWith('--'));
  const pages = only.length ? PAGES.filter((p) => only.includes(p.name)) : PAGES;
  if (only.length && pages.length !== only.length) {
    console.error(`unknown page in ${only.join(' ')}; pages: ${PAGES.map((p) => p.name).join(', ')}`);
    return 1;
  }

  if (!fs.existsSync(CHROMIUM)) {
    console.log(
      `browser test SKIPPED: ${CHROMIUM} not found. Install Debian's chromium package ` +
        '(`node scripts/setup-gpu.mjs --browser`, or `apt-get install chromium` as root).' +
        (IN_CI ? ' CI is set, so this counts as a failure.' : ''),
    );
    console.log(IN_CI ? `browser: 0 passed, ${pages.length} failed` : `browser: 0 passed, 0 failed, ${pages.length} skipped`);
    return IN_CI ? 1 : 0;
  }

  // Never let Playwright fetch a browser; we only drive /usr/bin/chromium.
  process.env.PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD = '1';
  const [{ createServer, createLogger }, { chromium }] = await Promise.all([import('vite'), import('playwright-core')]);
  // Vite's warnings and errors go to stdout, in order with ours, so the summary stays the last line.
  const logger = createLogger('warn');
  const viteLog = (msg) => console.log(`browser: [vite] ${String(msg).trimEnd().replace(/\n/g, '\n    ')}`);
  logger.warn = viteLog;
  logger.warnOnce = viteLog;
  logger.error = viteLog;

  let server;
  let demoServer;
  let browser;
  let userDataDir;
  let passed = 0;
  let failed = 0;
  try {
    let base = '';
    const testPages = pages.filter((p) => !p.demo);
    if (testPages.length) {
      const port = await freePort();
      const t0 = Date.now();
      server = await createServer({
        root: ROOT,
        logLevel: 'warn',
        customLogger: logger,
        clearScreen: false,
        server: { host: '127.0.0.1', port, strictPort: true, hmr: false, watch: null, open: false },
        // Pre-bundle the library's one browser dependency up front and discover nothing later: a dependency
        // found mid-run makes Vite re-optimise and answer the page's import with 504 (Outdated Optimize Dep).
        optimizeDeps: { entries: testPages.map((p) => p.url.slice(1)), include: ['wgsl-preprocessor/wgsl-preprocessor.js'], noDiscovery: true },
      });
      await server.listen();
      base = `http://127.0.0.1:${port}`;
      console.log(`browser: vite dev server on ${base} (${Date.now() - t0} ms)`);
    }
    let demoBase = '';
    if (pages.some((p) => p.demo)) {
      const port = await freePort();
      const t0 = Date.now();
      demoServer = await createServer({
        configFile: path.join(ROOT, 'demo', 'vite.config.ts'),
        logLevel: 'warn',
        customLogger: logger,
        clearScreen: false,
        server: { host: '127.0.0.1', port, strictPort: true, hmr: false, watch: null, open: false },
      });
      await demoServer.listen();
      demoBase = `http://127.0.0.1:${port}`;
      console.log(`browser: demo dev server (demo/vite.config.ts) on ${demoBase} (${Date.now() - t0} ms)`);
    }

    const t1 = Date.now();
    userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wgsl-train-chromium-'));
    const context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      args: CHROMIUM_ARGS,
      headless: true,
      timeout: 60_000,
    });
    browser = context;
    console.log(`browser: ${CHROMIUM} ${context.browser()?.version() ?? ''} started (${Date.now() - t1} ms)`);

    const { runDemo, runDemoNoGPU, runDemoPresets } = await import('./demo.mjs');
    const demoEnv = { ROOT, server: demoServer, timeoutMs: TIMEOUT_MS, updateScreenshot, log: (m) => console.log(`browser: ${m}`) };
    for (const p of pages) {
      const err =
        p.name === 'demo'
          ? await runDemo(context, demoBase, demoEnv)
          : p.name === 'demo-nogpu'
            ? await runDemoNoGPU(context, demoBase, demoEnv)
            : p.name === 'demo-presets'
              ? await runDemoPresets(context, demoBase, demoEnv)
              : await runPage(context, base, p);
      if (err) {
        failed++;
        console.log(`browser: FAIL ${p.name}: ${err}`);
      } else passed++;
    }
  } catch (e) {
    failed = Math.max(1, pages.length - passed);
    console.log(`browser: FAIL harness: ${e instanceof Error ? e.stack || e.message : e}`);
  } finally {
    await browser?.close().catch(() => {});
    await server?.close().catch(() => {});
    await demoServer?.close().catch(() => {});
    if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
  }
  console.log(`browser: ${passed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

/** Opens one page; returns null on success or the reason it failed. */
async function runPage(context, base, p) {
  const page = await context.newPage();
  const consoleErrors = [];
  const pageErrors = [];
  const badResponses = [];
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
    else if (m.type() === 'warning' && /webgpu|gpu/i.test(m.text())) console.log(`browser: [${p.name}] console warning: ${m.text()}`);
  });
  page.on('pageerror', (e) => pageErrors.push(e.stack || e.message || String(e)));
  page.on('response', (r) => {
    if (r.status() >= 400) badResponses.push(`${r.status()} ${r.url().replace(base, '')}`);
  });
  page.on('crash', () => pageErrors.push('page crashed'));

  const t0 = Date.now();
  let result;
  let reason = null;
  try {
    await page.goto(base + p.url, { waitUntil: 'load', timeout: 60_000 });
    const left = Math.max(1000, TIMEOUT_MS - (Date.now() - t0));
    await page.waitForFunction(() => window.__result !== undefined, null, { timeout: left, polling: 100 });
    result = await page.evaluate(() => window.__result);
  } catch (e) {
    reason = /Timeout/i.test(String(e))
      ? `no window.__result after ${Math.round((Date.now() - t0) / 1000)} s`
      : `${e instanceof Error ? e.message.split('\n')[0] : e}`;
  }
  const secs = ((Date.now() - t0) / 1000).toFixed(1);

  if (result && typeof result === 'object') {
    if ('adapter' in result) console.log(`browser: [${p.name}] Chromium WebGPU adapter: ${fmtAdapter(result.adapter)}`);
    if (!reason && pageErrors.length) reason = `page error: ${pageErrors[0].split('\n')[0]}`;
    if (!reason && result.ok !== true) reason = `__result.ok is ${JSON.stringify(result.ok)}: ${result.error ?? '(no error message)'}`;
    if (!reason) reason = p.check(result);
    if (!reason) console.log(`browser: ok   ${p.name} (${secs} s): ${p.summary(result)}`);
  } else if (!reason) {
    reason = `window.__result is not an object: ${JSON.stringify(result)}`;
  }
  if (reason) {
    for (const e of pageErrors) console.log(`browser: [${p.name}] page error: ${e}`);
    for (const e of consoleErrors) console.log(`browser: [${p.name}] console error: ${e}`);
    for (const e of badResponses) console.log(`browser: [${p.name}] HTTP ${e}`);
    reason += ` (${secs} s)`;
  }
  await page.close().catch(() => {});
  return reason;
}

process.exit(await main());
