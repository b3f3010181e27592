#!/usr/bin/env node
// Attention kernel lab, in the spirit of llm.c's dev/cuda: versions 1..N of causal multi-head attention,
// forward (qkv [B, T, 3C] → out [B, T, C], lse [B, NH, T]) and backward (dout → dqkv), GPT-2 layout. Lab
// versions are WGSL files with a header comment on their math and tiling (shaders/lab/attention_*.wgsl);
// the production kernels (shaders/attention.wgsl) are recorded through recordAttentionForward/Backward,
// with the kernel forced and, for the subgroup versions, its settings (rows per workgroup, vec4 loads).
// Every version is first checked against the float64 reference (src/reference/transformer.ts) on small
// odd shapes: out, lse and dqkv within stated tolerances, and bitwise equal over two runs. Then, per shape,
// the versions are timed interleaved round by round in one process (the machine is shared and noisy);
// one JSON line per (version, shape), and a last line naming the fastest version per shape.
//
//   npx vite build && node bench/lab/attention.mjs [--versions=1,2,3] [--shapes=8x64x4x32,1x1024x4x32]
//                                                  [--iters=5] [--list]
//
// Shapes are BxTxNHxHS (C = NH·HS). FLOPs counted are the causal ones that any version must do, with
// pairs = B·NH·T(T+1)/2 (query, key) pairs: forward 4·HS per pair (q·k and P·v), backward 8·HS per pair
// (dout·v, dS·k, dS·q, P·dout); recomputing P in the flash-style backward is not counted. `extra_bytes` is
// the memory a version needs besides qkv, out, dout and dqkv: lse (and D) [B, NH, T] for the flash-style
// versions, plus the T×T matrices att and datt for the naive one.
//
// Versions: 1 naive (T×T scratch, 3 + 4 kernels) · 2 production 'tiled' (a thread per row, 64 rows per
// workgroup, k/v tiles staged in workgroup memory between barriers; the GPU default) · 3/4 a thread per
// row, 8 rows per workgroup, k/v read straight from storage at workgroup-uniform addresses, no workgroup
// memory, no barrier, scalar / vec4 loads · 5 the same as 4 with 64 rows per workgroup · 6/7 a thread per
// row, 8 rows per workgroup, k/v tiles of 8 rows loaded one row per lane and shared by subgroupBroadcast,
// scalar / vec4 loads · 8 the same as 7 with 32 rows per workgroup · 9 production 'subgroup' as chosen (the
// CPU-driver default: v7 where HS and C are multiples of 4, v6 otherwise). v6–v8 are production 'subgroup'
// with its settings forced: the lab's v6/v7 became that kernel, so they run through it, not as a copy.
// Lesson on lavapipe: as for matmul, loads dominate. A load at a loop-counter address is not recognised
// as uniform (v3–v5 lose to workgroup memory); loading 1/8 of a tile per lane and broadcasting the rest
// (v6–v9) is ~2× faster than the production tiles, forward and backward, at O(T) memory.
import { createServer } from 'vite';
import { ensureNodeWebGPU, median } from '../peers/env.mjs';
import * as lib from '../../dist/index.js';

const { createRuntime, adapterName, Recorder, encodeCommands, createStorage, writeArray, readF32 } = lib;
const flags = Object.fromEntries(process.argv.slice(2).filter((a) => a.startsWith('--')).map((a) => { const [k, v] = a.slice(2).split('='); return [k, v ?? true]; }));
const iters = Number(flags.iters ?? 5);
const DEFAULT_SHAPES = '8x64x4x32,4x256x4x32,1x1024x4x32';

// The float64 reference (and the op functions when dist does not export them) straight from src/.
const vite = await createServer({ configFile: false, logLevel: 'error', appType: 'custom', server: { middlewareMode: true, hmr: false, watch: null }, optimizeDeps: { noDiscovery: true, include: [] } });
const ref = await vite.ssrLoadModule('/src/reference/transformer.ts');
const ops = lib.recordAttentionForward ? lib : await vite.ssrLoadModule('/src/ops/attention.ts');
await vite.close();

const cdiv = (a, b) => Math.ceil(a / b);
const uniform = (s) => [['u32', s.T], ['u32', s.C], ['u32', s.NH], ['f32', 1 / Math.sqrt(s.HS)]];
const pairs = (s) => (s.B * s.NH * s.T * (s.T + 1)) / 2;
const cost = (s, per) => ({ flops: per * s.HS * pairs(s), bytes: 0 });

