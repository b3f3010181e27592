// The demo page: presets, controls and live statistics; training runs in ./worker.ts, the matmul benchmark
// in ./bench-worker.ts (TF.js, when asked for, on this thread through a dynamic import of ./tfjs-bench.ts).
// URL parameters override the presets' settings (used by the browser tests to keep runs short):
//   ?lr=&batch=&seq=&embd=&layers=&heads=&optimizer=&steps=&sampleEvery=&profileEvery=&genTokens=&sizes=128,256&minMs=
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import './style.css';
import type { AdapterMessage, BenchRow, FromBench, FromWorker, KernelRow, ModelFiles, PresetName, Settings, ToWorker } from './protocol.ts';
import { loadModel, saveModel, type SavedModel } from './store.ts';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);

// ---------------------------------------------------------------- settings

const DEFAULTS: Record<PresetName, Settings> = {
  names: {
    lr: 3e-3, batch: 16, seq: 32, embd: 48, layers: 2, heads: 4, optimizer: 'adamw', steps: 3000,
    sampleEvery: 25, profileEvery: 250, mode: 'full', loraRank: 8, prompt: '', temperature: 0.8, genTokens: 40,
  },
  finetune: {
    lr: 1e-3, batch: 4, seq: 128, embd: 64, layers: 2, heads: 4, optimizer: 'adamw', steps: 400,
    sampleEvery: 25, profileEvery: 250, mode: 'full', loraRank: 8, prompt: 'The lighthouse', temperature: 0.8, genTokens: 96,
  },
  classifier: {
    lr: 1e-2, batch: 32, seq: 1, embd: 32, layers: 1, heads: 1, optimizer: 'adam', steps: 600,
    sampleEvery: 20, profileEvery: 250, mode: 'full', loraRank: 8, prompt: '', temperature: 1, genTokens: 0,
  },
};

/** On a software adapter (SwiftShader, lavapipe, WARP) smaller models, so that a preset shows progress in seconds. */
const SOFTWARE: Partial<Record<PresetName, Partial<Settings>>> = {
  names: { embd: 32, layers: 1, heads: 4, seq: 16, batch: 8, lr: 1e-2, steps: 1500, sampleEvery: 20 },
  finetune: { batch: 2, seq: 64, steps: 200, genTokens: 48 },
};
let softwareAdapter = false;

const NUMERIC = ['lr', 'batch', 'seq', 'embd', 'layers', 'heads', 'steps', 'sampleEvery', 'profileEvery', 'genTokens'] as const;

function withUrl(s: Settings): Settings {
  const out = { ...s };
  for (const k of NUMERIC) {
    const v = params.get(k);
    if (v !== null && Number.isFinite(Number(v))) out[k] = Number(v);
  }
  const opt = params.get('optimizer');
  if (opt === 'adamw' || opt === 'adam' || opt === 'sgd') out.optimizer = opt;
  return out;
}

const FIELDS: Record<string, keyof Settings> = {
  's-lr': 'lr', 's-batch': 'batch', 's-seq': 'seq', 's-embd': 'embd', 's-layers': 'layers', 's-heads': 'heads', 's-steps': 'steps',
};

let preset: PresetName = 'names';
let presetSettings: Settings = withUrl(DEFAULTS.names);

function showSettings(p: PresetName) {
  preset = p;
  presetSettings = withUrl({ ...DEFAULTS[p], ...(softwareAdapter ? SOFTWARE[p] : {}) });
  for (const [id, key] of Object.entries(FIELDS)) $<HTMLInputElement>(id).value = String(presetSettings[key]);
  $<HTMLSelectElement>('s-optimizer').value = presetSettings.optimizer;
  for (const el of Array.from(document.querySelectorAll<HTMLElement>('[data-gpt]'))) el.hidden = p === 'classifier';
  for (const el of Array.from(document.querySelectorAll<HTMLElement>('[data-size]'))) el.hidden = p === 'finetune' || (p === 'classifier' && el.hasAttribute('data-gpt'));
  $('s-embd-label').textContent = p === 'classifier' ? 'Hidden units' : 'Width (n_embd)';
  $('finetune-panel').hidden = p !== 'finetune';
  $('throughput-unit').textContent = p === 'classifier' ? 'samples/s' : 'tokens/s';
  $('sample-title').textContent = p === 'classifier' ? 'Predictions on held-out birds' : p === 'names' ? 'Generated names' : 'Generated text';
  for (const b of Array.from(document.querySelectorAll<HTMLElement>('.preset'))) b.classList.toggle('active', b.dataset.preset === p);
}

