#!/usr/bin/env node
// Benchmarks: `npm run bench -- [matmul] [mlp] [gpt] [--sizes=256,512,1024] [--iters=N] [--steps=N] [--peers=a,b]
//   [--autotune] [--profile] [--overhead [--full-step]] [--precision=f32] [--out=DIR | --no-report]`.
// Where the adapter offers shader-f16, the MLP and GPT benches also run our mixed-precision path
// (impl 'wgsl-train-f16'), unless --precision=f32.
// Prints one JSON object per line, each a single measurement, then a summary line of our/peer ratios.
// Every peer runs on the same adapter in the same process; GPU work is synchronised before a timer stops
// (ours: queue.onSubmittedWorkDone after each submit; the peers': see bench/peers/*.mjs).
import { ensureNodeWebGPU, median, GPT_DEFAULTS } from './peers/env.mjs';
import { PEERS, GPT_PEERS } from './peers/index.mjs';
import { createRuntime, adapterName, Recorder, encodeCommands, recordMatmul, createStorage, writeArray, Sequential, Linear, ReLU, Trainer, GPT, estimateTrainingMemory, summarizeKernelTimes } from '../dist/index.js';

const argv = process.argv.slice(2);
const flags = Object.fromEntries(argv.filter((a) => a.startsWith('--')).map((a) => { const [k, v] = a.slice(2).split('='); return [k, v ?? true]; }));
const benches = argv.filter((a) => !a.startsWith('--'));
const which = benches.length ? benches : ['matmul', 'mlp', 'gpt'];
const sizes = String(flags.sizes ?? '256,512,1024').split(',').map(Number);
const peerNames = String(flags.peers ?? 'tfjs-webgpu,jax-js-webgpu,tfjs-wasm').split(',').filter(Boolean);

const gpu = await ensureNodeWebGPU();
const rt = await createRuntime({ gpu, autotune: !!flags.autotune });
const adapter = adapterName(rt.adapterInfo);
const results = [];
const emit = (o) => { results.push(o); console.log(JSON.stringify(o)); };
const stats = (ms) => ({ ms_median: round(median(ms)), ms_min: round(Math.min(...ms)), ms_max: round(Math.max(...ms)) });
const round = (x) => Number(x.toPrecision(5));

function randomArray(n, seed) {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) { a = (a * 1664525 + 1013904223) >>> 0; out[i] = a / 2 ** 32 - 0.5; }
  return out;
}

async function ourMatmul(M, N, K, iters) {
  const view = (n, label) => ({ buffer: createStorage(rt.device, n * 4, label), offset: 0, size: n * 4 });
  const A = view(M * K, 'A'), B = view(K * N, 'B'), C = view(M * N, 'C');
  writeArray(rt.device, A.buffer, 0, randomArray(M * K, 1));
  writeArray(rt.device, B.buffer, 0, randomArray(K * N, 2));
  const rec = new Recorder(rt);
  await recordMatmul(rec, { label: 'bench', A, B, C, M, N, K });
  const run = async () => {
    const enc = rt.device.createCommandEncoder();
    encodeCommands(enc, rec.commands);
    rt.device.queue.submit([enc.finish()]);
    await rt.device.queue.onSubmittedWorkDone();
  };
  await run(); // warm-up
  const ms = [];
  for (let i = 0; i < iters; i++) { const t = performance.now(); await run(); ms.push(performance.now() - t); }
  for (const b of [A, B, C]) b.buffer.destroy();
  for (const b of rec.owned) b.destroy();
  return ms;
}

// Our implementations: f32, and mixed precision where the adapter offers shader-f16 (unless --precision=f32).
const OURS = [{ impl: 'wgsl-train', precision: 'f32' }, ...(rt.features.has('shader-f16') && flags.precision !== 'f32' ? [{ impl: 'wgsl-train-f16', precision: 'f16' }] : [])];

async function ourMlp(batch, steps, precision) {
  const model = new Sequential([new Linear(784, 256), new ReLU(), new Linear(256, 256), new ReLU(), new Linear(256, 10)]);
  const trainer = await Trainer.create(rt, model, { inputShape: [784], loss: 'cross-entropy', optimizer: { type: 'adam', lr: 1e-3 }, batchSize: batch, seed: 0, precision });
  const x = randomArray(batch * 784, 3);
  const y = new Int32Array(batch).map((_, i) => (i * 7) % 10);
  for (let i = 0; i < 2; i++) { trainer.step({ x, y }); await trainer.sync(); }
  const ms = [];
  for (let i = 0; i < steps; i++) { const t = performance.now(); trainer.step({ x, y }); await trainer.sync(); ms.push(performance.now() - t); }
  trainer.destroy();
  return ms;
}

// The GPT bench: a byte-level GPT-2 (4 layers, n_embd 128, 4 heads, T 64, batch 8), AdamW training steps.
const GPT_BENCH = GPT_DEFAULTS;

