// The three matmul kernels — matmul.wgsl ('tiled'), matmul_sg.wgsl ('subgroup', with its vec4 and scalar
// load and store paths and its workgroup sizes) and matmul_rb.wgsl ('registers', with every block shape) —
// (forward, both backward products, fused bias/activation, accumulate, batch) and bias_grad.wgsl against
// src/reference/ops.ts. The 'subgroup' kernel runs where the adapter can take it; the others run everywhere.
import { describe, it, beforeAll, expect } from 'vitest';
import { testRuntime, upload, zeros, runRecorded, read, randn, expectClose, Recorder } from '../helpers.ts';
import {
  recordMatmul, recordBiasGrad, DEFAULT_TILE, NARROW_TILE, knownSubgroupSize, chooseKernel, subgroupWorkgroupSize, registersWorkgroupSize, isSoftwareAdapter,
  type MatmulKernel, type RegisterBlock,
} from '../../src/ops/matmul.ts';
import * as ref from '../../src/reference/ops.ts';
import type { Runtime } from '../../src/gpu/device.ts';

const rt = await testRuntime();
// f32 products of K terms of unit-variance values: error grows like sqrt(K)·eps·|terms|.
const tolFor = (K: number) => ({ atol: 2e-5 * Math.sqrt(K) + 1e-6, rtol: 1e-4 });

const shapes: [number, number, number][] = [
  [1, 1, 1],
  [7, 13, 5],
  [33, 65, 17],
  [128, 256, 64],
  [200, 96, 300],
  // 'subgroup' kernel load paths: K % 4 == 0 only (vec4 A, vec4 Bᵀ), N % 4 == 0 only (vec4 B), both, neither.
  [33, 65, 20],
  [37, 44, 17],
  [9, 12, 8],
  [130, 10, 256],
];

const kernels: MatmulKernel[] = ['tiled', 'subgroup', 'registers'];
const canRun = (k: MatmulKernel) => !!rt && (k !== 'subgroup' || knownSubgroupSize(rt) >= 8);

async function check(rt: Runtime, M: number, N: number, K: number, o: { transA?: boolean; transB?: boolean; bias?: boolean; act?: ref.Activation; accumulate?: boolean; tile?: typeof DEFAULT_TILE; kernel?: MatmulKernel; alpha?: number; sgWorkgroup?: number; rbBlock?: RegisterBlock; rbWorkgroup?: number }) {
  const A = randn(M * K, M * 7 + K);
  const B = randn(K * N, N * 13 + K);
  const bias = o.bias ? randn(N, N + 1) : undefined;
  const C0 = o.accumulate ? randn(M * N, 99) : undefined;
  const rec = new Recorder(rt);
  const C = C0 ? upload(rt, C0) : zeros(rt, M * N);
  const pre = o.act && o.act !== 'none' ? zeros(rt, M * N) : undefined;
  await recordMatmul(rec, {
    label: 'test', A: upload(rt, A), B: upload(rt, B), C, M, N, K,
    transA: o.transA, transB: o.transB, bias: bias && upload(rt, bias), act: o.act, pre, accumulate: o.accumulate, tile: o.tile, kernel: o.kernel, alpha: o.alpha, sgWorkgroup: o.sgWorkgroup, rbBlock: o.rbBlock, rbWorkgroup: o.rbWorkgroup,
  });
  await runRecorded(rt, rec);
  const want = ref.matmul(A, B, M, N, K, { transA: o.transA, transB: o.transB, alpha: o.alpha, bias });
  const got = await read(rt, C);
  const tol = tolFor(K);
  if (pre) expectClose(await read(rt, pre), want, tol, `pre-activation ${M}x${N}x${K}`);
  const act = o.act ?? 'none';
  const expected = ref.mapArray(want, (v, i) => ref.actForward(act, v) + (C0 ? C0[i] : 0));
  expectClose(got, expected, tol, `matmul ${M}x${N}x${K} ${JSON.stringify(o)}`);
}