function readSettings(): Settings {
  const s = { ...presetSettings };
  for (const [id, key] of Object.entries(FIELDS)) {
    const v = Number($<HTMLInputElement>(id).value);
    if (!Number.isFinite(v) || v <= 0) throw new Error(`${id.slice(2)} must be a positive number`);
    (s as unknown as Record<string, number>)[key] = key === 'lr' ? v : Math.round(v);
  }
  s.optimizer = $<HTMLSelectElement>('s-optimizer').value as Settings['optimizer'];
  s.precision = $<HTMLSelectElement>('s-precision').value as 'f32' | 'f16';
  s.mode = $<HTMLSelectElement>('ft-mode').value as Settings['mode'];
  s.loraRank = Math.max(1, Math.round(Number($<HTMLInputElement>('ft-rank').value) || 8));
  s.prompt = $<HTMLInputElement>('ft-prompt').value;
  s.temperature = Number($<HTMLInputElement>('ft-temp').value) || 0;
  if (preset !== 'classifier' && s.embd % s.heads !== 0) throw new Error(`width ${s.embd} must be divisible by heads ${s.heads}`);
  return s;
}

// ---------------------------------------------------------------- errors

const HOW_TO_ENABLE =
  'How to get WebGPU: use a current Chrome or Edge (113 or later) on Windows, macOS or ChromeOS, Chrome 121+ on Android, ' +
  'Safari 26+, or Firefox 141+ on Windows. On Linux, Chrome needs chrome://flags/#enable-unsafe-webgpu (and often ' +
  '#enable-vulkan) turned on. The page must come from https:// or from localhost / 127.0.0.1, and hardware acceleration ' +
  'must be on (chrome://settings/system). chrome://gpu shows whether WebGPU is available and why not.';

function showError(text: string) {
  const el = $('error');
  el.textContent = text;
  el.hidden = false;
}
function clearError() {
  $('error').hidden = true;
  $('error').textContent = '';
}

let noWebGPU = false;
function showNoWebGPU(why: string) {
  noWebGPU = true;
  showError(`WebGPU is not available, so nothing can be trained here. ${why} ${HOW_TO_ENABLE}`);
  $('adapter').textContent = 'No WebGPU adapter.';
  for (const b of Array.from(document.querySelectorAll<HTMLButtonElement>('.preset, #start, #bench-run'))) b.disabled = true;
}

// ---------------------------------------------------------------- the training worker

let worker: Worker | null = null;
let adapterShown = false;

function getWorker(): Worker {
  if (worker) return worker;
  const w = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'wgsl-train' });
  w.onmessage = (ev: MessageEvent<FromWorker>) => onWorkerMessage(ev.data);
  w.onerror = (ev) => {
    ev.preventDefault();
    showError(`The training worker failed: ${ev.message || 'unknown error (see the console)'}`);
    setState('stopped');
  };
  w.postMessage({ type: 'init' } satisfies ToWorker);
  worker = w;
  return w;
}

const send = (m: ToWorker, transfer: Transferable[] = []) => getWorker().postMessage(m, transfer);

