// attention.wgsl (causal multi-head self-attention, forward and flash-style backward), both kernels ('tiled'
// and 'subgroup'), against the naive float64 reference in src/reference/transformer.ts, and the reference's
// gradients against finite differences.
import { describe, it, expect } from 'vitest';
import { testRuntime, upload, zeros, runRecorded, read, randn, expectClose, relL2, Recorder } from '../helpers.ts';
import {
  recordAttentionForward,
  recordAttentionBackward,
  attentionScratchElements,
  type AttentionKernel,
  type SubgroupAttentionSettings,
} from '../../src/ops/attention.ts';
import { knownSubgroupSize } from '../../src/ops/matmul.ts';
import * as ref from '../../src/reference/transformer.ts';
import type { Runtime } from '../../src/gpu/device.ts';

const rt = await testRuntime();

async function run(
  rt: Runtime,
  kernel: AttentionKernel,
  qkv: Float32Array,
  dout: Float32Array,
  dqkv0: Float32Array | null,
  B: number,
  T: number,
  C: number,
  NH: number,
  settings: SubgroupAttentionSettings = {},
) {
  const rec = new Recorder(rt);
  const qkvV = upload(rt, qkv);
  const out = zeros(rt, B * T * C);
  const lse = zeros(rt, B * NH * T);
  const dqkv = dqkv0 ? upload(rt, dqkv0) : upload(rt, new Float32Array(B * T * 3 * C).fill(77)); // assign must overwrite
  await recordAttentionForward(rec, 'attn', { qkv: qkvV, out, lse, B, T, C, NH, kernel, ...settings });
  await recordAttentionBackward(rec, 'attn back', {
    dout: upload(rt, dout),
    qkv: qkvV,
    out,
    lse,
    dqkv,
    scratch: zeros(rt, attentionScratchElements(B, T, NH)),
    B,
    T,
    C,
    NH,
    accumulate: dqkv0 !== null,
    kernel,
    ...settings,
  });
  await runRecorded(rt, rec);
  return { out: await read(rt, out), lse: await read(rt, lse), dqkv: await read(rt, dqkv) };
}

// [B, T, C, NH, also accumulate?]: T = 1; HS = 1, 5, 12, 20 (not powers of two), 64 (GPT-2); T across the
// 64-row workgroup and the key tiles (32 rows for HS ≤ 32, 16 for HS = 64); odd B·NH. The last one is the
// larger case. Each (HS, accumulate) pair is a pipeline that lavapipe compiles for seconds (it unrolls
// the HS loops; HS = 64 for up to 30 s on a cold cache), so accumulate is tested for the head sizes other than
// 20 and 64 only.
const SHAPES: [number, number, number, number, boolean][] = [
  [1, 1, 36, 3, true],
  [1, 1, 1, 1, true],
  [2, 5, 36, 3, true],
  [1, 7, 5, 1, true],
  [2, 13, 60, 3, false],
  [3, 9, 20, 4, true],
  [1, 33, 12, 1, true],
  [1, 70, 24, 2, true],
  [1, 67, 128, 2, false],
  [2, 150, 60, 3, false],
  [2, 130, 36, 3, true],
];

// Forward: out is a convex combination of v rows (|v| ≲ 4) with f32 weights: ~1e-6 absolute; lse is a
// log of a sum of ≤ T exponentials plus the running max: ~1e-6 relative to |lse| ≲ 10.
const OUT_TOL = { atol: 2e-5, rtol: 1e-4 };
const LSE_TOL = { atol: 2e-5, rtol: 1e-5 };
// Backward: sums over ≤ T terms of products of f32 values, each P carrying exp()'s relative error
// (~|s|·eps): 1e-4 relative plus an absolute floor for entries that nearly cancel.
const GRAD_TOL = { atol: 1e-4, rtol: 1e-3 };

// 'subgroup' runs where subgroups of ≥ 8 lanes are known (lavapipe); elsewhere its suite shows as skipped.
for (const kernel of ['tiled', 'subgroup'] as const) {
  describe.skipIf(!rt || (kernel === 'subgroup' && knownSubgroupSize(rt) < 8))(`attention forward and backward (${kernel})`, () => {
    for (const [B, T, C, NH, alsoAccumulate] of SHAPES) {
      for (const accumulate of alsoAccumulate ? [false, true] : [false]) {
        it(`B=${B}, T=${T}, C=${C}, NH=${NH} (HS=${C / NH}), accumulate=${accumulate}`, async () => {
          const seed = B * 1000 + T * 10 + C + NH;
          const qkv = randn(B * T * 3 * C, seed);
          const dout = randn(B * T * C, seed + 1);
          const dqkv0 = accumulate ? randn(B * T * 3 * C, seed + 2) : null;
          const got = await run(rt!, kernel, qkv, dout, dqkv0, B, T, C, NH);
          const want = ref.attentionForward(qkv, B, T, C, NH);
          expectClose(got.out, want.out, OUT_TOL, 'out');
          expectClose(got.lse, want.lse, LSE_TOL, 'lse');
          const dq = ref.attentionBackward(dout, qkv, B, T, C, NH).map((v, i) => v + (dqkv0 ? dqkv0[i] : 0));
          expectClose(got.dqkv, dq, GRAD_TOL, 'dqkv');
          expect(relL2(got.dqkv, dq)).toBeLessThan(1e-5);
        });
      }
    }

    it('peaked softmax (scores with spread ~16): stable, no overflow, same tolerances', async () => {
      const [B, T, C, NH] = [2, 20, 36, 3];
      const qkv = randn(B * T * 3 * C, 5, 4);
      const dout = randn(B * T * C, 6);
      const got = await run(rt!, kernel, qkv, dout, null, B, T, C, NH);
      const want = ref.attentionForward(qkv, B, T, C, NH);
      expectClose(got.out, want.out, { atol: 1e-4, rtol: 1e-4 }, 'out');
      expectClose(got.lse, want.lse, { atol: 1e-4, rtol: 1e-5 }, 'lse');
      // Scores up to ~50: exp carries ~50·eps relative error into P, times |dout·v| ≲ 60.
      expectClose(got.dqkv, ref.attentionBackward(dout, qkv, B, T, C, NH), { atol: 1e-3, rtol: 1e-3 }, 'dqkv');
    });

    it('is bitwise repeatable (forward and backward, run twice)', async () => {
      const [B, T, C, NH] = [2, 45, 36, 3];
      const qkv = randn(B * T * 3 * C, 21);
      const dout = randn(B * T * C, 22);
      const a = await run(rt!, kernel, qkv, dout, null, B, T, C, NH);
      const b = await run(rt!, kernel, qkv, dout, null, B, T, C, NH);
      expect(Buffer.from(a.out.buffer).equals(Buffer.from(b.out.buffer))).toBe(true);
      expect(Buffer.from(a.lse.buffer).equals(Buffer.from(b.lse.buffer))).toBe(true);
      expect(Buffer.from(a.dqkv.buffer).equals(Buffer.from(b.dqkv.buffer))).toBe(true);
    });
  });
}