// v1: scores, softmax, P·v; then dP, dS, dq, dk/dv, through att and datt [B, NH, T, T] in scratch.
const naive = {
  name: 'naive: T×T scores/probabilities in scratch, one kernel per step',
  ok: (s, limits) => 4 * s.B * s.NH * s.T * s.T <= limits.maxStorageBufferBindingSize,
  scratch: (s) => [s.B * s.NH * s.T * s.T, s.B * s.NH * s.T * s.T],
  async record(rec, phase, s, v) {
    const [att, datt] = v.scratch; // two buffers: one dispatch may not read and write the same buffer
    const tj = [cdiv(s.T, 16), cdiv(s.T, 16), s.B * s.NH], rows = [cdiv(s.T, 64), 1, s.B * s.NH], td = [cdiv(s.HS, 16), cdiv(s.T, 16), s.B * s.NH];
    const step = (entry, bindings, resources, workgroups, c) =>
      rec.dispatch({ label: `naive ${entry}`, shader: 'lab/attention_naive', entry, bindings, defines: { HS: s.HS }, uniform: uniform(s), resources, workgroups, cost: c });
    if (phase === 'forward') {
      await step('scores', ['read', 'write'], [v.qkv, att], tj, cost(s, 2));
      await step('softmax', ['write', 'write'], [att, v.lse], rows, cost(s, 0));
      await step('pv', ['read', 'read', 'write'], [att, v.qkv, v.out], td, cost(s, 2));
    } else {
      await step('dp', ['read', 'read', 'write'], [v.dout, v.qkv, datt], tj, cost(s, 2));
      await step('ds', ['read', 'write'], [att, datt], rows, cost(s, 0));
      await step('dq', ['read', 'read', 'write'], [datt, v.qkv, v.dqkv], td, cost(s, 2));
      await step('dkdv', ['read', 'read', 'read', 'read', 'write'], [att, datt, v.dout, v.qkv, v.dqkv], td, cost(s, 4));
    }
  },
};

// The production kernels through the op functions, with the kernel forced; `settings`: the 'subgroup'
// kernel's sgRows and sgVec4 (src/ops/attention.ts), where a version fixes them.
const production = (kernel, name, settings = {}) => ({
  name,
  ok: (s) => (kernel === 'tiled' || rt.features.has('subgroups')) && (!settings.sgVec4 || (s.HS % 4 === 0 && s.C % 4 === 0)),
  scratch: (s) => [ops.attentionScratchElements(s.B, s.T, s.NH)],
  record(rec, phase, s, v) {
    const { B, T, C, NH } = s;
    if (phase === 'forward') return ops.recordAttentionForward(rec, 'attention', { qkv: v.qkv, out: v.out, lse: v.lse, B, T, C, NH, kernel, ...settings });
    return ops.recordAttentionBackward(rec, 'attention backward', { dout: v.dout, qkv: v.qkv, out: v.out, lse: v.lse, dqkv: v.dqkv, scratch: v.scratch[0], B, T, C, NH, accumulate: false, kernel, ...settings });
  },
});

// v3+: shaders/lab/attention_rows.wgsl, a thread per row reading the other rows at uniform addresses.
const rows = (WG, VEC4, name) => ({
  name,
  ok: (s) => !VEC4 || (s.HS % 4 === 0 && s.C % 4 === 0),
  scratch: (s) => [s.B * s.NH * s.T],
  async record(rec, phase, s, v) {
    const defines = { HS: s.HS, HS4: cdiv(s.HS, 4), WG, TILE: 8, VEC4, ACT_T: 'f32', F16: false, ACCUMULATE: false };
    const common = { shader: 'lab/attention_rows', defines, uniform: uniform(s), workgroups: [cdiv(s.T, WG), s.NH, s.B] };
    if (phase === 'forward') {
      await rec.dispatch({ ...common, label: 'rows forward', entry: 'forward', bindings: ['read', 'write', 'write'], resources: [v.qkv, v.out, v.lse], cost: cost(s, 4) });
      return;
    }
    const bwd = { ...common, bindings: ['read', 'read', 'read', 'read', 'write', 'write'], resources: [v.dout, v.qkv, v.out, v.lse, v.dqkv, v.scratch[0]] };
    await rec.dispatch({ ...bwd, label: 'rows dq', entry: 'backward_dq', cost: cost(s, 4) });
    await rec.dispatch({ ...bwd, label: 'rows dk/dv', entry: 'backward_dkdv', cost: cost(s, 4) });
  },
});

