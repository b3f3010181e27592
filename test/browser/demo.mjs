// Browser tests of the demo page (demo/), run by test/browser/run.mjs against a Vite dev server started
// with demo/vite.config.ts. Each function returns null on success or the reason it failed.
//
// runDemo: loads the page with small settings (URL parameters), checks the adapter panel, runs the Names
// preset until the training loss is below its first value and a sample is shown, checks throughput,
// GFLOP/s and the per-kernel table, takes a screenshot (test-results/demo.png; with --update-screenshot
// also demo/screenshot.png), downloads the model and parses model.safetensors with src/io/safetensors.ts,
// reloads the page and loads the model saved in IndexedDB, runs one size of the kernels tab, and
// fails on any console error, page error or HTTP error.
// runDemoNoGPU: the same page with navigator.gpu deleted shows the no-WebGPU message.
import fs from 'node:fs';
import path from 'node:path';

// Small enough that SwiftShader (Chromium's CPU WebGPU) shows progress within seconds.
const DEMO_QUERY = '?embd=32&layers=1&heads=4&seq=16&batch=8&lr=0.01&sampleEvery=10&profileEvery=200&sizes=128&minMs=50';

function watch(page, base, log, tag) {
  const problems = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
    else if (m.type() === 'info' && process.env.DEMO_VERBOSE) log(`[${tag}] console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.stack || e.message || e}`));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()} ${r.url().replace(base, '')}`);
  });
  page.on('crash', () => problems.push('page crashed'));
  page.on('worker', (w) => log(`[${tag}] worker started: ${w.url().replace(base, '')}`));
  return problems;
}

const num = async (page, id) => Number.parseFloat((await page.textContent(`[data-testid=${id}]`)) ?? '');

export async function runDemo(context, base, env) {
  const { ROOT, server, timeoutMs, updateScreenshot, log } = env;
  const page = await context.newPage();
  await page.setViewportSize({ width: 1200, height: 1000 });
  const problems = watch(page, base, log, 'demo');
  const t0 = Date.now();
  const secs = () => ((Date.now() - t0) / 1000).toFixed(1);
  const step = async (what, fn) => {
    const t = Date.now();
    await fn();
    log(`[demo] ${what} (${((Date.now() - t) / 1000).toFixed(1)} s)`);
  };
  let reason = null;
  try {
    await step('page loaded, adapter shown', async () => {
      await page.goto(base + '/' + DEMO_QUERY, { waitUntil: 'load', timeout: 60_000 });
      await page.waitForSelector('[data-testid=adapter-name]', { timeout: 60_000 });
    });
    const adapter = (await page.textContent('[data-testid=adapter]')) ?? '';
    for (const f of ['shader-f16', 'subgroups', 'timestamp-query']) if (!adapter.includes(f)) throw new Error(`the adapter panel does not mention ${f}: ${adapter}`);
    log(`[demo] adapter: ${(await page.textContent('[data-testid=adapter-name]'))?.trim()}`);
    // Mixed precision is offered exactly where the device has shader-f16 (Chromium's SwiftShader has not).
    const f16Offered = !(await page.locator('[data-testid=precision] option[value=f16]').isDisabled());
    const f16Enabled = /shader-f16 ✓/.test(adapter);
    if (f16Offered !== f16Enabled) throw new Error(`mixed precision offered: ${f16Offered}, but shader-f16 enabled: ${f16Enabled}`);

    await step('Names: loss below its first value, a sample and the kernel table shown', async () => {
      await page.click('[data-testid=preset-names]');
      await page.waitForFunction(
        () => {
          const loss = document.querySelector('[data-testid=loss]');
          const first = Number(loss?.dataset.first);
          const now = Number.parseFloat(loss?.textContent ?? '');
          const samples = Number(document.querySelector('[data-testid=sample]')?.dataset.count ?? 0);
          const rows = document.querySelectorAll('[data-testid=kernel-table] tbody tr').length;
          const unavailable = !!document.querySelector('[data-testid=kernel-table] .unavailable');
          const err = document.querySelector('[data-testid=error]');
          if (err && !err.hidden) return true; // fail fast below
          return Number.isFinite(first) && now < first && samples >= 1 && (rows > 0 || unavailable);
        },
        null,
        { timeout: timeoutMs, polling: 250 },
      );
    });
    await checkNoError(page);
    const stats = {
      step: await num(page, 'step'),
      loss: await num(page, 'loss'),
      first: Number(await page.getAttribute('[data-testid=loss]', 'data-first')),
      throughput: await num(page, 'throughput'),
      gflops: await num(page, 'gflops'),
      kernels: await page.locator('[data-testid=kernel-table] tbody tr').count(),
      sample: (await page.textContent('[data-testid=sample]'))?.trim().split('\n').slice(1, 4).join(' | '),
    };
    log(`[demo] step ${stats.step}: loss ${stats.first.toFixed(3)} -> ${stats.loss.toFixed(3)}, ${stats.throughput} tokens/s, ${stats.gflops} GFLOP/s, ${stats.kernels} kernel rows; sample: ${stats.sample}`);
    if (!(stats.throughput > 0)) throw new Error(`throughput is not > 0: ${stats.throughput}`);
    if (!(stats.gflops > 0)) throw new Error(`GFLOP/s is not > 0: ${stats.gflops}`);
    if (stats.kernels < 1) throw new Error('the kernel table has no rows (timestamp-query is offered by this adapter)');

    const shotDir = path.join(ROOT, 'test-results');
    fs.mkdirSync(shotDir, { recursive: true });
    const shot = path.join(shotDir, 'demo.png');
    await page.screenshot({ path: shot, fullPage: true });
    log(`[demo] screenshot: ${path.relative(ROOT, shot)}`);
    if (updateScreenshot) {
      // For the README: later in training, when the names look like names (DEMO_SCREENSHOT_STEP, default 250).
      const at = Number(process.env.DEMO_SCREENSHOT_STEP) || 250;
      await page
        .waitForFunction((at) => Number(document.querySelector('[data-testid=step]')?.textContent) >= at, at, { timeout: 180_000, polling: 500 })
        .catch(() => log(`[demo] step ${at} not reached in 180 s; screenshot taken where it is`));
      await page.screenshot({ path: path.join(ROOT, 'demo', 'screenshot.png') });
      log(`[demo] demo/screenshot.png at step ${await page.textContent('[data-testid=step]')}`);
    }

    await step('download: config.json + model.safetensors parse', async () => {
      const files = new Map();
      const done = new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${[...files.keys()].join(', ') || 'no files'} downloaded`)), 60_000);
        page.on('download', async (d) => {
          const p = await d.path();
          files.set(d.suggestedFilename(), fs.readFileSync(p));
          if (files.has('config.json') && files.has('model.safetensors')) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      await page.click('[data-testid=download]');
      await done;
      const config = JSON.parse(files.get('config.json').toString('utf8'));
      const { parseSafetensors } = await server.ssrLoadModule(path.join(ROOT, 'src', 'io', 'safetensors.ts'));
      const { parseGPT2Config, loadGPT2Weights } = await server.ssrLoadModule(path.join(ROOT, 'src', 'io', 'gpt2.ts'));
      const bytes = files.get('model.safetensors');
      const file = parseSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      const weights = loadGPT2Weights(file, parseGPT2Config(config));
      const wte = file.info('transformer.wte.weight');
      if (wte.shape[0] !== 256 || wte.shape[1] !== 32) throw new Error(`transformer.wte.weight is [${wte.shape}], expected [256, 32]`);
      log(`[demo] model.safetensors: ${file.names.length} tensors, ${bytes.length} bytes, ${weights.size} GPT-2 parameters; config n_layer ${config.n_layer}, n_embd ${config.n_embd}`);
    });

    await step('stopped; saved in IndexedDB', async () => {
      await page.click('[data-testid=stop]');
      await page.waitForFunction(() => ['stopped', 'done'].includes(document.querySelector('[data-testid=state]')?.textContent ?? ''), null, { timeout: 60_000 });
      await page.waitForFunction(() => /saved in this browser/.test(document.querySelector('[data-testid=saved-info]')?.textContent ?? ''), null, { timeout: 30_000 });
    });

    await step('reload: load the saved model, sample from it', async () => {
      await page.reload({ waitUntil: 'load' });
      await page.waitForSelector('[data-testid=adapter-name]', { timeout: 60_000 });
      await page.waitForFunction(() => !document.querySelector('[data-testid=load-saved]')?.disabled, null, { timeout: 30_000 });
      await page.click('[data-testid=load-saved]');
      await page.waitForFunction(() => Number(document.querySelector('[data-testid=sample]')?.dataset.count ?? 0) >= 1, null, { timeout: 60_000 });
      await checkNoError(page);
    });

    await step('kernels tab: one size', async () => {
      await page.click('[data-testid=tab-kernels]');
      await page.click('[data-testid=kernels-run]');
      await page.waitForFunction(() => document.querySelector('[data-testid=kernels-status]')?.dataset.done === 'true', null, { timeout: timeoutMs });
      await checkNoError(page);
      const rows = await page.locator('[data-testid=kernels-table] tbody tr').allTextContents();
      if (rows.length < 1) throw new Error('the kernels table has no rows');
      for (const r of rows) log(`[demo] kernels: ${r.replace(/\s+/g, ' ')}`);
      for (const kernel of ['tiled', 'registers']) {
        const row = rows.find((r) => r.includes(kernel));
        if (!row || /WRONG/.test(row)) throw new Error(`the ${kernel} kernel row is missing or wrong: ${row}`);
      }
    });
  } catch (e) {
    reason = `${e instanceof Error ? e.message.split('\n')[0] : e}`;
    try {
      fs.mkdirSync(path.join(ROOT, 'test-results'), { recursive: true });
      await page.screenshot({ path: path.join(ROOT, 'test-results', 'demo-failure.png'), fullPage: true });
    } catch {}
  }
  if (!reason && problems.length) reason = problems[0];
  if (reason) {
    for (const p of problems) log(`[demo] ${p}`);
    reason += ` (${secs()} s)`;
  } else log(`ok   demo (${secs()} s)`);
  await page.close().catch(() => {});
  return reason;
}