function showAdapter(m: AdapterMessage) {
  adapterShown = true;
  softwareAdapter = m.info.isFallback || /swiftshader|llvmpipe|lavapipe|software|warp/i.test(`${m.info.architecture} ${m.info.device} ${m.info.description}`);
  if (softwareAdapter && runState === 'idle') showSettings(preset);
  const i = m.info;
  const f16 = m.deviceFeatures.includes('shader-f16');
  const half = $<HTMLSelectElement>('s-precision').querySelector<HTMLOptionElement>('option[value="f16"]')!;
  half.disabled = !f16;
  half.title = f16 ? 'mixed precision: f16 activations and matmul operands, f32 master weights, dynamic loss scaling' : 'needs the adapter feature shader-f16';
  const want = ['shader-f16', 'subgroups', 'timestamp-query'];
  const badge = (f: string) => `<span class="badge ${m.deviceFeatures.includes(f) ? 'on' : 'off'}">${f} ${m.deviceFeatures.includes(f) ? '✓' : '✗'}</span>`;
  const mib = (n: number) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(0)} MiB` : n.toLocaleString('en-US'));
  const limits = Object.entries(m.limits)
    .map(([k, v]) => `<span class="limit"><span class="k">${k}</span> ${/Size$/.test(k) && v >= 1 << 20 ? mib(v) : v.toLocaleString('en-US')}</span>`)
    .join('');
  const name = [i.vendor, i.architecture, i.description || i.device].filter(Boolean).join(' · ') || 'unnamed adapter';
  $('adapter').innerHTML =
    `<div><b>Adapter</b> <span data-testid="adapter-name">${escapeHtml(name)}</span>${softwareAdapter ? ' <span class="badge warn">software adapter: slow, so the presets use small models</span>' : ''}</div>` +
    `<div class="features">${want.map(badge).join(' ')} <span class="muted">(✓: enabled on the device)</span></div>` +
    `<details><summary>limits</summary><div class="limits">${limits}</div><div class="muted">adapter features: ${escapeHtml(i.features.join(', '))}</div></details>`;
}

function escapeHtml(s: string) {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// ---------------------------------------------------------------- live state

type RunState = 'idle' | 'starting' | 'running' | 'paused' | 'stopped' | 'done';
let runState: RunState = 'idle';
let hasModel = false;
let firstLoss: number | null = null;
let lastStep = 0;
let lastAutosaveAt = 0;
let lastAutosaveStep = -1;

function setState(s: RunState) {
  runState = s;
  $('state').textContent = s;
  $<HTMLButtonElement>('pause').disabled = s !== 'running';
  $<HTMLButtonElement>('resume').disabled = !(s === 'paused' || ((s === 'stopped' || s === 'done') && hasModel));
  $<HTMLButtonElement>('stop').disabled = !(s === 'running' || s === 'paused');
  $<HTMLButtonElement>('download').disabled = !hasModel || s === 'starting';
  $<HTMLButtonElement>('start').disabled = noWebGPU;
}

const fmt = (v: number) => (!Number.isFinite(v) ? '–' : Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3));

function onWorkerMessage(m: FromWorker) {
  switch (m.type) {
    case 'adapter':
      showAdapter(m);
      return;
    case 'state':
      hasModel = true;
      setState(m.state);
      if (m.state !== 'running' && m.note !== 'loaded') autosave();
      return;
    case 'model-info':
      $('model-info').textContent = m.text;
      return;
    case 'progress': {
      if (firstLoss === null && m.points.length) {
        firstLoss = m.points[0][1];
        $('loss').dataset.first = String(firstLoss);
      }
      lastStep = m.step;
      $('step').textContent = String(m.step);
      $('loss').textContent = m.loss.toFixed(4);
      $('ms').textContent = fmt(m.msPerStep);
      $('throughput').textContent = fmt(m.throughput);
      $('throughput-unit').textContent = m.unit;
      $('gflops').textContent = fmt(m.gflops);
      for (const [step, loss] of m.points) chart.add(step, loss, null);
      if (performance.now() - lastAutosaveAt > 60_000) autosave();
      return;
    }
    case 'eval':
      $('heldout').textContent = m.loss.toFixed(4) + (m.accuracy !== undefined ? ` · ${(m.accuracy * 100).toFixed(1)}% acc` : '');
      chart.add(m.step, null, m.loss);
      return;
    case 'sample':
      $('sample').textContent = `step ${m.step}\n${m.text}`;
      $('sample').dataset.count = String(Number($('sample').dataset.count ?? 0) + 1);
      return;
    case 'kernels':
      showKernels(m.step, m.rows, m.totalMs);
      return;
    case 'kernels-unavailable':
      $('kernel-table').innerHTML = `<p class="unavailable">Per-kernel GPU times are not offered by this adapter: ${escapeHtml(m.reason)}.</p>`;
      return;
    case 'model':
      onModel(m);
      return;
    case 'log':
      console.info(m.text);
      return;
    case 'error':
      if (m.name === 'WebGPUUnavailableError') showNoWebGPU(m.message);
      else showError(`${m.name}: ${m.message}`);
      if (runState === 'starting') setState(hasModel ? 'stopped' : 'idle');
      return;
    case 'lost':
      onLost(m.reason);
      return;
  }
}

function onLost(reason: string) {
  const saved = savedInfo ? ` The last saved model (${savedInfo}) is still in this browser's storage: press "Load saved" to continue from it.` : '';
  showError(`The GPU device was lost (${reason}), so training stopped.${saved} Press a preset or "Load saved" to start on a new device.`);
  worker?.terminate();
  worker = null;
  hasModel = false;
  setState('stopped');
}