// The 'subgroup' settings that the attention lab times besides the default (8 rows, vec4 where HS and C allow).
describe.skipIf(!rt || knownSubgroupSize(rt) < 8)('attention subgroup kernel settings (lab versions 6 and 8)', () => {
  for (const settings of [{ sgVec4: false }, { sgRows: 32, sgVec4: true }]) {
    it(`${JSON.stringify(settings)}: B=2, T=45, C=24, NH=2, accumulate`, async () => {
      const [B, T, C, NH] = [2, 45, 24, 2];
      const qkv = randn(B * T * 3 * C, 31);
      const dout = randn(B * T * C, 32);
      const dqkv0 = randn(B * T * 3 * C, 33);
      const got = await run(rt!, 'subgroup', qkv, dout, dqkv0, B, T, C, NH, settings);
      const want = ref.attentionForward(qkv, B, T, C, NH);
      expectClose(got.out, want.out, OUT_TOL, 'out');
      expectClose(got.lse, want.lse, LSE_TOL, 'lse');
      const dq = ref.attentionBackward(dout, qkv, B, T, C, NH).map((v, i) => v + dqkv0[i]);
      expectClose(got.dqkv, dq, GRAD_TOL, 'dqkv');
    });
  }

  it('rejects rows per workgroup that are not a multiple of 8, and vec4 loads where HS is not a multiple of 4', async () => {
    const rec = new Recorder(rt!);
    const v = zeros(rt!, 64);
    const a = { qkv: v, out: v, lse: v, B: 1, T: 2, C: 10, NH: 2, kernel: 'subgroup' as const };
    await expect(recordAttentionForward(rec, 'bad', { ...a, sgRows: 12 })).rejects.toThrow(/sgRows/);
    await expect(recordAttentionForward(rec, 'bad', { ...a, sgVec4: true })).rejects.toThrow(/sgVec4/);
  });
});

describe.skipIf(!rt)('attention arguments', () => {
  it('rejects C not a multiple of NH and a short scratch', async () => {
    const rec = new Recorder(rt!);
    const v = zeros(rt!, 64);
    await expect(recordAttentionForward(rec, 'bad', { qkv: v, out: v, lse: v, B: 1, T: 2, C: 10, NH: 3 })).rejects.toThrow(/multiple of NH/);
    await expect(
      recordAttentionBackward(rec, 'bad', { dout: v, qkv: v, out: v, lse: v, dqkv: v, scratch: zeros(rt!, 2), B: 2, T: 4, C: 6, NH: 3, accumulate: false }),
    ).rejects.toThrow(/scratch/);
  });
});

describe('attention reference', () => {
  it('backward matches central finite differences of Σ out·G', () => {
    const [B, T, C, NH] = [2, 4, 6, 2];
    const qkv = Float64Array.from(randn(B * T * 3 * C, 31));
    const G = Float64Array.from(randn(B * T * C, 32));
    const loss = () => ref.attentionForward(qkv, B, T, C, NH).out.reduce((s, v, i) => s + v * G[i], 0);
    const g = ref.attentionBackward(G, qkv, B, T, C, NH);
    const fd = qkv.map((_, i) => {
      const h = 1e-6;
      const x0 = qkv[i];
      qkv[i] = x0 + h;
      const lp = loss();
      qkv[i] = x0 - h;
      const lm = loss();
      qkv[i] = x0;
      return (lp - lm) / (2 * h);
    });
    // float64 central differences, h = 1e-6: error ~1e-10 from rounding, ~1e-12 from truncation.
    expectClose(g, fd, { atol: 1e-7, rtol: 1e-6 }, 'dqkv vs finite differences');
    // T = 1 row attends only to itself: out = v, so dq = dk = 0 there.
    const one = ref.attentionBackward(G.subarray(0, C), qkv.subarray(0, 3 * C), 1, 1, C, NH);
    expect([...one.subarray(0, 2 * C)].every((v) => v === 0)).toBe(true);
  });
});