async function checkNoError(page) {
  const err = page.locator('[data-testid=error]');
  if (await err.isVisible()) throw new Error(`the page shows an error: ${(await err.textContent())?.trim()}`);
}

export async function runDemoNoGPU(context, base, env) {
  const { log } = env;
  const page = await context.newPage();
  const t0 = Date.now();
  await page.addInitScript(() => {
    delete Navigator.prototype.gpu;
    if (typeof WorkerNavigator !== "undefined") delete WorkerNavigator.prototype.gpu;
  });
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  let reason = null;
  try {
    await page.goto(base + '/', { waitUntil: 'load', timeout: 60_000 });
    await page.waitForSelector('[data-testid=error]:visible', { timeout: 30_000 });
    const text = (await page.textContent('[data-testid=error]')) ?? '';
    if (!/WebGPU is not available/.test(text) || !/How to get WebGPU/.test(text)) reason = `unexpected message: ${text}`;
    else if (!(await page.isDisabled('[data-testid=preset-names]'))) reason = 'the presets are not disabled';
    else if (problems.length) reason = problems[0];
    if (!reason) log(`ok   demo-nogpu (${((Date.now() - t0) / 1000).toFixed(1)} s): "${text.slice(0, 90)}…"`);
  } catch (e) {
    reason = `${e instanceof Error ? e.message.split('\n')[0] : e}`;
  }
  await page.close().catch(() => {});
  return reason;
}