const VERSIONS = {
  1: naive,
  2: production('tiled', "production 'tiled' (GPU default): a thread per row, 64 rows/workgroup, k/v tiles in workgroup memory"),
  3: rows(8, false, 'a thread per row, 8 rows/workgroup, uniform k/v loads from storage, no barriers, scalar loads'),
  4: rows(8, true, 'a thread per row, 8 rows/workgroup, uniform k/v loads from storage, no barriers, vec4 loads'),
  5: rows(64, true, 'a thread per row, 64 rows/workgroup, uniform k/v loads from storage, no barriers, vec4 loads'),
  6: production('subgroup', "production 'subgroup', 8 rows/workgroup, k/v tiles of 8 rows shared by subgroupBroadcast, scalar loads", { sgRows: 8, sgVec4: false }),
  7: production('subgroup', "production 'subgroup', 8 rows/workgroup, k/v tiles of 8 rows shared by subgroupBroadcast, vec4 loads", { sgRows: 8, sgVec4: true }),
  8: production('subgroup', "production 'subgroup', 32 rows/workgroup, k/v tiles of 8 rows shared by subgroupBroadcast, vec4 loads", { sgRows: 32, sgVec4: true }),
  9: production('subgroup', "production 'subgroup' as chosen (CPU-driver default): v7 where HS and C are multiples of 4, else v6"),
};

if (flags.list) {
  for (const [id, v] of Object.entries(VERSIONS)) console.log(`${id}: ${v.name}`);
  process.exit(0);
}

const gpu = await ensureNodeWebGPU();
const rt = await createRuntime({ gpu });
const adapter = adapterName(rt.adapterInfo);

function parseShape(str) {
  const [B, T, NH, HS] = str.split('x').map(Number);
  if (![B, T, NH, HS].every((n) => Number.isInteger(n) && n >= 1)) throw new Error(`bad shape '${str}' (want BxTxNHxHS, e.g. 8x64x4x32)`);
  return { B, T, NH, HS, C: NH * HS, tag: str };
}

// Normal samples (Box–Muller over a 32-bit LCG), seeded.
function randn(n, seed) {
  let a = seed >>> 0;
  const u = () => ((a = (a * 1664525 + 1013904223) >>> 0) + 0.5) / 2 ** 32;
  return Float32Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()));
}

// Inputs and outputs shared by every version of a shape; each version gets its own scratch.
function buffers(s) {
  const view = (n, label, data) => {
    const buffer = createStorage(rt.device, Math.max(1, n) * 4, label);
    if (data) writeArray(rt.device, buffer, 0, data);
    return { buffer, offset: 0, size: Math.max(1, n) * 4 };
  };
  const { B, T, C, NH } = s;
  const qkvData = randn(B * T * 3 * C, 1000 * B + T + C), doutData = randn(B * T * C, 7 + T);
  const bufs = {
    qkvData, doutData, view,
    qkv: view(B * T * 3 * C, 'qkv', qkvData), dout: view(B * T * C, 'dout', doutData),
    out: view(B * T * C, 'out'), lse: view(B * NH * T, 'lse'), dqkv: view(B * T * 3 * C, 'dqkv'),
  };
  bufs.destroy = () => ['qkv', 'dout', 'out', 'lse', 'dqkv'].forEach((k) => bufs[k].buffer.destroy());
  return bufs;
}

async function prepare(v, phase, s, bufs) {
  const rec = new Recorder(rt);
  rt.device.pushErrorScope('validation');
  await v.record(rec, phase, s, bufs);
  const err = await rt.device.popErrorScope();
  if (err) throw new Error(err.message);
  return rec;
}

async function run(...recs) {
  const enc = rt.device.createCommandEncoder();
  for (const rec of recs) encodeCommands(enc, rec.commands);
  rt.device.queue.submit([enc.finish()]);
  await rt.device.queue.onSubmittedWorkDone();
}

// Tolerances (those of test/ops/attention.test.ts): out is a convex combination of v rows, ~1e-6
// absolute; lse ~1e-6 relative to |lse| ≲ 10; dqkv sums ≤ T products, each P carrying exp()'s error.
const TOL = { out: { atol: 2e-5, rtol: 1e-4 }, lse: { atol: 2e-5, rtol: 1e-5 }, dqkv: { atol: 1e-4, rtol: 1e-3 } };
function worstExcess(got, want, { atol, rtol }) {
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i] - want[i]) / (atol + rtol * Math.abs(want[i]));
    worst = Math.max(worst, Number.isFinite(e) ? e : Infinity);
  }
  return worst; // ≤ 1 is within tolerance
}
const same = (a, b) => Buffer.from(a.buffer).equals(Buffer.from(b.buffer));

const ids = flags.versions ? String(flags.versions).split(',').map(Number) : Object.keys(VERSIONS).map(Number);
const shapes = String(flags.shapes ?? DEFAULT_SHAPES).split(',').map(parseShape);