let pendingDownload = false;
let savedInfo = '';

function autosave() {
  if (!hasModel || !worker || lastStep === lastAutosaveStep) return;
  lastAutosaveAt = performance.now();
  lastAutosaveStep = lastStep;
  send({ type: 'export', reason: 'autosave' });
}

function onModel(m: Extract<FromWorker, { type: 'model' }>) {
  const saved: SavedModel = { preset: m.preset, step: m.step, savedAt: new Date().toISOString(), summary: m.summary, files: m.files };
  saveModel(saved)
    .then(() => showSaved(saved))
    .catch((e: unknown) => console.warn(`could not keep the model in IndexedDB: ${e}`));
  if (m.reason === 'download' || pendingDownload) {
    pendingDownload = false;
    const stem = `wgsl-train-${m.preset}-step${m.step}`;
    downloadBlob(new Blob([m.files.configText], { type: 'application/json' }), 'config.json');
    downloadBlob(new Blob([m.files.weights as BlobPart], { type: 'application/octet-stream' }), 'model.safetensors');
    $('saved-info').title = stem;
  }
}

function downloadBlob(blob: Blob, name: string) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

function showSaved(s: SavedModel) {
  savedInfo = `${s.preset}, step ${s.step}, ${new Date(s.savedAt).toLocaleTimeString()}`;
  $('saved-info').textContent = `saved in this browser: ${savedInfo}`;
  $<HTMLButtonElement>('load-saved').disabled = noWebGPU;
  const opt = document.querySelector<HTMLOptionElement>('#ft-source option[value=saved]')!;
  opt.disabled = s.preset === 'classifier';
}

// ---------------------------------------------------------------- chart

class LossChart {
  private readonly xs: number[] = [];
  private readonly train: (number | null)[] = [];
  private readonly held: (number | null)[] = [];
  private plot: uPlot | null = null;
  private queued = false;

  constructor(private readonly el: HTMLElement) {}

  reset() {
    this.xs.length = this.train.length = this.held.length = 0;
    this.draw();
  }

  add(step: number, train: number | null, held: number | null) {
    const i = this.xs.length - 1;
    if (i >= 0 && this.xs[i] === step) {
      if (train !== null) this.train[i] = train;
      if (held !== null) this.held[i] = held;
    } else {
      this.xs.push(step);
      this.train.push(train);
      this.held.push(held);
    }
    if (!this.queued) {
      this.queued = true;
      requestAnimationFrame(() => {
        this.queued = false;
        this.draw();
      });
    }
  }

  private size() {
    return { width: Math.max(280, this.el.clientWidth), height: 260 };
  }

  private draw() {
    const data: uPlot.AlignedData = [this.xs, this.train, this.held];
    if (!this.plot) {
      this.plot = new uPlot(
        {
          ...this.size(),
          scales: { x: { time: false } },
          axes: [{ label: 'step' }, { label: 'loss' }],
          series: [
            { label: 'step' },
            { label: 'train', stroke: '#2563eb', width: 1.5, spanGaps: true, points: { show: false } },
            { label: 'held-out', stroke: '#dc2626', width: 2, spanGaps: true, points: { show: true, size: 5 } },
          ],
        },
        data,
        this.el,
      );
      new ResizeObserver(() => this.plot?.setSize(this.size())).observe(this.el);
    } else this.plot.setData(data);
  }
}

const chart = new LossChart($('chart'));

