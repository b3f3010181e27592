#!/usr/bin/env node
// Matmul kernel lab, in the spirit of llm.c's dev/cuda: versions 1..N of C = A·B, each a WGSL file with a
// header comment that describes its tiling (shaders/lab/*.wgsl, or the production shaders/matmul*.wgsl
// recorded through recordMatmul with a forced kernel). Every version is first checked against a CPU
// reference on a small odd shape, then timed; the versions are interleaved round by round in one process
// (the machine is shared and noisy), and one JSON line per (version, shape) is printed at the end. On a CPU
// driver the process CPU time of a run (cpu_ms_median: all driver threads together) is steadier than wall
// time when other work competes for the cores.
//
//   npx vite build && node bench/lab/matmul.mjs [--versions=1,5,7] [--sizes=256,512,1024] [--iters=5]
//                                               [--shapes=128x256x784,784x256x128:tn] [--list]
//
// Versions: 1 naive · 2 shared-memory 16×16 · 3 production 'tiled' (GPU default) · 4 register-blocked
// scalar, no shared memory · 5/6 vec4 1×8 / 1×16 per thread, no shared memory · 7/8 subgroup-shared B,
// 2×8 per thread (WG 64/32) · 9/10 the same 2×16 per thread · 11 production 'subgroup' (CPU-driver default;
// vec4 loads and stores where N, K allow) · 12 the same with WG 64 forced.
// 13/14: the production kernels on f16 operands and output (f32 accumulation), where the adapter offers shader-f16.
// 15 production 'registers' (matmul_rb, the default on software adapters with subgroups < 8, e.g.
// SwiftShader: v4's idea with the full contract) · 16–19 the same with 1×8, 2×8, 4×4, 4×8 per thread · 20 on f16.
// Each shape's lines give the version's share of the best version's GFLOP/s there and of the adapter's
// measured arithmetic ceiling (shaders/lab/fma_peak.wgsl: independent FMA chains, no memory traffic).
// Lesson on lavapipe: loads dominate (each non-uniform load is a per-lane bounds-checked scalar loop), so
// the winners cut loads per FMA by passing the B tile between lanes with subgroupBroadcast.
//
// --sizes gives square M=N=K problems; --shapes gives MxNxK problems (the MLP shapes by default when
// --shapes is passed bare), with an optional :nt / :tn / :tt suffix for transB / transA / both (only the
// production versions take transposes; lab versions that cannot run a shape are skipped and say so).
import { ensureNodeWebGPU, median } from '../peers/env.mjs';
import { createRuntime, adapterName, Recorder, encodeCommands, recordMatmul, createStorage, writeArray, readF32, readFloats, toHalf, roundHalf } from '../../dist/index.js';

const argv = process.argv.slice(2);
const flags = Object.fromEntries(argv.filter((a) => a.startsWith('--')).map((a) => { const [k, v] = a.slice(2).split('='); return [k, v ?? true]; }));
const iters = Number(flags.iters ?? 5);
const MLP_SHAPES = '128x256x784,128x256x256,128x10x256,784x256x128:tn,256x256x128:tn,256x10x128:tn,128x256x256:nt,128x256x10:nt';

// A lab kernel: bindings (dims uniform, A, B, C), NN only; `ok` says which shapes it can run.
const lab = (shader, defines, per, ok = () => true) => ({
  ok: (s) => !s.transA && !s.transB && ok(s),
  record: (rec, s, v) =>
    rec.dispatch({
      label: shader,
      shader,
      entry: 'main',
      bindings: ['read', 'read', 'write'],
      defines,
      uniform: [['u32', s.M], ['u32', s.N], ['u32', s.K]],
      resources: [v.A, v.B, v.C],
      workgroups: per(s),
      cost: { flops: 2 * s.M * s.N * s.K, bytes: 4 * (s.M * s.K + s.K * s.N + s.M * s.N) },
    }),
});
// A production kernel through recordMatmul, with its kernel choice forced; `half`: f16 A, B and C.
const prod = (kernel, extra = {}, half = false) => ({
  half,
  ok: () => !half || rt.features.has('shader-f16'),
  record: (rec, s, v) =>
    recordMatmul(rec, { label: 'lab', ...(half ? { A: v.A16, B: v.B16, C: v.C16 } : { A: v.A, B: v.B, C: v.C }), M: s.M, N: s.N, K: s.K, transA: s.transA, transB: s.transB, kernel, ...extra }),
});
const cdiv = (a, b) => Math.ceil(a / b);
const vec4ok = (s) => s.K % 4 === 0 && s.N % 4 === 0;