for (const kernel of kernels) {
describe.skipIf(!canRun(kernel))(`matmul kernel '${kernel}'`, () => {
  for (const [M, N, K] of shapes) {
    it(`C = A·B  ${M}×${N}×${K}`, () => check(rt!, M, N, K, { kernel }));
    it(`dA = dC·Bᵀ (transB)  ${M}×${N}×${K}`, () => check(rt!, M, N, K, { transB: true, kernel }));
    it(`dB += Aᵀ·dC (transA, accumulate)  ${M}×${N}×${K}`, () => check(rt!, M, N, K, { transA: true, accumulate: true, kernel }));
  }
  it('both transposed', () => check(rt!, 70, 10, 33, { transA: true, transB: true, kernel }));
  if (kernel === 'tiled') it('both transposed, narrow tile', () => check(rt!, 70, 10, 33, { transA: true, transB: true, tile: NARROW_TILE }));
  for (const act of ['relu', 'gelu', 'silu', 'tanh', 'sigmoid'] as const) {
    it(`fused bias + ${act} epilogue, 33×65×17`, () => check(rt!, 33, 65, 17, { bias: true, act, kernel }));
  }
  it('fused bias + relu epilogue, accumulate, aligned 64×32×16', () => check(rt!, 64, 32, 16, { bias: true, act: 'relu', accumulate: true, kernel }));
  it('larger: 512×384×256 with bias', () => check(rt!, 512, 384, 256, { bias: true, kernel }));
  it('scaled product (alpha 0.25) with bias and accumulate, 33×65×17', () => check(rt!, 33, 65, 17, { bias: true, accumulate: true, alpha: 0.25, kernel }));
  // N % 4 == 0: the 'subgroup' kernel's vec4 epilogue (store4), with odd M and K and every epilogue stage.
  for (const act of ['gelu', 'relu'] as const) {
    it(`vec4 epilogue: alpha, bias, ${act} with pre, accumulate, 37×44×17 and 37×44×17 transA`, async () => {
      await check(rt!, 37, 44, 17, { bias: true, act, accumulate: true, alpha: 0.5, kernel });
      await check(rt!, 37, 44, 17, { transA: true, bias: true, act, kernel });
    });
  }
  it('larger, transposed: 300×260×132 (transB) and 260×132×300 (transA)', async () => {
    await check(rt!, 300, 260, 132, { transB: true, kernel });
    await check(rt!, 260, 132, 300, { transA: true, kernel });
  });
  it('MLP 784-256-256-10 at batch 128: forward, dW, dx', async () => {
    await check(rt!, 128, 256, 784, { bias: true, act: 'relu', kernel });
    await check(rt!, 128, 10, 256, { bias: true, kernel });
    await check(rt!, 784, 256, 128, { transA: true, accumulate: true, kernel });
    await check(rt!, 256, 10, 128, { transA: true, accumulate: true, kernel });
    await check(rt!, 128, 256, 256, { transB: true, kernel });
    await check(rt!, 128, 256, 10, { transB: true, kernel });
  });

  for (const [Bt, M, N, K] of [[3, 17, 9, 11], [2, 20, 12, 8]] as const) {
    it(`batched: ${Bt} independent products ${M}×${N}×${K}`, async () => {
      const A = randn(Bt * M * K, 1);
      const B = randn(Bt * K * N, 2);
      const rec = new Recorder(rt!);
      const C = zeros(rt!, Bt * M * N);
      await recordMatmul(rec, { label: 'batched', A: upload(rt!, A), B: upload(rt!, B), C, M, N, K, batch: Bt, kernel });
      await runRecorded(rt!, rec);
      const got = await read(rt!, C);
      for (let b = 0; b < Bt; b++) {
        const want = ref.matmul(A.subarray(b * M * K), B.subarray(b * K * N), M, N, K);
        expectClose(got.subarray(b * M * N, (b + 1) * M * N), want, tolFor(K), `batch ${b}`);
      }
    });
  }
});
}

describe.skipIf(!canRun('subgroup'))("'subgroup' kernel workgroup sizes", () => {
  it('the default wastes the fewest padded rows and leaves work for every CPU thread', () => {
    expect(subgroupWorkgroupSize(784, 256)).toBe(56); // 7 × 112 rows, not 7 × 128
    expect(subgroupWorkgroupSize(128, 256)).toBe(64);
    expect(subgroupWorkgroupSize(784, 256, 1, 16) % 16).toBe(0);
    expect(subgroupWorkgroupSize(128, 10)).toBe(16);
  });
  // Workgroups of 56, 40 and 24 invocations (rows per workgroup not a power of two), odd and vec4 shapes.
  for (const sgWorkgroup of [undefined, 40, 24]) {
    it(`WG ${sgWorkgroup ?? subgroupWorkgroupSize(100, 65)}: 100×65×33, 100×64×36 (bias, gelu), transA and transB`, async () => {
      await check(rt!, 100, 65, 33, { kernel: 'subgroup', sgWorkgroup });
      await check(rt!, 100, 64, 36, { bias: true, act: 'gelu', kernel: 'subgroup', sgWorkgroup });
      await check(rt!, 100, 64, 33, { transA: true, accumulate: true, kernel: 'subgroup', sgWorkgroup });
      await check(rt!, 100, 65, 36, { transB: true, kernel: 'subgroup', sgWorkgroup });
    });
  }
});