function showKernels(step: number, rows: KernelRow[], totalMs: number) {
  const body = rows
    .map((r) => `<tr><td>${escapeHtml(r.kernel)}</td><td>${r.calls}</td><td>${r.ms.toFixed(3)}</td><td>${((100 * r.ms) / totalMs).toFixed(1)}%</td><td>${r.gflops > 0 ? fmt(r.gflops) : ''}</td></tr>`)
    .join('');
  $('kernel-table').innerHTML =
    `<table><thead><tr><th>kernel</th><th>calls</th><th>GPU ms</th><th>share</th><th>GFLOP/s</th></tr></thead><tbody>${body}</tbody>` +
    `<tfoot><tr><td>all (step ${step})</td><td>${rows.reduce((a, r) => a + r.calls, 0)}</td><td>${totalMs.toFixed(3)}</td><td></td><td></td></tr></tfoot></table>`;
}

// ---------------------------------------------------------------- actions

const bundledUrl = (f: string) => new URL(`${import.meta.env.BASE_URL}models/tiny/${f}`, location.href).href;
let dropped: { config?: File; weights?: File } = {};

async function modelForFinetune(): Promise<ModelFiles> {
  const source = $<HTMLSelectElement>('ft-source').value;
  if (source === 'dropped') {
    if (!dropped.config || !dropped.weights) throw new Error('drop both config.json and model.safetensors of a GPT-2 model');
    return { configText: await dropped.config.text(), weights: new Uint8Array(await dropped.weights.arrayBuffer()) };
  }
  if (source === 'saved') {
    const s = await loadModel();
    if (!s || s.preset === 'classifier') throw new Error('no GPT model is saved in this browser yet');
    return { configText: s.files.configText, weights: s.files.weights.slice() };
  }
  const [c, w] = await Promise.all([fetch(bundledUrl('config.json')), fetch(bundledUrl('model.safetensors'))]);
  if (!c.ok || !w.ok) throw new Error(`could not fetch the bundled model (${c.status}, ${w.status})`);
  return { configText: await c.text(), weights: new Uint8Array(await w.arrayBuffer()) };
}

function resetLive() {
  clearError();
  firstLoss = null;
  lastStep = 0;
  lastAutosaveStep = -1;
  lastAutosaveAt = performance.now();
  for (const id of ['loss', 'heldout', 'ms', 'throughput', 'gflops']) $(id).textContent = '–';
  delete $('loss').dataset.first;
  $('step').textContent = '0';
  $('sample').textContent = 'Compiling the model…';
  $('sample').dataset.count = '0';
  $('kernel-table').innerHTML = '<p class="muted">Appears a few steps into training.</p>';
  chart.reset();
}

async function start() {
  if (noWebGPU) return;
  try {
    const settings = readSettings();
    resetLive();
    setState('starting');
    if (preset === 'finetune') {
      const init = await modelForFinetune();
      send({ type: 'start', preset, settings, text: $<HTMLTextAreaElement>('ft-text').value, init }, [init.weights.buffer]);
    } else send({ type: 'start', preset, settings });
  } catch (e) {
    showError((e as Error).message);
    setState(hasModel ? 'stopped' : 'idle');
  }
}

async function loadSaved() {
  try {
    const s = await loadModel();
    if (!s) throw new Error('no model is saved in this browser yet');
    showSettings(s.preset);
    const settings = readSettings();
    if (s.preset === 'classifier') {
      const layers = (JSON.parse(s.files.configText) as { layers?: number[] }).layers;
      if (layers?.[1]) settings.embd = layers[1];
    }
    resetLive();
    $('sample').textContent = 'Loading the saved model…';
    setState('starting');
    const init = { configText: s.files.configText, weights: s.files.weights.slice() };
    send({ type: 'load', preset: s.preset, settings, init, text: $<HTMLTextAreaElement>('ft-text').value }, [init.weights.buffer]);
  } catch (e) {
    showError((e as Error).message);
  }
}