const VERSIONS = {
  1: { name: 'naive (1 output/thread, 16×16)', ...lab('lab/matmul_naive', {}, (s) => [cdiv(s.N, 16), cdiv(s.M, 16), 1]) },
  2: { name: 'shared-memory tiled 16×16', ...lab('lab/matmul_smem', {}, (s) => [cdiv(s.N, 16), cdiv(s.M, 16), 1]) },
  3: { name: 'shared-memory 64×64, BK16, 4×4/thread (GPU default)', ...prod('tiled') },
  11: { name: 'production subgroup kernel (matmul_sg: 2×8/thread, B by subgroupBroadcast)', ...prod('subgroup') },
  12: { name: 'production subgroup kernel, WG 64 forced (11 picks the WG that pads M least, e.g. 56 for 784)', ...prod('subgroup', { sgWorkgroup: 64 }) },
  13: { name: 'production tiled kernel, f16 operands and output, f32 accumulation', ...prod('tiled', {}, true) },
  14: { name: 'production subgroup kernel, f16 operands and output, f32 accumulation', ...prod('subgroup', {}, true) },
  15: { name: "production registers kernel (matmul_rb: default block, no shared memory or subgroups; SwiftShader default)", ...prod('registers') },
  16: { name: 'production registers kernel, 1×8/thread', ...prod('registers', { rbBlock: { TM: 1, TN: 8 } }) },
  17: { name: 'production registers kernel, 2×8/thread', ...prod('registers', { rbBlock: { TM: 2, TN: 8 } }) },
  18: { name: 'production registers kernel, 4×4/thread', ...prod('registers', { rbBlock: { TM: 4, TN: 4 } }) },
  19: { name: 'production registers kernel, 4×8/thread', ...prod('registers', { rbBlock: { TM: 4, TN: 8 } }) },
  20: { name: 'production registers kernel, f16 operands and output, f32 accumulation', ...prod('registers', {}, true) },
  4: { name: 'register-blocked 1×8/thread, no shared memory, scalar', ...lab('lab/matmul_regblock', { WG: 64 }, (s) => [cdiv(s.N, 8), cdiv(s.M, 64), 1]) },
  5: { name: 'vec4 1×8/thread, no shared memory, WG64', ...lab('lab/matmul_rows4', { WG: 64, TN: 8, TN16: false }, (s) => [cdiv(s.N, 8), cdiv(s.M, 64), 1], vec4ok) },
  6: { name: 'vec4 1×16/thread, no shared memory, WG64', ...lab('lab/matmul_rows4', { WG: 64, TN: 16, TN16: true }, (s) => [cdiv(s.N, 16), cdiv(s.M, 64), 1], vec4ok) },
  7: { name: 'subgroup-shared B, 2×8/thread, vec4, WG64', ...lab('lab/matmul_sg', { WG: 64 }, (s) => [cdiv(s.N, 8), cdiv(s.M, 128), 1], vec4ok) },
  9: { name: 'subgroup-shared B, 2×16/thread, vec4, WG64', ...lab('lab/matmul_sg16', { WG: 64 }, (s) => [cdiv(s.N, 16), cdiv(s.M, 128), 1], vec4ok) },
  10: { name: 'subgroup-shared B, 2×16/thread, vec4, WG32', ...lab('lab/matmul_sg16', { WG: 32 }, (s) => [cdiv(s.N, 16), cdiv(s.M, 64), 1], vec4ok) },
  8: { name: 'subgroup-shared B, 2×8/thread, vec4, WG32', ...lab('lab/matmul_sg', { WG: 32 }, (s) => [cdiv(s.N, 8), cdiv(s.M, 64), 1], vec4ok) },
};

const gpu = await ensureNodeWebGPU();
const rt = await createRuntime({ gpu });
const adapter = adapterName(rt.adapterInfo);

