#!/usr/bin/env node
// Row-kernel lab: the versions of the LayerNorm, cross-entropy and optimizer kernels side by side, each
// first checked against the other version (and LayerNorm against a CPU forward), then timed, interleaved
// round by round in one process. Figures are GB/s of storage traffic (the kernels are memory-bound).
//   LayerNorm forward / backward: one workgroup per row (GPU default) vs one thread per row (CPU adapters)
//   cross-entropy: one workgroup per row vs one thread per row
//   AdamW update: scalar vs vec4 (the recorder picks vec4 for 4-aligned windows)
//
//   npx vite build && node bench/lab/rows.mjs [--iters=7]
import { ensureNodeWebGPU, median } from '../peers/env.mjs';
import {
  createRuntime, adapterName, Recorder, encodeCommands, createStorage, writeArray, readF32,
  recordLayerNormForward, recordLayerNormBackward, recordCrossEntropy, recordOptimizer, stepValues, withDefaults,
} from '../../dist/index.js';

const flags = Object.fromEntries(process.argv.slice(2).filter((a) => a.startsWith('--')).map((a) => { const [k, v] = a.slice(2).split('='); return [k, v ?? true]; }));
const iters = Number(flags.iters ?? 7);
const rt = await createRuntime({ gpu: await ensureNodeWebGPU() });
const adapter = adapterName(rt.adapterInfo);
const view = (n, data) => {
  const buffer = createStorage(rt.device, n * 4, 'lab');
  if (data) writeArray(rt.device, buffer, 0, data);
  return { buffer, offset: 0, size: n * 4 };
};
const rand = (n, seed) => { let a = seed >>> 0; return new Float32Array(n).map(() => ((a = (a * 1664525 + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 4); };
async function run(rec) {
  const e = rt.device.createCommandEncoder();
  encodeCommands(e, rec.commands);
  rt.device.queue.submit([e.finish()]);
  await rt.device.queue.onSubmittedWorkDone();
}
const maxDiff = (a, b) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]) / (1 + Math.abs(b[i]))), 0);

// Each case: versions that record into a fresh Recorder, the output to compare, and the bytes moved.
const cases = [];
for (const [R, C] of [[512, 128], [1024, 768]]) {
  const x = rand(R * C, 1), w = rand(C, 2), b = rand(C, 3), dout = rand(R * C, 4);
  const inp = view(R * C, x), weight = view(C, w), bias = view(C, b), dy = view(R * C, dout);
  const versions = {};
  for (const perRow of [false, true]) {
    const out = view(R * C), mean = view(R), rstd = view(R), dinp = view(R * C), dweight = view(C), dbias = view(C);
    const rec = new Recorder(rt);
    await recordLayerNormForward(rec, 'ln', { inp, weight, bias, out, mean, rstd, R, C, eps: 1e-5, perRow });
    await recordLayerNormBackward(rec, 'ln back', { dout: dy, inp, weight, mean, rstd, dinp, dweight, dbias, R, C, accumulate: false, perRow });
    versions[perRow ? 'thread per row' : 'workgroup per row'] = { rec, outputs: [out, dinp] };
  }
  // CPU forward of row 0 as an absolute check.
  const row = x.subarray(0, C), mu = row.reduce((s, v) => s + v, 0) / C;
  const rs = 1 / Math.sqrt(row.reduce((s, v) => s + (v - mu) ** 2, 0) / C + 1e-5);
  cases.push({ name: `layernorm fwd+bwd ${R}×${C}`, versions, bytes: 4 * (6 * R * C + 6 * C + 4 * R), cpuRow0: Float32Array.from(row, (v, c) => (v - mu) * rs * w[c] + b[c]) });
}
for (const [R, V] of [[512, 256], [256, 8192]]) {
  const logits = view(R * V, rand(R * V, 5)), labels = view(R, Int32Array.from({ length: R }, (_, i) => (i * 7919) % V));
  const versions = {};
  for (const perRow of [false, true]) {
    const losses = view(R), dlogits = view(R * V);
    const rec = new Recorder(rt);
    await recordCrossEntropy(rec, 'ce', { logits, labels, losses, dlogits, R, V, gradScale: 1 / R, perRow });
    versions[perRow ? 'thread per row' : 'workgroup per row'] = { rec, outputs: [losses, dlogits] };
  }
  cases.push({ name: `cross-entropy ${R}×${V}`, versions, bytes: 4 * (3 * R * V + 2 * R) });
}
{
  const n = 1 << 20;
  const c = withDefaults({ type: 'adamw', lr: 1e-3, weightDecay: 0.1 });
  const step = rt.device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  writeArray(rt.device, step, 0, stepValues(c, 1e-3, 1));
  const grads = view(n + 4, rand(n + 4, 6)), clip = view(8, new Float32Array([0, 1, 0, 0, 0, 0, 0, 0]));
  const versions = {};
  for (const vec4 of [false, true]) {
    // The same n elements; starting at element 1 makes the window unaligned, so the recorder takes the scalar kernel.
    const start = vec4 ? 0 : 1;
    const params = view(n + 4, rand(n + 4, 7)), m = view(n + 4), v = view(n + 4);
    const rec = new Recorder(rt);
    await recordOptimizer(rec, c, { step, params: params.buffer, grads: grads.buffer, m: m.buffer, v: v.buffer, clip }, [{ label: 'all', offset: start, count: n, weightDecay: 0.1 }]);
    versions[vec4 ? 'vec4' : 'scalar'] = { rec, outputs: [], timedOnly: true };
  }
  cases.push({ name: `adamw update ${n} params`, versions, bytes: 4 * 7 * n });
}

const lines = [];
for (const cs of cases) {
  const names = Object.keys(cs.versions);
  const outs = {};
  for (const name of names) {
    await run(cs.versions[name].rec);
    outs[name] = await Promise.all(cs.versions[name].outputs.map((o) => readF32(rt.device, o)));
  }
  let check = 'timed only (both versions update the same elements from different offsets)';
  if (outs[names[0]].length) {
    const diff = Math.max(...outs[names[0]].map((o, i) => maxDiff(o, outs[names[1]][i])));
    check = `versions agree to ${diff.toExponential(1)}`;
    if (!(diff < 1e-4)) throw new Error(`${cs.name}: the versions disagree (${diff})`);
    if (cs.cpuRow0) {
      const d = maxDiff(outs[names[0]][0].subarray(0, cs.cpuRow0.length), cs.cpuRow0);
      if (!(d < 1e-4)) throw new Error(`${cs.name}: row 0 differs from the CPU by ${d}`);
    }
  }
  const ms = Object.fromEntries(names.map((n) => [n, []]));
  for (let i = 0; i < iters; i++) {
    for (const n of names) {
      const t = performance.now();
      await run(cs.versions[n].rec);
      ms[n].push(performance.now() - t);
    }
  }
  for (const n of names) {
    const med = median(ms[n]);
    lines.push({ lab: 'rows', case: cs.name, version: n, adapter, ms_median: Number(med.toPrecision(4)), gbps: Number((cs.bytes / (med * 1e6)).toPrecision(4)), check });
  }
}
for (const l of lines) console.log(JSON.stringify(l));
rt.destroy();
process.exit(0);