async function onFiles(files: FileList | File[]) {
  for (const f of Array.from(files)) {
    if (/\.safetensors$/i.test(f.name)) dropped.weights = f;
    else if (/\.json$/i.test(f.name)) dropped.config = f;
    else if (/\.txt$/i.test(f.name) || f.type.startsWith('text/')) $<HTMLTextAreaElement>('ft-text').value = await f.text();
  }
  const opt = document.querySelector<HTMLOptionElement>('#ft-source option[value=dropped]')!;
  if (dropped.config && dropped.weights) {
    opt.disabled = false;
    opt.textContent = `dropped GPT-2 folder (${(dropped.weights.size / 1e6).toFixed(1)} MB)`;
    $<HTMLSelectElement>('ft-source').value = 'dropped';
  }
}

// ---------------------------------------------------------------- kernels tab

const BENCH_SIZES = [64, 128, 256, 512, 1024, 2048];
const benchDefault = (params.get('sizes') ?? '128,256,512').split(',').map(Number);
const benchRows: BenchRow[] = [];
let benchAdapter = '';
let benchWorker: Worker | null = null;
let benchPlot: uPlot | null = null;

function setupBench() {
  $('bench-sizes').innerHTML = BENCH_SIZES.map(
    (n) => `<label><input type="checkbox" value="${n}" ${benchDefault.includes(n) ? 'checked' : ''}/> ${n}</label>`,
  ).join(' ');
}

function drawBench() {
  const sizes = [...new Set(benchRows.map((r) => r.size))].sort((a, b) => a - b);
  const impls = [...new Set(benchRows.map((r) => r.impl))];
  const colors = ['#2563eb', '#16a34a', '#dc2626', '#9333ea'];
  const data: uPlot.AlignedData = [
    sizes,
    ...impls.map((impl) => sizes.map((n) => benchRows.find((r) => r.impl === impl && r.size === n && Number.isFinite(r.gflops))?.gflops ?? null)),
  ];
  benchPlot?.destroy();
  const el = $('bench-chart');
  benchPlot = new uPlot(
    {
      width: Math.max(280, el.clientWidth),
      height: 260,
      scales: { x: { time: false, distr: 3, log: 2 } },
      axes: [{ label: 'matrix size n (n×n · n×n)' }, { label: 'GFLOP/s' }],
      series: [{ label: 'n' }, ...impls.map((impl, i) => ({ label: impl, stroke: colors[i % colors.length], width: 2, points: { show: true, size: 6 } }))],
    },
    data,
    el,
  );
  $('bench-table').querySelector('tbody')!.innerHTML = benchRows
    .map(
      (r) =>
        `<tr${r.note?.startsWith('WRONG') ? ' class="bad"' : ''}><td>${escapeHtml(r.impl)}</td><td>${r.size}</td><td>${fmt(r.ms_median)}</td><td>${fmt(r.gflops)}</td><td>${r.iters}</td>` +
        `<td>${r.max_error === null ? '' : r.max_error.toExponential(1)}${r.note ? ` <span class="muted">${escapeHtml(r.note)}</span>` : ''}</td></tr>`,
    )
    .join('');
}

async function runBench() {
  const sizes = Array.from($('bench-sizes').querySelectorAll<HTMLInputElement>('input:checked')).map((i) => Number(i.value));
  const kernels = (['tiled', 'subgroup', 'registers'] as const).filter((k) => $<HTMLInputElement>(`bench-${k}`).checked);
  const withTf = $<HTMLInputElement>('bench-tfjs').checked;
  const minMs = Number(params.get('minMs') ?? 300);
  if (sizes.length === 0) return;
  benchRows.length = 0;
  const status = $('bench-status');
  $<HTMLButtonElement>('bench-run').disabled = true;
  $<HTMLButtonElement>('bench-download').disabled = true;
  status.textContent = 'running…';
  status.dataset.done = 'false';
  try {
    if (kernels.length) {
      benchWorker ??= new Worker(new URL('./bench-worker.ts', import.meta.url), { type: 'module', name: 'wgsl-train bench' });
      await new Promise<void>((resolve, reject) => {
        benchWorker!.onmessage = (ev: MessageEvent<FromBench>) => {
          const m = ev.data;
          if (m.type === 'adapter') benchAdapter = m.name;
          else if (m.type === 'row') {
            benchRows.push(m.row);
            drawBench();
          } else if (m.type === 'done') resolve();
          else reject(new Error(`${m.name}: ${m.message}`));
        };
        benchWorker!.onerror = (ev) => reject(new Error(ev.message || 'the benchmark worker failed'));
        benchWorker!.postMessage({ type: 'run', sizes, kernels: [...kernels], minMs });
      });
    }
    if (withTf) {
      status.textContent = 'loading TF.js…';
      const { tfjsMatmul } = await import('./tfjs-bench.ts');
      status.textContent = 'running TF.js…';
      await tfjsMatmul(sizes, minMs, (row) => {
        benchRows.push(row);
        drawBench();
      });
    }
    status.textContent = `done: ${benchRows.length} measurements`;
  } catch (e) {
    status.textContent = 'failed';
    showError(`Kernel benchmark: ${(e as Error).message}`);
  } finally {
    status.dataset.done = 'true';
    $<HTMLButtonElement>('bench-run').disabled = noWebGPU;
    $<HTMLButtonElement>('bench-download').disabled = benchRows.length === 0;
  }
}

