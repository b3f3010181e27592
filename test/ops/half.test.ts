// The f16 (mixed-precision) paths of the kernels against src/reference/, on f16-rounded inputs: matmul
// (both kernels, every operand type), activation, bias gradient, cross-entropy and MSE with the loss
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
import * as ref from '../../src/reference/ops.ts';
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

const kernels: MatmulKernel[] = ['tiled', 'subgroup'];
for (const kernel of kernels) {
  const can = hasF16 && (kernel === 'tiled' || knownSubgroupSize(rt!) >= 8);
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
});
