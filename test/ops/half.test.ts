// The f16 (mixed-precision) paths of the kernels against src/reference/, on f16-rounded inputs: matmul
// (every kernel, every operand type), activation, bias gradient, cross-entropy and MSE with the loss
// scale, the f32 → f16 weight cast, and the f16 store's overflow to ±Inf. Tolerance: a value stored in f16
// is rounded once, to within 2^-11 relative (rtol 5e-4), on top of the f32 accumulation's error.
import { describe, it, expect } from 'vitest';
import { testRuntime, upload, zeros, runRecorded, read, randn, expectClose, Recorder } from '../helpers.ts';
import { recordMatmul, recordBiasGrad, knownSubgroupSize, type MatmulKernel } from '../../src/ops/matmul.ts';
import { recordActivationForward, recordActivationBackward } from '../../src/ops/activation.ts';
import { recordCrossEntropy, recordMse } from '../../src/ops/loss.ts';
import { recordCastF16 } from '../../src/ops/cast.ts';
import { recordAdd, recordCopyGrad } from '../../src/ops/add.ts';
import { createStorage, readFloats, writeArray, type View } from '../../src/gpu/buffers.ts';
import { toHalf, roundHalf } from '../../src/reference/half.ts';
import { recordLayerNormForward, recordLayerNormBackward } from '../../src/ops/layernorm.ts';
import { recordAttentionForward, recordAttentionBackward, attentionScratchElements, type AttentionKernel } from '../../src/ops/attention.ts';
import * as ref from '../../src/reference/ops.ts';
import * as tref from '../../src/reference/transformer.ts';
import type { Runtime } from '../../src/gpu/device.ts';

const rt = await testRuntime();
const hasF16 = !!rt && rt.features.has('shader-f16');
const HALF = 5e-4;

function uploadHalf(rt: Runtime, x: ArrayLike<number>): View {
  const bits = toHalf(x);
  const padded = new Uint16Array(Math.ceil(bits.length / 2) * 2);
  padded.set(bits);
  const buffer = createStorage(rt.device, padded.byteLength, 'f16 test data');
  writeArray(rt.device, buffer, 0, padded);
  return { buffer, offset: 0, size: Math.max(4, padded.byteLength), dtype: 'f16' };
}
const zerosHalf = (rt: Runtime, n: number): View => uploadHalf(rt, new Float32Array(n));
const readAny = (rt: Runtime, v: View, n: number) => readFloats(rt.device, v, n);

type T = 'f32' | 'f16';
const put = (rt: Runtime, x: Float32Array, t: T) => (t === 'f16' ? uploadHalf(rt, x) : upload(rt, x));
const rounded = (x: Float32Array, t: T) => (t === 'f16' ? roundHalf(x) : x);

async function checkMatmul(rt: Runtime, M: number, N: number, K: number, types: [T, T, T], o: { transA?: boolean; transB?: boolean; accumulate?: boolean; bias?: boolean; act?: ref.Activation; kernel: MatmulKernel }) {
  const A = rounded(randn(M * K, M * 3 + K), types[0]);
  const B = rounded(randn(K * N, N * 5 + K), types[1]);
  const bias = o.bias ? randn(N, N) : undefined;
  const C0 = o.accumulate ? rounded(randn(M * N, 7), types[2]) : undefined;
  const C = C0 ? put(rt, C0, types[2]) : types[2] === 'f16' ? zerosHalf(rt, M * N) : zeros(rt, M * N);
  const pre = o.act ? (types[2] === 'f16' ? zerosHalf(rt, M * N) : zeros(rt, M * N)) : undefined;
  const rec = new Recorder(rt);
  await recordMatmul(rec, {
    label: 'f16 test', A: put(rt, A, types[0]), B: put(rt, B, types[1]), C, M, N, K, transA: o.transA, transB: o.transB,
    accumulate: o.accumulate, bias: bias && upload(rt, bias), act: o.act, pre, kernel: o.kernel,
  });
  await runRecorded(rt, rec);
  const z = ref.matmul(A, B, M, N, K, { transA: o.transA, transB: o.transB, bias });
  const want = ref.mapArray(z, (v, i) => ref.actForward(o.act ?? 'none', v) + (C0 ? C0[i] : 0));
  const tol = { atol: 2e-5 * Math.sqrt(K) + 1e-6, rtol: types[2] === 'f16' ? HALF : 1e-4 };
  expectClose(await readAny(rt, C, M * N), want, tol, `matmul ${M}×${N}×${K} ${types.join('/')} ${JSON.stringify(o)}`);
  if (pre) expectClose(await readAny(rt, pre, M * N), z, tol, `pre-activation ${M}×${N}×${K}`);
}