// 1. Correctness: small odd shapes (HS = 10 is not a multiple of 4: the vec4 versions check on HS = 12).
const checks = ['2x13x3x10', '2x13x3x12', '1x70x2x12'].map(parseShape);
const valid = new Set();
for (const id of ids) {
  const v = VERSIONS[id];
  if (!v) throw new Error(`no version ${id} (have ${Object.keys(VERSIONS).join(', ')})`);
  let ran = 0;
  const t0 = performance.now();
  for (const s of checks.filter((s) => v.ok(s, rt.limits))) {
    const bufs = buffers(s);
    const scratch = v.scratch(s).map((n) => bufs.view(n, 'scratch'));
    const fwd = await prepare(v, 'forward', s, { ...bufs, scratch });
    const bwd = await prepare(v, 'backward', s, { ...bufs, scratch });
    const results = [];
    for (let r = 0; r < 2; r++) {
      writeArray(rt.device, bufs.dqkv.buffer, 0, new Float32Array(s.B * s.T * 3 * s.C).fill(77)); // assign must overwrite
      await run(fwd, bwd);
      results.push({ out: await readF32(rt.device, bufs.out), lse: await readF32(rt.device, bufs.lse), dqkv: await readF32(rt.device, bufs.dqkv) });
    }
    const want = ref.attentionForward(bufs.qkvData, s.B, s.T, s.C, s.NH);
    want.dqkv = ref.attentionBackward(bufs.doutData, bufs.qkvData, s.B, s.T, s.C, s.NH);
    const errs = Object.fromEntries(['out', 'lse', 'dqkv'].map((k) => [k, worstExcess(results[0][k], want[k], TOL[k])]));
    const repeatable = ['out', 'lse', 'dqkv'].every((k) => same(results[0][k], results[1][k]));
    for (const rec of [fwd, bwd]) for (const b of rec.owned) b.destroy();
    scratch.forEach((x) => x.buffer.destroy());
    bufs.destroy();
    if (!(Math.max(...Object.values(errs)) <= 1) || !repeatable) {
      console.log(JSON.stringify({ version: id, check: s.tag, error: repeatable ? 'outside tolerance' : 'not bitwise repeatable', err_over_tol: errs }));
      process.exitCode = 1;
      ran = -1;
      break;
    }
    ran++;
  }
  if (ran > 0) valid.add(id);
  console.error(`v${id} ${v.name}: ${ran > 0 ? `matches the reference and repeats bitwise on ${ran} check shapes` : 'FAILED'} (${((performance.now() - t0) / 1000).toFixed(1)} s with compiles)`);
}

// 2. Timing: per shape, every valid version prepared and warmed up, then forward and backward timed in
// interleaved rounds.
const best = {};
for (const s of shapes) {
  const bufs = buffers(s);
  const entries = [];
  for (const id of ids.filter((id) => valid.has(id))) {
    const v = VERSIONS[id];
    if (!v.ok(s, rt.limits)) { console.log(JSON.stringify({ version: id, shape: s.tag, skipped: 'shape not supported (alignment or buffer size limit)' })); continue; }
    const scratch = v.scratch(s).map((n) => bufs.view(n, 'scratch'));
    const fwd = await prepare(v, 'forward', s, { ...bufs, scratch });
    const bwd = await prepare(v, 'backward', s, { ...bufs, scratch });
    await run(fwd, bwd);
    entries.push({ id, v, scratch, fwd, bwd, msF: [], msB: [] });
  }
  for (let i = 0; i < iters; i++) {
    for (const e of entries) {
      let t = performance.now();
      await run(e.fwd);
      e.msF.push(performance.now() - t);
      t = performance.now();
      await run(e.bwd);
      e.msB.push(performance.now() - t);
    }
  }
  const fl = { forward: 4 * s.HS * pairs(s), backward: 8 * s.HS * pairs(s) };
  for (const e of entries) {
    const f = median(e.msF), b = median(e.msB), total = median(e.msF.map((x, i) => x + e.msB[i]));
    const extra = 4 * (s.B * s.NH * s.T + e.v.scratch(s).reduce((a, n) => a + n, 0));
    console.log(JSON.stringify({
      version: e.id, name: e.v.name, shape: s.tag, adapter,
      ms: +total.toPrecision(4), ms_forward: +f.toPrecision(4), ms_backward: +b.toPrecision(4),
      gflops: +((fl.forward + fl.backward) / (total * 1e6)).toPrecision(4),
      gflops_forward: +(fl.forward / (f * 1e6)).toPrecision(4), gflops_backward: +(fl.backward / (b * 1e6)).toPrecision(4),
      extra_bytes: extra,
    }));
    if (!best[s.tag] || total < best[s.tag].ms) best[s.tag] = { version: e.id, ms: +total.toPrecision(4) };
    for (const rec of [e.fwd, e.bwd]) for (const buf of rec.owned) buf.destroy();
    e.scratch.forEach((x) => x.buffer.destroy());
  }
  bufs.destroy();
}
console.log(JSON.stringify({ lab: 'attention', adapter, iters, best }));
rt.destroy();
process.exit();
