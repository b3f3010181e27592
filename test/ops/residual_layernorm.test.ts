// residual_layernorm.wgsl (the residual add fused with the LayerNorm after it, forward and backward, both
// row variants) against src/reference/transformer.ts, with the tolerances of the LayerNorm tests.
import { describe, it, expect } from 'vitest';
import { testRuntime, upload, zeros, runRecorded, read, randn, expectClose, Recorder } from '../helpers.ts';
import { recordLayerNormForward, recordLayerNormBackward } from '../../src/ops/layernorm.ts';
import { recordAdd, recordCopyGrad } from '../../src/ops/add.ts';
import * as ref from '../../src/reference/transformer.ts';

const rt = await testRuntime();
const EPS = 1e-5;

/** The residual stream: rows with a mean of 3 and spread 2 (as in the LayerNorm tests); the branch adds N(0, 1). */
function stream(R: number, C: number, seed: number): Float32Array {
  const x = randn(R * C, seed, 2);
  for (let i = 0; i < x.length; i++) x[i] += 3;
  return x;
}

// C below, at and above the 128-thread row workgroup, GPT-2's 768; R = 1, and R not a multiple of anything.
const SHAPES: [number, number][] = [[1, 1], [1, 5], [7, 13], [3, 129], [33, 768], [64, 77]];

/** How the backward writes the gradient of one addend. */
type Write = 'none' | 'assign' | 'accumulate';
// Each mode of dx, dy and dsum appears; the full product is covered by the kernel's independent #if blocks.
const BACKWARD_CASES: { dsum: boolean; dx: Write; dy: Write }[] = [
  { dsum: true, dx: 'assign', dy: 'accumulate' },
  { dsum: true, dx: 'accumulate', dy: 'assign' },
  { dsum: false, dx: 'assign', dy: 'assign' },
  { dsum: true, dx: 'none', dy: 'accumulate' },
  { dsum: false, dx: 'accumulate', dy: 'none' },
];

for (const perRow of [false, true]) {
describe.skipIf(!rt)(`residual + layernorm forward (${perRow ? 'thread' : 'workgroup'} per row)`, () => {
  for (const [R, C] of SHAPES) {
    it(`R=${R}, C=${C}`, async () => {
      const x = stream(R, C, R * 13 + C);
      const y = randn(R * C, R * 13 + C + 1);
      const w = randn(C, C + 1);
      const b = randn(C, C + 2);
      const rec = new Recorder(rt!);
      const sum = zeros(rt!, R * C);
      const out = zeros(rt!, R * C);
      const mean = zeros(rt!, R);
      const rstd = zeros(rt!, R);
      await recordLayerNormForward(rec, 'add+ln', {
        inp: upload(rt!, x), residual: { y: upload(rt!, y), sum }, weight: upload(rt!, w), bias: upload(rt!, b), out, mean, rstd, R, C, eps: EPS, perRow,
      });
      await runRecorded(rt!, rec);
      const want = ref.residualLayerNormForward(x, y, w, b, R, C, EPS);
      // sum: one correctly rounded f32 addition per element.
      expectClose(await read(rt!, sum), want.sum, { atol: 0, rtol: 2 ** -24 }, 'sum');
      // As the LayerNorm forward test (the sum's rounding, ≤ 6e-8 relative, is far below these bounds).
      expectClose(await read(rt!, mean), want.mean, { atol: 1e-6, rtol: 1e-5 }, 'mean');
      expectClose(await read(rt!, rstd), want.rstd, { atol: 1e-6, rtol: 2e-5 }, 'rstd');
      expectClose(await read(rt!, out), want.out, { atol: 5e-5, rtol: 5e-5 }, 'out');
    });
  }
});

describe.skipIf(!rt)(`residual + layernorm backward (${perRow ? 'thread' : 'workgroup'} per row)`, () => {
  for (const [R, C] of SHAPES) {
    for (const k of BACKWARD_CASES) {
      it(`R=${R}, C=${C}, dsum=${k.dsum}, dx ${k.dx}, dy ${k.dy}`, async () => {
        const seed = R * 17 + C;
        const x = stream(R, C, seed);
        const y = randn(R * C, seed + 1);
        const w = randn(C, C + 3);
        const b = randn(C, C + 4);
        const dout = randn(R * C, R + C + 5);
        const dsum = k.dsum ? randn(R * C, R + C + 6) : null;
        // What dx and dy hold before: added to when accumulating, overwritten when assigning, kept when not written.
        const dx0 = k.dx === 'accumulate' ? randn(R * C, 7) : new Float32Array(R * C).fill(123);
        const dy0 = k.dy === 'accumulate' ? randn(R * C, 8) : new Float32Array(R * C).fill(-7);
        const dw0 = randn(C, 9);
        const db0 = randn(C, 10);
        const rec = new Recorder(rt!);
        const wV = upload(rt!, w);
        const sum = zeros(rt!, R * C);
        const mean = zeros(rt!, R);
        const rstd = zeros(rt!, R);
        const dx = upload(rt!, dx0);
        const dy = upload(rt!, dy0);
        const dweight = upload(rt!, dw0);
        const dbias = upload(rt!, db0);
        await recordLayerNormForward(rec, 'add+ln', {
          inp: upload(rt!, x), residual: { y: upload(rt!, y), sum }, weight: wV, bias: upload(rt!, b), out: zeros(rt!, R * C), mean, rstd, R, C, eps: EPS, perRow,
        });
        await recordLayerNormBackward(rec, 'add+ln back', {
          dout: upload(rt!, dout), inp: sum, weight: wV, mean, rstd, dweight, dbias, R, C, perRow,
          residual: {
            dsum: dsum ? upload(rt!, dsum) : null,
            dx: k.dx === 'none' ? null : dx, accumulateX: k.dx === 'accumulate',
            dy: k.dy === 'none' ? null : dy, accumulateY: k.dy === 'accumulate',
          },
        });
        await runRecorded(rt!, rec);
        const want = ref.residualLayerNormBackward(dout, dsum, x, y, w, R, C, EPS);
        const expected = (mode: Write, before: Float32Array) =>
          mode === 'none' ? before : want.ds.map((v, i) => v + (mode === 'accumulate' ? before[i] : 0));
        // As the LayerNorm dinp test: terms ≲ 10 with ~1e-5 relative error; adding dsum (|dsum| ≲ 5) or the
        // accumulated values rounds once more, far below the bound.
        expectClose(await read(rt!, dx), expected(k.dx, dx0), { atol: 1e-4, rtol: 1e-4 }, `dx (${k.dx})`);
        expectClose(await read(rt!, dy), expected(k.dy, dy0), { atol: 1e-4, rtol: 1e-4 }, `dy (${k.dy})`);
        // Column sums over R rows of terms ≲ 10: f32 summation error ≲ R·eps·10 plus xhat's error.
        const tol = { atol: 2e-5 * Math.sqrt(R) + 1e-6 * R, rtol: 1e-5 };
        expectClose(await read(rt!, dweight), want.dweight.map((v, i) => v + dw0[i]), tol, 'dweight (accumulated)');
        expectClose(await read(rt!, dbias), want.dbias.map((v, i) => v + db0[i]), tol, 'dbias (accumulated)');
      });
    }
  }
});
}