if (flags.list) {
  for (const [id, v] of Object.entries(VERSIONS)) console.log(`${id}: ${v.name}`);
  process.exit(0);
}

function randomArray(n, seed) {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) { a = (a * 1664525 + 1013904223) >>> 0; out[i] = a / 2 ** 32 - 0.5; }
  return out;
}

function refMatmul(A, B, s) {
  const { M, N, K, transA, transB } = s;
  const C = new Float32Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let acc = 0;
      for (let k = 0; k < K; k++) acc += (transA ? A[k * M + m] : A[m * K + k]) * (transB ? B[n * K + k] : B[k * N + n]);
      C[m * N + n] = acc;
    }
  return C;
}

function buffers(s) {
  const view = (n, label) => ({ buffer: createStorage(rt.device, n * 4, label), offset: 0, size: n * 4 });
  const A = view(s.M * s.K, 'A'), B = view(s.K * s.N, 'B'), C = view(s.M * s.N, 'C');
  const a = randomArray(s.M * s.K, 1), b = randomArray(s.K * s.N, 2);
  writeArray(rt.device, A.buffer, 0, a);
  writeArray(rt.device, B.buffer, 0, b);
  const all = [A, B, C];
  const out = { A, B, C, a, b, destroy: () => all.forEach((v) => v.buffer.destroy()) };
  if (rt.features.has('shader-f16')) {
    // f16 copies (sizes in whole words) for the f16 versions.
    const half = (x, label) => {
      const bits = new Uint16Array(Math.ceil(x.length / 2) * 2);
      bits.set(toHalf(x));
      const v = { buffer: createStorage(rt.device, bits.byteLength, label), offset: 0, size: Math.max(4, bits.byteLength), dtype: 'f16' };
      writeArray(rt.device, v.buffer, 0, bits);
      all.push(v);
      return v;
    };
    Object.assign(out, { A16: half(a, 'A f16'), B16: half(b, 'B f16'), C16: half(new Float32Array(s.M * s.N), 'C f16'), a16: roundHalf(a), b16: roundHalf(b) });
  }
  return out;
}

async function prepare(v, s, bufs) {
  const rec = new Recorder(rt);
  rt.device.pushErrorScope('validation');
  await v.record(rec, s, bufs);
  const err = await rt.device.popErrorScope();
  if (err) throw new Error(err.message);
  return rec;
}

async function run(rec) {
  const enc = rt.device.createCommandEncoder();
  encodeCommands(enc, rec.commands);
  rt.device.queue.submit([enc.finish()]);
  await rt.device.queue.onSubmittedWorkDone();
}

function parseShape(str) {
  const [dims, mode = 'nn'] = str.split(':');
  const [M, N, K] = dims.split('x').map(Number);
  return { M, N, K, transA: mode[0] === 't', transB: mode[1] === 't', tag: `${M}x${N}x${K}${mode === 'nn' ? '' : ':' + mode}` };
}

const ids = flags.versions ? String(flags.versions).split(',').map(Number) : Object.keys(VERSIONS).map(Number);
const shapes = [];
if (flags.sizes !== undefined || flags.shapes === undefined) for (const n of String(flags.sizes ?? '256,512,1024').split(',')) shapes.push(parseShape(`${n}x${n}x${n}`));
if (flags.shapes !== undefined) for (const t of String(flags.shapes === true ? MLP_SHAPES : flags.shapes).split(',')) shapes.push(parseShape(t));