function downloadBench() {
  const out = { bench: 'matmul', adapter: benchAdapter, userAgent: navigator.userAgent, date: new Date().toISOString(), rows: benchRows };
  downloadBlob(new Blob([JSON.stringify(out, null, 2) + '\n'], { type: 'application/json' }), 'matmul-bench.json');
}

// ---------------------------------------------------------------- wiring

function main() {
  showSettings('names');
  setupBench();
  setState('idle');
  for (const b of Array.from(document.querySelectorAll<HTMLButtonElement>('.preset'))) {
    b.addEventListener('click', () => {
      showSettings(b.dataset.preset as PresetName);
      void start();
    });
  }
  $('start').addEventListener('click', () => void start());
  $('pause').addEventListener('click', () => send({ type: 'pause' }));
  $('resume').addEventListener('click', () => send({ type: 'resume' }));
  $('stop').addEventListener('click', () => send({ type: 'stop' }));
  $('download').addEventListener('click', () => {
    pendingDownload = true;
    send({ type: 'export', reason: 'download' });
  });
  $('load-saved').addEventListener('click', () => void loadSaved());
  $('generate').addEventListener('click', () => {
    if (!hasModel || !worker) return void start();
    send({ type: 'generate', prompt: $<HTMLInputElement>('ft-prompt').value, temperature: Number($<HTMLInputElement>('ft-temp').value) || 0, maxNewTokens: presetSettings.genTokens || 96 });
  });
  $('ft-files').addEventListener('change', (e) => void onFiles((e.target as HTMLInputElement).files ?? []));
  const panel = $('finetune-panel');
  panel.addEventListener('dragover', (e) => e.preventDefault());
  panel.addEventListener('drop', (e) => {
    e.preventDefault();
    if (e.dataTransfer?.files) void onFiles(e.dataTransfer.files);
  });
  $<HTMLTextAreaElement>('ft-text').value = DEFAULT_TEXT;
  for (const t of Array.from(document.querySelectorAll<HTMLButtonElement>('.tab'))) {
    t.addEventListener('click', () => {
      for (const o of Array.from(document.querySelectorAll<HTMLButtonElement>('.tab'))) o.classList.toggle('active', o === t);
      $('panel-train').hidden = t.dataset.tab !== 'train';
      $('panel-kernels').hidden = t.dataset.tab !== 'kernels';
    });
  }
  $('bench-run').addEventListener('click', () => void runBench());
  $('bench-download').addEventListener('click', downloadBench);

  loadModel()
    .then((s) => s && showSaved(s))
    .catch(() => {});
  if (!('gpu' in navigator) || !navigator.gpu) {
    showNoWebGPU('This browser has no navigator.gpu.');
    return;
  }
  getWorker(); // shows the adapter as soon as the device is up
  setTimeout(() => {
    if (!adapterShown && !noWebGPU) $('adapter').textContent = 'Still waiting for the WebGPU device…';
  }, 5000);
}

const DEFAULT_TEXT = `The harbour cat slept on the warm stones by the baker's door. Every morning the baker left a small dish of milk, and every morning the cat pretended not to notice it until the baker had gone back inside.
The fishermen said the cat had come in on a boat one stormy night and decided to stay. Nobody owned her, and everybody fed her. In the evening she climbed the lighthouse stairs behind the keeper, one step at a time, and sat by the lamp watching the ships come home.
`;

main();