describe.skipIf(!rt)('residual + layernorm against add then layernorm', () => {
  // The fused kernels do the same f32 operations in the same order as add.wgsl followed by layernorm.wgsl
  // (the backward: the sum's gradient from its other consumer, then LayerNorm's dinp added to it).
  for (const perRow of [false, true]) {
    it(`gives the same bits (${perRow ? 'thread' : 'workgroup'} per row), R=33, C=768`, async () => {
      const [R, C] = [33, 768];
      const x = upload(rt!, stream(R, C, 1));
      const y = upload(rt!, randn(R * C, 2));
      const w = upload(rt!, randn(C, 3));
      const b = upload(rt!, randn(C, 4));
      const dout = upload(rt!, randn(R * C, 5));
      const dsum = randn(R * C, 6);
      const run = async (fused: boolean) => {
        const rec = new Recorder(rt!);
        const sum = zeros(rt!, R * C);
        const out = zeros(rt!, R * C);
        const mean = zeros(rt!, R);
        const rstd = zeros(rt!, R);
        const dx = zeros(rt!, R * C);
        const dy = zeros(rt!, R * C);
        const dweight = zeros(rt!, C);
        const dbias = zeros(rt!, C);
        if (fused) {
          await recordLayerNormForward(rec, 'add+ln', { inp: x, residual: { y, sum }, weight: w, bias: b, out, mean, rstd, R, C, eps: EPS, perRow });
          await recordLayerNormBackward(rec, 'add+ln back', {
            dout, inp: sum, weight: w, mean, rstd, dweight, dbias, R, C, perRow,
            residual: { dsum: upload(rt!, dsum), dx, accumulateX: false, dy, accumulateY: false },
          });
        } else {
          const ds = upload(rt!, dsum);
          await recordAdd(rec, 'add', { x, y, out: sum, n: R * C });
          await recordLayerNormForward(rec, 'ln', { inp: sum, weight: w, bias: b, out, mean, rstd, R, C, eps: EPS, perRow });
          await recordLayerNormBackward(rec, 'ln back', { dout, inp: sum, weight: w, mean, rstd, dinp: ds, dweight, dbias, R, C, accumulate: true, perRow });
          await recordCopyGrad(rec, 'to dx', { src: ds, dst: dx, n: R * C, accumulate: false });
          await recordCopyGrad(rec, 'to dy', { src: ds, dst: dy, n: R * C, accumulate: false });
        }
        await runRecorded(rt!, rec);
        return Promise.all([sum, out, mean, rstd, dx, dy, dweight, dbias].map((v) => read(rt!, v)));
      };
      const [fused, plain] = [await run(true), await run(false)];
      const names = ['sum', 'out', 'mean', 'rstd', 'dx', 'dy', 'dweight', 'dbias'];
      for (let i = 0; i < names.length; i++) expect(fused[i], names[i]).toEqual(plain[i]);
    });
  }
});

describe('residual + layernorm reference', () => {
  it('is layerNormForward / layerNormBackward of x + y, with dsum added to the input gradient', () => {
    const [R, C] = [3, 5];
    const x = stream(R, C, 11);
    const y = randn(R * C, 12);
    const w = randn(C, 13);
    const b = randn(C, 14);
    const dout = randn(R * C, 15);
    const dsum = randn(R * C, 16);
    const s = Float64Array.from(x, (v, i) => v + y[i]);
    const fwd = ref.residualLayerNormForward(x, y, w, b, R, C, EPS);
    expect([...fwd.sum]).toEqual([...s]);
    expect([...fwd.out]).toEqual([...ref.layerNormForward(s, w, b, R, C, EPS).out]);
    const bwd = ref.residualLayerNormBackward(dout, dsum, x, y, w, R, C, EPS);
    const ln = ref.layerNormBackward(dout, s, w, R, C, EPS);
    expect([...bwd.ds]).toEqual([...ln.dinp].map((v, i) => v + dsum[i]));
    expect([...bwd.dweight]).toEqual([...ln.dweight]);
    expect([...bwd.dbias]).toEqual([...ln.dbias]);
  });
});