async function ourGpt(steps, precision) {
  const { vocab, nLayer, nEmbd, nHead, T, batch } = GPT_BENCH;
  const model = new GPT({ vocab_size: vocab, n_positions: T, n_embd: nEmbd, n_layer: nLayer, n_head: nHead, layer_norm_epsilon: 1e-5 });
  const trainer = await Trainer.create(rt, model, { inputShape: [T], loss: 'cross-entropy', optimizer: { type: 'adamw', lr: 3e-4, weightDecay: 0 }, batchSize: batch, seed: 0, precision });
  const x = new Int32Array(batch * T).map((_, i) => (i * 31 + 7) % vocab);
  const y = new Int32Array(batch * T).map((_, i) => (i * 17 + 3) % vocab);
  for (let i = 0; i < 2; i++) { trainer.step({ x, y }); await trainer.sync(); }
  const ms = [];
  for (let i = 0; i < steps; i++) { const t = performance.now(); trainer.step({ x, y }); await trainer.sync(); ms.push(performance.now() - t); }
  const flops = trainer.flopsPerStep;
  if (flags.profile && precision === 'f32') {
    // Per-kernel GPU times of one step from timestamp queries (where the adapter offers them).
    for (const row of summarizeKernelTimes(await trainer.profile({ x, y }))) {
      console.log(JSON.stringify({ bench: 'gpt-profile', impl: 'wgsl-train', adapter, kernel: row.kernel, calls: row.calls, ms: round(row.ms), gflops: round(row.gflops) }));
    }
  }
  trainer.destroy();
  return { ms, flops };
}

async function withPeers(fn, table = PEERS) {
  for (const name of peerNames) {
    let peer;
    try {
      peer = await table[name]();
      await fn(peer);
    } catch (e) {
      emit({ impl: name, adapter, error: String(e?.message ?? e).split('\n')[0] });
    } finally {
      await peer?.dispose?.();
    }
  }
}

const iters = Number(flags.iters ?? 3);
if (which.includes('matmul')) {
  for (const n of sizes) {
    const ms = await ourMatmul(n, n, n, iters);
    emit({ bench: 'matmul', shape: [n, n, n], impl: 'wgsl-train', adapter, ...stats(ms), gflops: round((2 * n ** 3) / (median(ms) * 1e6)) });
  }
  await withPeers(async (peer) => {
    for (const n of sizes) {
      const { ms } = await peer.matmul(n, n, n, { warmup: 1, iters });
      emit({ bench: 'matmul', shape: [n, n, n], impl: peer.impl, adapter: peer.adapter, ...stats(ms), gflops: round((2 * n ** 3) / (median(ms) * 1e6)) });
    }
  });
}
if (which.includes('mlp')) {
  const batch = Number(flags.batch ?? 128);
  const steps = Number(flags.steps ?? 10);
  const shape = [784, 256, 256, 10];
  for (const { impl, precision } of OURS) {
    const ms = await ourMlp(batch, steps, precision);
    emit({ bench: 'mlp', shape, batch, optimizer: 'adam', impl, adapter, ...stats(ms), samples_per_s: round((batch * 1000) / median(ms)) });
  }
  await withPeers(async (peer) => {
    const { ms } = await peer.mlp({ batch, sizes: shape, steps, warmup: 2 });
    emit({ bench: 'mlp', shape, batch, optimizer: 'adam', impl: peer.impl, adapter: peer.adapter, ...stats(ms), samples_per_s: round((batch * 1000) / median(ms)) });
  });
}