describe.skipIf(!rt)("'registers' kernel blocks and workgroup sizes", () => {
  it('the default pads M least and leaves work for every CPU thread', () => {
    expect(registersWorkgroupSize(784, 256, 1, { TM: 1, TN: 8 })).toBe(16); // 49 × 16 rows: no padding
    expect(registersWorkgroupSize(784, 256, 1, { TM: 4, TN: 8 })).toBe(16); // 13 × 64 rows, not 4 × 256
    expect(registersWorkgroupSize(128, 256, 1, { TM: 1, TN: 8 })).toBe(64);
    expect(registersWorkgroupSize(128, 256, 1, { TM: 4, TN: 8 })).toBe(32);
    expect(registersWorkgroupSize(128, 10, 1, { TM: 4, TN: 4 })).toBe(8); // 12 workgroups, not 3
    expect(registersWorkgroupSize(1, 1)).toBe(4);
  });
  // Every block shape on odd and vec4 shapes, each transpose, the full epilogue, a batch and odd workgroup sizes.
  for (const rbBlock of [{ TM: 1, TN: 4 }, { TM: 1, TN: 8 }, { TM: 2, TN: 8 }, { TM: 4, TN: 4 }, { TM: 4, TN: 8 }] as RegisterBlock[]) {
    it(`${rbBlock.TM}×${rbBlock.TN} per invocation: 100×65×33, 100×64×36 (bias, gelu, alpha, accumulate), transA, transB, both`, async () => {
      const kernel = 'registers';
      await check(rt!, 100, 65, 33, { kernel, rbBlock });
      await check(rt!, 100, 64, 36, { bias: true, act: 'gelu', alpha: 0.5, accumulate: true, kernel, rbBlock });
      await check(rt!, 100, 64, 33, { transA: true, accumulate: true, kernel, rbBlock, rbWorkgroup: 12 });
      await check(rt!, 100, 65, 36, { transB: true, kernel, rbBlock, rbWorkgroup: 20 });
      await check(rt!, 37, 13, 18, { transA: true, transB: true, bias: true, act: 'relu', kernel, rbBlock });
    });
  }
});

describe.skipIf(!rt)('matmul kernel choice', () => {
  it('software adapters get a kernel without workgroup memory: subgroup with ≥ 8 lanes, else registers', () => {
    const want = !isSoftwareAdapter(rt!) ? 'tiled' : knownSubgroupSize(rt!) >= 8 ? 'subgroup' : 'registers';
    expect(chooseKernel(rt!)).toBe(want);
  });
  it(`default kernel on this adapter (${rt ? chooseKernel(rt) : '-'}) matches the reference`, () => check(rt!, 45, 30, 28, { bias: true, act: 'gelu' }));
  it('a forced tile means the tiled kernel', () => check(rt!, 33, 65, 17, { tile: DEFAULT_TILE }));
});

describe.skipIf(!rt)('bias_grad kernel', () => {
  for (const [M, N] of [[1, 1], [7, 13], [300, 65], [1000, 3]] as const) {
    it(`dbias += Σ_m dout  ${M}×${N}`, async () => {
      const dout = randn(M * N, M + N);
      const db0 = randn(N, 5);
      const rec = new Recorder(rt!);
      const db = upload(rt!, db0);
      await recordBiasGrad(rec, 'test', upload(rt!, dout), db, M, N);
      await runRecorded(rt!, rec);
      const want = ref.mapArray(ref.biasGrad(dout, M, N), (v, i) => v + db0[i]);
      expectClose(await read(rt!, db), want, { atol: 1e-5 * Math.sqrt(M), rtol: 1e-5 }, `bias grad ${M}x${N}`);
    });
  }
});