const kernels: MatmulKernel[] = ['tiled', 'subgroup', 'registers'];
for (const kernel of kernels) {
  const can = hasF16 && (kernel !== 'subgroup' || knownSubgroupSize(rt!) >= 8);
  describe.skipIf(!can)(`f16 matmul, kernel '${kernel}'`, () => {
    for (const [M, N, K] of [[7, 13, 5], [33, 65, 20], [128, 256, 64], [37, 44, 17]] as const) {
      it(`forward, f16 in and out, bias + gelu with pre  ${M}×${N}×${K}`, () => checkMatmul(rt!, M, N, K, ['f16', 'f16', 'f16'], { bias: true, act: 'gelu', kernel }));
      it(`dW += xᵀ·dy: f16 operands, f32 output (transA)  ${M}×${N}×${K}`, () => checkMatmul(rt!, M, N, K, ['f16', 'f16', 'f32'], { transA: true, accumulate: true, kernel }));
      it(`dx (+)= dy·Wᵀ: f32 dy, f16 weights and dx (transB, accumulate)  ${M}×${N}×${K}`, () => checkMatmul(rt!, M, N, K, ['f32', 'f16', 'f16'], { transB: true, accumulate: true, kernel }));
      it(`first layer: f32 input, f16 weights, f16 output  ${M}×${N}×${K}`, () => checkMatmul(rt!, M, N, K, ['f32', 'f16', 'f16'], { kernel }));
    }
  });
}