// 1. Correctness on small odd shapes (and an aligned one for the vec4-only versions), every layout a version takes.
const checks = ['33x65x17', '37x44x28', '1x1x1', '33x65x17:tn', '37x44x28:nt', '7x13x5:tt'].map(parseShape);
const valid = new Set();
for (const id of ids) {
  const v = VERSIONS[id];
  if (!v) throw new Error(`no version ${id} (have ${Object.keys(VERSIONS).join(', ')})`);
  let ran = 0;
  for (const s of checks.filter((s) => v.ok(s))) {
    const bufs = buffers(s);
    await run(await prepare(v, s, bufs));
    // f16 versions: the reference on the f16-rounded inputs; the output is rounded once (2^-11 relative).
    const got = v.half ? await readFloats(rt.device, bufs.C16, s.M * s.N) : await readF32(rt.device, bufs.C);
    const want = v.half ? refMatmul(bufs.a16, bufs.b16, s) : refMatmul(bufs.a, bufs.b, s);
    let worst = 0;
    for (let i = 0; i < want.length; i++) {
      const err = Math.abs(got[i] - want[i]) - (v.half ? 2 ** -11 * Math.abs(want[i]) : 0);
      worst = Math.max(worst, err || (got[i] === want[i] ? 0 : Infinity));
    }
    bufs.destroy();
    if (!(worst <= 1e-4 * Math.sqrt(s.K) + 1e-6)) { console.log(JSON.stringify({ version: id, check: s.tag, error: `max |err| ${worst}` })); process.exitCode = 1; ran = -1; break; }
    ran++;
  }
  if (ran > 0) valid.add(id);
  console.error(`v${id} ${v.name}: ${ran > 0 ? `correct on ${ran} check shapes` : 'FAILED'}`);
}

// 2. The adapter's arithmetic ceiling (shaders/lab/fma_peak.wgsl), best of 3.
async function measurePeak() {
  const groups = 512, iters = 4096;
  const sink = { buffer: createStorage(rt.device, groups * 64 * 4, 'sink'), offset: 0, size: groups * 64 * 4 };
  const rec = new Recorder(rt);
  await rec.dispatch({ label: 'fma peak', shader: 'lab/fma_peak', entry: 'main', bindings: ['write'], uniform: [['u32', iters], ['f32', 0.5]], resources: [sink], workgroups: [groups, 1, 1], cost: { flops: 0, bytes: 0 } });
  await run(rec);
  let best = Infinity;
  for (let i = 0; i < 3; i++) { const t = performance.now(); await run(rec); best = Math.min(best, performance.now() - t); }
  sink.buffer.destroy();
  return (groups * 64 * iters * 8 * 4 * 2) / (best * 1e6);
}
const peak = await measurePeak();
console.log(JSON.stringify({ adapter, measured_peak_gflops: +peak.toPrecision(4), note: 'independent vec4 FMA chains, no memory traffic' }));

// 3. Timing: per shape, every valid version prepared, warmed up, then timed in interleaved rounds.
for (const s of shapes) {
  const bufs = buffers(s);
  const entries = [];
  for (const id of ids.filter((id) => valid.has(id))) {
    if (!VERSIONS[id].ok(s)) { console.log(JSON.stringify({ version: id, shape: s.tag, skipped: 'shape not supported' })); continue; }
    const rec = await prepare(VERSIONS[id], s, bufs);
    await run(rec);
    entries.push({ id, rec, ms: [], cpu: [] });
  }
  for (let i = 0; i < iters; i++) {
    for (const e of entries) {
      const t = performance.now();
      const u = process.cpuUsage();
      await run(e.rec);
      const d = process.cpuUsage(u);
      e.ms.push(performance.now() - t);
      e.cpu.push((d.user + d.system) / 1000);
    }
  }
  const flops = 2 * s.M * s.N * s.K;
  const gf = (e) => flops / (median(e.ms) * 1e6);
  const best = entries.reduce((a, e) => (gf(e) > gf(a) ? e : a), entries[0]);
  for (const e of entries) {
    const med = median(e.ms);
    console.log(JSON.stringify({
      version: e.id, name: VERSIONS[e.id].name, shape: s.tag, adapter, ms_median: +med.toPrecision(4), ms_min: +Math.min(...e.ms).toPrecision(4),
      cpu_ms_median: +median(e.cpu).toPrecision(4), gflops: +gf(e).toPrecision(4), of_best: +(gf(e) / gf(best)).toPrecision(3), of_peak: +(gf(e) / peak).toPrecision(3),
    }));
    for (const b of e.rec.owned) b.destroy();
  }
  if (best) console.log(JSON.stringify({ shape: s.tag, best_version: best.id, best_gflops: +gf(best).toPrecision(4), measured_peak_gflops: +peak.toPrecision(4) }));
  bufs.destroy();
}
rt.destroy();
process.exit();
