// layernorm.wgsl (forward, backward dinp and parameter gradients) against src/reference/transformer.ts,
// and the reference's own gradients against central finite differences.
import { describe, it, expect } from 'vitest';
import { testRuntime, upload, zeros, runRecorded, read, randn, expectClose, Recorder } from '../helpers.ts';
import { recordLayerNormForward, recordLayerNormBackward } from '../../src/ops/layernorm.ts';
import * as ref from '../../src/reference/transformer.ts';
import type { Runtime } from '../../src/gpu/device.ts';

const rt = await testRuntime();
const EPS = 1e-5;

/** Rows with a mean of 3 and spread `scale`, so a one-pass E[x²] − mean² variance would lose digits. */
function rows(R: number, C: number, seed: number, scale = 2): Float32Array {
  const x = randn(R * C, seed, scale);
  for (let i = 0; i < x.length; i++) x[i] += 3;
  return x;
}

async function forward(rt: Runtime, inp: Float32Array, w: Float32Array, b: Float32Array, R: number, C: number, perRow: boolean) {
  const rec = new Recorder(rt);
  const out = zeros(rt, R * C);
  const mean = zeros(rt, R);
  const rstd = zeros(rt, R);
  await recordLayerNormForward(rec, 'ln', { inp: upload(rt, inp), weight: upload(rt, w), bias: upload(rt, b), out, mean, rstd, R, C, eps: EPS, perRow });
  await runRecorded(rt, rec);
  return { out: await read(rt, out), mean: await read(rt, mean), rstd: await read(rt, rstd) };
}

// Shapes: C below, at and above the 128-thread row workgroup and the 32-column parameter block, none a
// multiple of 4 except the GPT-2-like last one; R = 1 and R not a multiple of the 8 row lanes.
const SHAPES: [number, number][] = [[1, 1], [1, 5], [7, 13], [3, 129], [33, 96], [64, 77], [200, 300]];