if (which.includes('gpt')) {
  const steps = Number(flags.steps ?? 5);
  const { vocab, nLayer, nEmbd, nHead, T, batch } = GPT_BENCH;
  const shape = { vocab, n_layer: nLayer, n_embd: nEmbd, n_head: nHead, T, batch };
  for (const { impl, precision } of OURS) {
    const { ms, flops } = await ourGpt(steps, precision);
    emit({ bench: 'gpt', shape, impl, adapter, ...stats(ms), tokens_per_s: round((batch * T * 1000) / median(ms)), gflops: round(flops / (median(ms) * 1e6)) });
  }
  await withPeers(async (peer) => {
    const { ms } = await peer.gptStep({ ...GPT_BENCH, steps, warmup: 2 });
    emit({ bench: 'gpt', shape, impl: peer.impl, adapter: peer.adapter, ...stats(ms), tokens_per_s: round((batch * T * 1000) / median(ms)) });
  }, GPT_PEERS);
  if (flags.overhead) {
    // GPT-2 124M at B 4, T 256: compile it here and time the CPU side of a step (encode + finish, no submit);
    // with --full-step also run one real step (minutes on a CPU adapter).
    const t0 = performance.now();
    const big = new GPT({ vocab_size: 50257, n_positions: 1024, n_embd: 768, n_layer: 12, n_head: 12, layer_norm_epsilon: 1e-5 });
    const trainer = await Trainer.create(rt, big, { inputShape: [256], loss: 'cross-entropy', optimizer: { type: 'adamw', lr: 1e-4, weightDecay: 0.1 }, batchSize: 4, decay: 'matrices', gradClip: 1 });
    const compileMs = performance.now() - t0;
    trainer.measureEncode(3);
    const line = { bench: 'gpt2-overhead', model: 'gpt2-124M', batch: 4, T: 256, impl: 'wgsl-train', adapter, compile_ms: round(compileMs), dispatches: trainer.dispatchesPerStep, encode_ms: round(trainer.measureEncode(20)), gflop_per_step: round(trainer.flopsPerStep / 1e9) };
    if (flags['full-step']) {
      const x = new Int32Array(4 * 256).map((_, i) => (i * 7919) % 50257);
      const y = new Int32Array(4 * 256).map((_, i) => (i * 104729 + 1) % 50257);
      const t1 = performance.now();
      line.loss = await trainer.step({ x, y }, { readLoss: true });
      line.step_ms = round(performance.now() - t1);
      line.tokens_per_s = round((4 * 256 * 1000) / line.step_ms);
    }
    emit(line);
    trainer.destroy();
  }
  // GPT-2 124M full fine-tune at B 4, T 256 with AdamW: the estimated GPU memory, and whether it fits here.
  const gpt2 = new GPT({ vocab_size: 50257, n_positions: 1024, n_embd: 768, n_layer: 12, n_head: 12, layer_norm_epsilon: 1e-5 });
  const lim = { maxStorageBufferBindingSize: rt.limits.maxStorageBufferBindingSize, maxBufferSize: rt.limits.maxBufferSize };
  for (const { precision } of OURS) {
    const est = estimateTrainingMemory(gpt2, { inputShape: [256], batchSize: 4, loss: 'cross-entropy', stateArenas: 2, alignBytes: rt.limits.minStorageBufferOffsetAlignment, maxBindingBytes: rt.limits.maxStorageBufferBindingSize, precision });
    emit({
      bench: 'gpt-memory', model: 'gpt2-124M', batch: 4, T: 256, optimizer: 'adamw', precision, adapter, parameters: est.parameters,
      bytes_total: est.totalBytes, bytes_arenas: est.arenaBytes, bytes_activations: est.activationBytes, bytes_activations_unshared: est.activationBytesUnshared,
      largest_binding: est.largestBinding, largest_buffer: est.largestBuffer, limits: lim,
      fits: est.largestBinding.bytes <= lim.maxStorageBufferBindingSize && est.largestBuffer <= lim.maxBufferSize,
    });
  }
}

// Summary: our figure over each WebGPU peer's, per bench and shape (higher is better for us).
const summary = { summary: true, adapter, ratios: {} };
const isOurs = (impl) => OURS.some((o) => o.impl === impl);
for (const r of results.filter((r) => isOurs(r.impl))) {
  const key = `${r.bench} ${Array.isArray(r.shape) ? r.shape.join('x') : ''}${r.impl === 'wgsl-train' ? '' : ` (${r.impl})`}`.trim();
  const ours = r.bench === 'gpt' ? r.tokens_per_s : r.gflops ?? r.samples_per_s;
  for (const p of results.filter((p) => p.bench === r.bench && JSON.stringify(p.shape) === JSON.stringify(r.shape) && !isOurs(p.impl) && !p.error)) {
    summary.ratios[`${key} vs ${p.impl}`] = round(ours / (p.tokens_per_s ?? p.gflops ?? p.samples_per_s));
  }
}
console.log(JSON.stringify(summary));
for (const line of rt.tuner?.report() ?? []) console.log(JSON.stringify({ autotune: line, adapter }));

// The report: every line as JSON, and a Markdown table (dated, adapter named), in bench/results/
// (--out=DIR elsewhere, --no-report for none).
if (!flags['no-report']) {
  const { mkdirSync, writeFileSync } = await import('node:fs');
  const dir = String(flags.out ?? new URL('./results/', import.meta.url).pathname);
  const date = new Date().toISOString().slice(0, 10);
  const slug = adapter.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40);
  mkdirSync(dir, { recursive: true });
  const base = `${dir.replace(/\/$/, '')}/${date}-${slug}`;
  writeFileSync(`${base}.jsonl`, [...results, summary].map((r) => JSON.stringify(r)).join('\n') + '\n');
  const figure = (r) => (r.error ? `error: ${r.error}` : r.bench === 'gpt' ? `${r.tokens_per_s} tokens/s` : r.gflops !== undefined ? `${r.gflops} GFLOP/s` : `${r.samples_per_s} samples/s`);
  const rows = results.filter((r) => r.bench && r.bench !== 'gpt-memory' && r.bench !== 'gpt-profile');
  const md = [
    `# Benchmarks, ${date}`,
    '',
    `Adapter: ${adapter}. Medians; the same work for every implementation in one process (\`npm run bench\`).`,
    '',
    '| bench | shape | implementation | adapter | median ms | figure |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.bench} | ${JSON.stringify(r.shape ?? '')} | ${r.impl} | ${r.adapter} | ${r.ms_median ?? ''} | ${figure(r)} |`),
    '',
    '| ours / peer | ratio |',
    '| --- | --- |',
    ...Object.entries(summary.ratios).map(([k, v]) => `| ${k} | ${v} |`),
    '',
  ].join('\n');
  writeFileSync(`${base}.md`, md);
  console.error(`report: ${base}.jsonl, ${base}.md`);
}
rt.destroy();
process.exit(0);