// runDemoPresets: the other two presets, briefly: Classifier to its held-out accuracy; Fine-tune (full,
// then LoRA) from the bundled tiny model to a generated sample, Generate from a prompt, and a download of
// the LoRA-merged model that must load as a GPT-2 checkpoint.
export async function runDemoPresets(context, base, env) {
  const { ROOT, server, timeoutMs, log } = env;
  const page = await context.newPage();
  await page.setViewportSize({ width: 1200, height: 1000 });
  const problems = watch(page, base, log, 'demo-presets');
  const t0 = Date.now();
  const step = async (what, fn) => {
    const t = Date.now();
    await fn();
    await checkNoError(page);
    log(`[demo-presets] ${what} (${((Date.now() - t) / 1000).toFixed(1)} s)`);
  };
  const samples = () => page.evaluate(() => Number(document.querySelector('[data-testid=sample]')?.dataset.count ?? 0));
  const waitSamples = (n) =>
    page.waitForFunction(
      (n) => {
        const err = document.querySelector('[data-testid=error]');
        return (err && !err.hidden) || Number(document.querySelector('[data-testid=sample]')?.dataset.count ?? 0) >= n;
      },
      n,
      { timeout: timeoutMs, polling: 250 },
    );
  const stop = async () => {
    await page.click('[data-testid=stop]');
    await page.waitForFunction(() => ['stopped', 'done'].includes(document.querySelector('[data-testid=state]')?.textContent ?? ''), null, { timeout: 60_000 });
  };
  let reason = null;
  try {
    await page.goto(base + '/?steps=40&sampleEvery=10&profileEvery=0&genTokens=24', { waitUntil: 'load', timeout: 60_000 });
    await page.waitForSelector('[data-testid=adapter-name]', { timeout: 60_000 });
    await step('Classifier: held-out accuracy', async () => {
      await page.click('[data-testid=preset-classifier]');
      await page.waitForFunction(() => document.querySelector('[data-testid=state]')?.textContent === 'done' || !document.querySelector('[data-testid=error]')?.hidden, null, { timeout: timeoutMs });
      await checkNoError(page);
      const held = (await page.textContent('[data-testid=heldout]')) ?? '';
      const acc = Number(/([\d.]+)% acc/.exec(held)?.[1]);
      log(`[demo-presets] classifier after 40 steps: held-out ${held}, ${await page.textContent('[data-testid=throughput]')} samples/s`);
      if (!(acc > 60)) throw new Error(`held-out accuracy ${held} is not above 60%`);
    });
    await step('Fine-tune (full): a sample', async () => {
      await page.click('[data-testid=preset-finetune]');
      await waitSamples(1);
      await stop();
    });
    await step('Fine-tune (LoRA): a sample, Generate, download', async () => {
      await page.selectOption('#ft-mode', 'lora');
      await page.click('[data-testid=start]');
      await waitSamples(1);
      await stop();
      const before = await samples();
      await page.fill('#ft-prompt', 'The lighthouse');
      await page.click('[data-testid=generate]');
      await waitSamples(before + 1);
      const text = (await page.textContent('[data-testid=sample]')) ?? '';
      if (!text.includes('The lighthouse')) throw new Error(`the generated text does not start from the prompt: ${text}`);
      log(`[demo-presets] generated: ${JSON.stringify(text.split('\n').slice(1).join(' ').slice(0, 100))}`);
      const files = new Map();
      const done = new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the download did not finish')), 60_000);
        page.on('download', async (d) => {
          files.set(d.suggestedFilename(), fs.readFileSync(await d.path()));
          if (files.size === 2) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      await page.click('[data-testid=download]');
      await done;
      const { parseGPT2Config, loadGPT2WeightsFromBytes } = await server.ssrLoadModule(path.join(ROOT, 'src', 'io', 'gpt2.ts'));
      const b = files.get('model.safetensors');
      const w = loadGPT2WeightsFromBytes(new Uint8Array(b.buffer, b.byteOffset, b.byteLength), parseGPT2Config(JSON.parse(files.get('config.json').toString('utf8'))));
      if ([...w.keys()].some((k) => k.includes('lora'))) throw new Error('the downloaded model still has LoRA tensors');
    });
  } catch (e) {
    reason = `${e instanceof Error ? e.message.split('\n')[0] : e}`;
  }
  if (!reason && problems.length) reason = problems[0];
  if (reason) {
    for (const p of problems) log(`[demo-presets] ${p}`);
    reason += ` (${((Date.now() - t0) / 1000).toFixed(1)} s)`;
  } else log(`ok   demo-presets (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  await page.close().catch(() => {});
  return reason;
}