describe.skipIf(!hasF16)('f16 elementwise, reductions and losses', () => {
  it('activation forward and backward (f16 in, f16 or f32 out) for every activation', async () => {
    const n = 1001;
    const x = roundHalf(randn(n, 1, 2));
    const dy = roundHalf(randn(n, 2));
    // relu, tanh and sigmoid save their (f16) output: f' is then a function of it, as the kernel computes it.
    const fromOutput = { relu: (y: number) => (y > 0 ? 1 : 0), tanh: (y: number) => 1 - y * y, sigmoid: (y: number) => y * (1 - y) };
    for (const act of ['relu', 'gelu', 'silu', 'tanh', 'sigmoid'] as const) {
      const wantY = ref.mapArray(x, (v) => ref.actForward(act, v));
      const savedIn = act === 'gelu' || act === 'silu';
      const saved = savedIn ? x : roundHalf(wantY);
      const y = zerosHalf(rt!, n);
      const dx16 = zerosHalf(rt!, n);
      const dx32 = zeros(rt!, n);
      const rec = new Recorder(rt!);
      await recordActivationForward(rec, 'f', act, uploadHalf(rt!, x), y, n);
      await recordActivationBackward(rec, 'b16', act, uploadHalf(rt!, dy), uploadHalf(rt!, saved), dx16, n, false);
      await recordActivationBackward(rec, 'b32', act, uploadHalf(rt!, dy), uploadHalf(rt!, saved), dx32, n, false);
      await runRecorded(rt!, rec);
      const wantDx = ref.mapArray(saved, (v, i) => dy[i] * (savedIn ? ref.actDerivative(act, v) : fromOutput[act as keyof typeof fromOutput](v)));
      expectClose(await readAny(rt!, y, n), wantY, { atol: 1e-6, rtol: HALF }, `${act} forward`);
      expectClose(await readAny(rt!, dx16, n), wantDx, { atol: 1e-6, rtol: HALF }, `${act} backward (f16 dx)`);
      expectClose(await read(rt!, dx32), wantDx, { atol: 1e-6, rtol: 1e-5 }, `${act} backward (f32 dx)`);
    }
  });

  it('bias gradient from an f16 output gradient (f32 sums)', async () => {
    const [M, N] = [37, 70];
    const dout = roundHalf(randn(M * N, 3));
    const db = zeros(rt!, N);
    const rec = new Recorder(rt!);
    await recordBiasGrad(rec, 'db', uploadHalf(rt!, dout), db, M, N);
    await runRecorded(rt!, rec);
    expectClose(await read(rt!, db), ref.biasGrad(dout, M, N), { atol: 1e-5, rtol: 1e-5 }, 'bias grad');
  });

  for (const perRow of [false, true]) {
    it(`cross-entropy on f16 logits, gradient × loss scale 1024 in f16 (${perRow ? 'thread' : 'workgroup'} per row)`, async () => {
      const [R, V] = [9, 37];
      const logits = roundHalf(randn(R * V, 4, 3));
      const labels = new Int32Array(R).map((_, i) => (i * 5) % V);
      const losses = zeros(rt!, R);
      const dlogits = zerosHalf(rt!, R * V);
      const status = upload(rt!, new Float32Array([0, 1, 0, 0, 0, 1024, 0, 0]));
      const rec = new Recorder(rt!);
      await recordCrossEntropy(rec, 'ce', { logits: uploadHalf(rt!, logits), labels: upload(rt!, labels), losses, dlogits, R, V, gradScale: 1 / R, perRow, lossScale: status });
      await runRecorded(rt!, rec);
      const want = ref.crossEntropy(logits, labels, R, V, 1024 / R);
      expectClose(await read(rt!, losses), want.losses, { atol: 1e-5, rtol: 1e-5 }, 'losses');
      expectClose(await readAny(rt!, dlogits, R * V), want.dlogits, { atol: 1e-4, rtol: HALF }, 'scaled dlogits');
    });
  }

  it('MSE on f16 predictions, gradient × loss scale 8 in f16', async () => {
    const [R, D] = [5, 11];
    const pred = roundHalf(randn(R * D, 5));
    const tgt = randn(R * D, 6);
    const losses = zeros(rt!, R);
    const dpred = zerosHalf(rt!, R * D);
    const status = upload(rt!, new Float32Array([0, 1, 0, 0, 0, 8, 0, 0]));
    const rec = new Recorder(rt!);
    await recordMse(rec, 'mse', { pred: uploadHalf(rt!, pred), target: upload(rt!, tgt), losses, dpred, R, D, gradScale: 1 / (R * D), lossScale: status });
    await runRecorded(rt!, rec);
    const want = ref.mse(pred, tgt);
    expectClose(await readAny(rt!, dpred, R * D), ref.mapArray(want.dpred, (v) => 8 * v), { atol: 1e-6, rtol: HALF }, 'scaled dpred');
    const rows = await read(rt!, losses);
    expect(Math.abs(rows.reduce((a, b) => a + b, 0) / (R * D) - want.loss)).toBeLessThan(1e-5 * want.loss);
  });

  it('the weight cast rounds to nearest and clamps to ±65504; f16 stores turn overflow and NaN into ±Inf', async () => {
    const w = new Float32Array([1, -2.5, 1e-3, 3.14159, 7e4, -1e9, 65504, 1 / 3]);
    const out = zerosHalf(rt!, 8);
    const rec = new Recorder(rt!);
    await recordCastF16(rec, 'cast', upload(rt!, w).buffer, out.buffer, 8);
    // f16 matmul outputs past f16's range: 90000 → +Inf, −90000 → −Inf, 65519 → 65504 (IEEE rounding), NaN → ±Inf.
    const C = zerosHalf(rt!, 4);
    await recordMatmul(rec, { label: 'overflow', A: upload(rt!, new Float32Array([90000, -90000, 65519, NaN])), B: upload(rt!, new Float32Array([1])), C, M: 4, N: 1, K: 1, kernel: 'tiled' });
    await runRecorded(rt!, rec);
    expect([...(await readAny(rt!, out, 8))]).toEqual([...roundHalf([1, -2.5, 1e-3, 3.14159, 65504, -65504, 65504, 1 / 3])]);
    const c = await readAny(rt!, C, 4);
    expect([c[0], c[1], c[2]]).toEqual([Infinity, -Infinity, 65504]);
    expect(Math.abs(c[3])).toBe(Infinity);
  });

  it('a kernel without an f16 path refuses an f16 view, naming the dispatch', async () => {
    const rec = new Recorder(rt!);
    const spec = { label: 'fc1 mean', shader: 'sum', entry: 'main', bindings: ['read', 'write'] as const, uniform: [['u32', 8], ['f32', 1]] as [['u32', number], ['f32', number]], workgroups: [1, 1, 1] as [number, number, number], cost: { flops: 0, bytes: 0 } };
    await expect(rec.dispatch({ ...spec, resources: [zerosHalf(rt!, 8), zeros(rt!, 1)] })).rejects.toThrow(/fc1 mean: kernel sum\.main does not take f16 tensors \(binding 1\)/);
    await rec.dispatch({ ...spec, resources: [zeros(rt!, 8), zeros(rt!, 1)] }); // the same dispatch on f32 views records
  });

  it('residual add and gradient copy on f16 views', async () => {
    const n = 333;
    const [x, y] = [roundHalf(randn(n, 8)), roundHalf(randn(n, 9))];
    const out = zerosHalf(rt!, n);
    const acc = uploadHalf(rt!, y);
    const rec = new Recorder(rt!);
    await recordAdd(rec, 'add', { x: uploadHalf(rt!, x), y: upload(rt!, y), out, n });
    await recordCopyGrad(rec, 'copy', { src: uploadHalf(rt!, x), dst: acc, n, accumulate: true });
    await runRecorded(rt!, rec);
    const sum = ref.mapArray(x, (v, i) => v + y[i]);
    expectClose(await readAny(rt!, out, n), sum, { atol: 1e-7, rtol: HALF }, 'x + y');
    expectClose(await readAny(rt!, acc, n), sum, { atol: 1e-7, rtol: HALF }, 'dst += src');
  });

  for (const perRow of [false, true]) {
    it(`LayerNorm on f16 activations, forward and backward, f32 statistics and parameter gradients (${perRow ? 'thread' : 'workgroup'} per row)`, async () => {
      const [R, C, eps] = [7, 45, 1e-5];
      const inp = roundHalf(randn(R * C, 11, 2).map((v) => v + 0.5));
      const [w, b] = [randn(C, 12), randn(C, 13)];
      const dout = roundHalf(randn(R * C, 14));
      const [out, dinp] = [zerosHalf(rt!, R * C), zerosHalf(rt!, R * C)];
      const [mean, rstd, dw, db] = [zeros(rt!, R), zeros(rt!, R), zeros(rt!, C), zeros(rt!, C)];
      const inpV = uploadHalf(rt!, inp);
      const wV = upload(rt!, w);
      const rec = new Recorder(rt!);
      await recordLayerNormForward(rec, 'ln', { inp: inpV, weight: wV, bias: upload(rt!, b), out, mean, rstd, R, C, eps, perRow });
      await recordLayerNormBackward(rec, 'ln back', { dout: uploadHalf(rt!, dout), inp: inpV, weight: wV, mean, rstd, dinp, dweight: dw, dbias: db, R, C, accumulate: false, perRow });
      await runRecorded(rt!, rec);
      const f = tref.layerNormForward(inp, w, b, R, C, eps);
      const g = tref.layerNormBackward(dout, inp, w, R, C, eps);
      expectClose(await readAny(rt!, out, R * C), f.out, { atol: 1e-5, rtol: HALF }, 'out');
      expectClose(await read(rt!, rstd), f.rstd, { atol: 0, rtol: 1e-5 }, 'rstd (f32)');
      expectClose(await readAny(rt!, dinp, R * C), g.dinp, { atol: 1e-4, rtol: HALF }, 'dinp');
      expectClose(await read(rt!, dw), g.dweight, { atol: 1e-5, rtol: 1e-4 }, 'dweight (f32)');
      expectClose(await read(rt!, db), g.dbias, { atol: 1e-5, rtol: 1e-4 }, 'dbias (f32)');
    });

    it(`fused residual + LayerNorm on f16: the stored sum is rounded once and normalised as stored (${perRow ? 'thread' : 'workgroup'} per row)`, async () => {
      const [R, C, eps] = [5, 33, 1e-5];
      const [x, y] = [roundHalf(randn(R * C, 21)), roundHalf(randn(R * C, 22))];
      const [w, b] = [randn(C, 23), randn(C, 24)];
      const [dout, dsum] = [roundHalf(randn(R * C, 25)), roundHalf(randn(R * C, 26))];
      const [sum, out, dx, dy] = [zerosHalf(rt!, R * C), zerosHalf(rt!, R * C), zerosHalf(rt!, R * C), uploadHalf(rt!, dsum)];
      const [mean, rstd, dw, db] = [zeros(rt!, R), zeros(rt!, R), zeros(rt!, C), zeros(rt!, C)];
      const wV = upload(rt!, w);
      const rec = new Recorder(rt!);
      await recordLayerNormForward(rec, 'ln', { inp: uploadHalf(rt!, x), weight: wV, bias: upload(rt!, b), out, mean, rstd, R, C, eps, perRow, residual: { y: uploadHalf(rt!, y), sum } });
      await recordLayerNormBackward(rec, 'ln back', {
        dout: uploadHalf(rt!, dout), inp: sum, weight: wV, mean, rstd, dweight: dw, dbias: db, R, C, perRow,
        residual: { dsum: uploadHalf(rt!, dsum), dx, accumulateX: false, dy, accumulateY: true },
      });
      await runRecorded(rt!, rec);
      const s = roundHalf(ref.mapArray(x, (v, i) => v + y[i]));
      const f = tref.layerNormForward(s, w, b, R, C, eps);
      const g = tref.layerNormBackward(dout, s, w, R, C, eps);
      const ds = g.dinp.map((v, i) => v + dsum[i]);
      expectClose(await readAny(rt!, sum, R * C), s, { atol: 0, rtol: 0 }, 'sum');
      expectClose(await readAny(rt!, out, R * C), f.out, { atol: 1e-5, rtol: HALF }, 'out');
      expectClose(await readAny(rt!, dx, R * C), ds, { atol: 1e-4, rtol: HALF }, 'dx');
      expectClose(await readAny(rt!, dy, R * C), ds.map((v, i) => v + dsum[i]), { atol: 1e-4, rtol: 2 * HALF }, 'dy (accumulated onto dsum)');
      expectClose(await read(rt!, dw), g.dweight, { atol: 1e-5, rtol: 1e-4 }, 'dweight (f32)');
    });
  }

  for (const kernel of ['tiled', 'subgroup'] as AttentionKernel[]) {
    for (const [B, T, C, NH] of [[2, 13, 24, 2], [1, 9, 30, 3]] as const) {
      it.skipIf(kernel === 'subgroup' && knownSubgroupSize(rt!) < 8)(`attention on f16 qkv/out/dout/dqkv, f32 lse (${kernel}, B ${B} T ${T} C ${C} NH ${NH})`, async () => {
        const qkv = roundHalf(randn(B * T * 3 * C, 41));
        const dout = roundHalf(randn(B * T * C, 42));
        const dqkv0 = roundHalf(randn(B * T * 3 * C, 43));
        const qkvV = uploadHalf(rt!, qkv);
        const [out, dqkv] = [zerosHalf(rt!, B * T * C), uploadHalf(rt!, dqkv0)];
        const lse = zeros(rt!, B * NH * T);
        const rec = new Recorder(rt!);
        await recordAttentionForward(rec, 'attn', { qkv: qkvV, out, lse, B, T, C, NH, kernel });
        await recordAttentionBackward(rec, 'attn back', { dout: uploadHalf(rt!, dout), qkv: qkvV, out, lse, dqkv, scratch: zeros(rt!, attentionScratchElements(B, T, NH)), B, T, C, NH, accumulate: true, kernel });
        await runRecorded(rt!, rec);
        const f = tref.attentionForward(qkv, B, T, C, NH);
        const g = tref.attentionBackward(dout, qkv, B, T, C, NH);
        expectClose(await readAny(rt!, out, B * T * C), f.out, { atol: 2e-5, rtol: HALF }, 'out');
        expectClose(await read(rt!, lse), f.lse, { atol: 2e-5, rtol: 1e-5 }, 'lse (f32)');
        // The backward's D = dout·out reads the stored (f16) out: an error up to 2^-11·Σ|dout·out| (measured ≤ 1.4e-3 here).
        expectClose(await readAny(rt!, dqkv, B * T * 3 * C), g.map((v, i) => v + dqkv0[i]), { atol: 2e-3, rtol: 2 * HALF }, 'dqkv (accumulated)');
      });
    }
  }
});