for (const perRow of [false, true]) {
describe.skipIf(!rt)(`layernorm forward (${perRow ? 'thread' : 'workgroup'} per row)`, () => {
  for (const [R, C] of SHAPES) {
    it(`R=${R}, C=${C}`, async () => {
      const inp = rows(R, C, R * 13 + C);
      const w = randn(C, C + 1);
      const b = randn(C, C + 2);
      const got = await forward(rt!, inp, w, b, R, C, perRow);
      const want = ref.layerNormForward(inp, w, b, R, C, EPS);
      // mean: a sum of C f32 values near 3 (tree order): relative error ≲ log2(C)·eps ≈ 1e-6.
      expectClose(got.mean, want.mean, { atol: 1e-6, rtol: 1e-5 }, 'mean');
      // rstd: two-pass variance of values with spread 2 around 3: a few ulp plus the mean's error.
      expectClose(got.rstd, want.rstd, { atol: 1e-6, rtol: 2e-5 }, 'rstd');
      // out = xhat·w + b with |xhat| ≲ 4, |w| ≲ 3: errors of xhat (~1e-5 relative) times |w|.
      expectClose(got.out, want.out, { atol: 5e-5, rtol: 5e-5 }, 'out');
    });
  }

  it('C = 1: xhat = 0, so out = bias; a constant row also gives out = bias (rstd = 1/sqrt(eps))', async () => {
    const got = await forward(rt!, new Float32Array([5, -2, 7, 7, 7]), new Float32Array([2]), new Float32Array([0.25]), 5, 1, perRow);
    expect([...got.out]).toEqual([0.25, 0.25, 0.25, 0.25, 0.25]);
    const row = await forward(rt!, new Float32Array([7, 7, 7]), new Float32Array([2, 3, 4]), new Float32Array([1, 2, 3]), 1, 3, perRow);
    expect([...row.out]).toEqual([1, 2, 3]);
    expectClose(row.rstd, [1 / Math.sqrt(EPS)], { atol: 0, rtol: 1e-5 }, 'rstd of a constant row');
  });
});

describe.skipIf(!rt)(`layernorm backward (${perRow ? 'thread' : 'workgroup'} per row)`, () => {
  for (const [R, C] of SHAPES) {
    for (const accumulate of [false, true]) {
      it(`R=${R}, C=${C}, accumulate=${accumulate}`, async () => {
        const inp = rows(R, C, R * 17 + C);
        const w = randn(C, C + 3);
        const b = randn(C, C + 4);
        const dout = randn(R * C, R + C + 5);
        const dinp0 = accumulate ? randn(R * C, 6) : new Float32Array(R * C).fill(123);
        const dw0 = randn(C, 7);
        const db0 = randn(C, 8);
        const rec = new Recorder(rt!);
        const inpV = upload(rt!, inp);
        const wV = upload(rt!, w);
        const mean = zeros(rt!, R);
        const rstd = zeros(rt!, R);
        const dinp = upload(rt!, dinp0);
        const dweight = upload(rt!, dw0);
        const dbias = upload(rt!, db0);
        await recordLayerNormForward(rec, 'ln', { inp: inpV, weight: wV, bias: upload(rt!, b), out: zeros(rt!, R * C), mean, rstd, R, C, eps: EPS, perRow });
        await recordLayerNormBackward(rec, 'ln back', { dout: upload(rt!, dout), inp: inpV, weight: wV, mean, rstd, dinp, dweight, dbias, R, C, accumulate, perRow });
        await runRecorded(rt!, rec);
        const want = ref.layerNormBackward(dout, inp, w, R, C, EPS);
        const wantDinp = want.dinp.map((v, i) => v + (accumulate ? dinp0[i] : 0));
        // dinp = rstd·(g − mean(g) − xhat·mean(g·xhat)): |terms| ≲ 10, each with ~1e-5 relative error
        // from xhat and the row sums; the difference can cancel, so an absolute bound of 1e-4 · rstd-scale.
        expectClose(await read(rt!, dinp), wantDinp, { atol: 1e-4, rtol: 1e-4 }, 'dinp');
        // Column sums over R rows of terms ≲ 10: f32 summation error ≲ R·eps·10 plus xhat's error.
        const tol = { atol: 2e-5 * Math.sqrt(R) + 1e-6 * R, rtol: 1e-5 };
        expectClose(await read(rt!, dweight), want.dweight.map((v, i) => v + dw0[i]), tol, 'dweight (accumulated)');
        expectClose(await read(rt!, dbias), want.dbias.map((v, i) => v + db0[i]), tol, 'dbias (accumulated)');
      });
    }
  }

  it('is bitwise repeatable', async () => {
    const [R, C] = [50, 70];
    const inp = rows(R, C, 1);
    const w = randn(C, 2);
    const dout = randn(R * C, 3);
    const run = async () => {
      const rec = new Recorder(rt!);
      const inpV = upload(rt!, inp);
      const wV = upload(rt!, w);
      const mean = zeros(rt!, R);
      const rstd = zeros(rt!, R);
      const dinp = zeros(rt!, R * C);
      const dweight = zeros(rt!, C);
      const dbias = zeros(rt!, C);
      await recordLayerNormForward(rec, 'ln', { inp: inpV, weight: wV, bias: zeros(rt!, C), out: zeros(rt!, R * C), mean, rstd, R, C, eps: EPS, perRow });
      await recordLayerNormBackward(rec, 'ln back', { dout: upload(rt!, dout), inp: inpV, weight: wV, mean, rstd, dinp, dweight, dbias, R, C, accumulate: false, perRow });
      await runRecorded(rt!, rec);
      return [...(await read(rt!, dinp)), ...(await read(rt!, dweight)), ...(await read(rt!, dbias))];
    };
    expect(await run()).toEqual(await run());
  });
});

}

describe('layernorm reference', () => {
  it('backward matches central finite differences of Σ out·G', () => {
    const [R, C] = [3, 5];
    const inp = Float64Array.from(rows(R, C, 11));
    const w = Float64Array.from(randn(C, 12));
    const b = Float64Array.from(randn(C, 13));
    const G = Float64Array.from(randn(R * C, 14));
    const loss = () => ref.layerNormForward(inp, w, b, R, C, EPS).out.reduce((s, v, i) => s + v * G[i], 0);
    const g = ref.layerNormBackward(G, inp, w, R, C, EPS);
    const fd = (x: Float64Array, i: number) => {
      const h = 1e-6;
      const x0 = x[i];
      x[i] = x0 + h;
      const lp = loss();
      x[i] = x0 - h;
      const lm = loss();
      x[i] = x0;
      return (lp - lm) / (2 * h);
    };
    // Central differences in float64 with h = 1e-6: truncation ~h²·|f'''| and rounding ~1e-16/h ≈ 1e-10.
    const tol = { atol: 1e-7, rtol: 1e-6 };
    expectClose(g.dinp, Array.from(inp, (_, i) => fd(inp, i)), tol, 'dinp vs finite differences');
    expectClose(g.dweight, Array.from(w, (_, i) => fd(w, i)), tol, 'dweight vs finite differences');
    expectClose(g.dbias, Array.from(b, (_, i) => fd(b, i)), tol, 'dbias vs finite differences');
  });
});
