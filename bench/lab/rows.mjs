#!/usr/bin/env node
// Row-kernel lab: the versions of the LayerNorm, cross-entropy and optimizer kernels side by side, each
// first checked against the other version (and LayerNorm against a CPU forward), then timed, interleaved
// round by round in one process. Figures are GB/s of storage traffic (the kernels are memory-bound).
//   LayerNorm forward / backward: one workgroup per row (GPU default) vs one thread per row (CPU adapters)
//   residual + LayerNorm forward / backward (GPT-2's pre-LN blocks): the add, LayerNorm and gradient-copy
//     kernels (6 dispatches) vs the fused residual_layernorm kernels (3), the adapter's row variant in both
//   cross-entropy: one workgroup per row vs one thread per row
//   AdamW update: scalar vs vec4 (the recorder picks vec4 for 4-aligned windows)
//   gradient norm + non-finite check: workgroup reduction (GPU default) vs thread per part (CPU adapters),
//     each checked against a float64 norm
//
//   npx vite build && node bench/lab/rows.mjs [--iters=7]
import { ensureNodeWebGPU, median } from '../peers/env.mjs';
import {
  createRuntime, adapterName, Recorder, encodeCommands, grid1d, createStorage, writeArray, readF32,
  recordLayerNormForward, recordLayerNormBackward, recordCrossEntropy, recordOptimizer, stepValues, withDefaults,
} from '../../dist/index.js';
import * as lib from '../../dist/index.js';

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
// Residual + LayerNorm as in a GPT block: s = x + y, out = LayerNorm(s); backward with dsum (the gradient s gets
// from the next block) and both addends' gradients assigned. The add and the copies are add.wgsl's kernels.
const addKernel = (rec, label, entry, x, y, out, n, accumulate) => {
  const g = grid1d(n);
  return rec.dispatch({
    label, shader: 'add', entry, bindings: ['read', 'read', 'write'], defines: { ACCUMULATE: accumulate, F16: false, X_T: 'f32', Y_T: 'f32', OUT_T: 'f32' },
    uniform: [['u32', n], ['u32', g.stride]], resources: [x, y, out], workgroups: g.workgroups, cost: { flops: n, bytes: 12 * n },
  });
};
for (const [R, C] of [[512, 128], [1024, 768]]) {
  const xs = rand(R * C, 11), ys = rand(R * C, 12), w = rand(C, 13), b = rand(C, 14);
  const x = view(R * C, xs), y = view(R * C, ys), weight = view(C, w), bias = view(C, b), dout = view(R * C, rand(R * C, 15));
  const dsumData = rand(R * C, 16);
  const versions = {};
  for (const fused of [false, true]) {
    const sum = view(R * C), out = view(R * C), mean = view(R), rstd = view(R), dx = view(R * C), dy = view(R * C), dweight = view(C), dbias = view(C);
    const dsum = view(R * C, dsumData);
    const rec = new Recorder(rt);
    if (fused) {
      await recordLayerNormForward(rec, 'add+ln', { inp: x, residual: { y, sum }, weight, bias, out, mean, rstd, R, C, eps: 1e-5 });
      await recordLayerNormBackward(rec, 'add+ln back', { dout, inp: sum, weight, mean, rstd, dweight, dbias, R, C, residual: { dsum, dx, accumulateX: false, dy, accumulateY: false } });
    } else {
      // As the unfused graph: dsum is the sum's gradient buffer, which LayerNorm's dinp adds into (timed runs keep adding).
      await addKernel(rec, 'add', 'add', x, y, sum, R * C, false);
      await recordLayerNormForward(rec, 'ln', { inp: sum, weight, bias, out, mean, rstd, R, C, eps: 1e-5 });
      await recordLayerNormBackward(rec, 'ln back', { dout, inp: sum, weight, mean, rstd, dinp: dsum, dweight, dbias, R, C, accumulate: true });
      await addKernel(rec, 'copy → dx', 'copy_grad', dsum, rec.dummy('read'), dx, R * C, false);
      await addKernel(rec, 'copy → dy', 'copy_grad', dsum, rec.dummy('read'), dy, R * C, false);
    }
    versions[fused ? 'fused residual+layernorm' : 'add + layernorm (2 kernels)'] = { rec, outputs: [out, sum, dx, dy, dweight] };
  }
  const row = Float32Array.from(xs.subarray(0, C), (v, c) => v + ys[c]), mu = row.reduce((a, v) => a + v, 0) / C;
  const rs = 1 / Math.sqrt(row.reduce((a, v) => a + (v - mu) ** 2, 0) / C + 1e-5);
  // Least traffic of the fused pair: forward reads x, y and writes s, out; the row backward reads dout, dsum, s and
  // writes dx, dy; the parameter backward reads dout and s.
  cases.push({ name: `residual+layernorm fwd+bwd ${R}×${C}`, versions, bytes: 4 * (11 * R * C + 6 * C + 4 * R), cpuRow0: Float32Array.from(row, (v, c) => (v - mu) * rs * w[c] + b[c]) });
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
// Gradient norm with the non-finite check, as the trainer records it every step (reads grads and weights).
if (typeof lib.recordGradClip !== 'function') console.log(JSON.stringify({ lab: 'rows', case: 'grad norm', skipped: 'recordGradClip is not exported by dist/index.js' }));
else for (const n of [269_328, 1_048_576 + 4096]) {
  const g = rand(n, 8), grads = view(n, g), params = view(n, rand(n, 9));
  const loss = view(4, new Float32Array([1.5, 0, 0, 0]));
  const step = rt.device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  writeArray(rt.device, step, 0, new Float32Array([1e-3, 1e-3, 1, 1]));
  const versions = {};
  for (const perThread of [false, true]) {
    const clip = view(8, new Float32Array([0, 1, 0, 0, 0, 0, 0, 0]));
    const rec = new Recorder(rt);
    await lib.recordGradClip(rec, grads.buffer, n, 1, clip, undefined, { mode: 'skip', loss, step, params: params.buffer }, perThread);
    versions[perThread ? 'thread per part' : 'workgroups'] = { rec, outputs: [clip] };
  }
  const norm = Math.sqrt(g.reduce((s, x) => s + x * x, 0));
  cases.push({ name: `grad norm + check ${n} params`, versions, bytes: 4 * 2 * n, cpuNorm: norm });
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
    for (const name of cs.cpuNorm === undefined ? [] : names) {
      const [norm, , skip] = outs[name][0];
      if (!(Math.abs(norm - cs.cpuNorm) <= 1e-5 * cs.cpuNorm) || skip !== 0) throw new Error(`${cs.name}, ${name}: norm ${norm} (skip ${skip}) vs the CPU's ${cs.cpuNorm}`);
    }
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
