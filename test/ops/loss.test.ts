// cross_entropy.wgsl, mse.wgsl and sum.wgsl against src/reference/ops.ts.
import { describe, it, expect } from 'vitest';
import { testRuntime, upload, zeros, runRecorded, read, randn, prng, expectClose, Recorder } from '../helpers.ts';
import { recordCrossEntropy, recordMse, recordScaledSum } from '../../src/ops/loss.ts';
import * as ref from '../../src/reference/ops.ts';
import type { Runtime } from '../../src/gpu/device.ts';
import type { View } from '../../src/gpu/buffers.ts';

const rt = await testRuntime();

function labelsFor(R: number, V: number, seed: number): Int32Array {
  const r = prng(seed);
  const l = new Int32Array(R);
  for (let i = 0; i < R; i++) l[i] = Math.min(V - 1, Math.floor(r() * V));
  if (R > 1) (l[0] = 0), (l[R - 1] = V - 1); // both ends of the class range
  return l;
}

// Loss: log(Σ exp) is a sum of V f32 terms (relative error ≲ log2(V)·eps after the tree reduction) plus
// one f32 log, exp and subtraction each: rtol 1e-5 is > 10× that; atol 1e-5 for losses near 0.
const LOSS_TOL = { atol: 1e-5, rtol: 1e-5 };
// dlogits = (p − onehot)·scale: p carries the relative error of exp(x − max)/Σ (a few ulp plus Σ's); the
// absolute part is the f32 rounding of p − 1 near the label (~6e-8), scaled.
const gradTol = (scale: number) => ({ atol: 2e-7 * Math.abs(scale), rtol: 1e-5 });

async function crossEntropy(rt: Runtime, logits: Float32Array, labels: Int32Array, R: number, V: number, gradScale: number, perRow?: boolean) {
  const rec = new Recorder(rt);
  const losses = zeros(rt, R);
  const dlogits = zeros(rt, R * V);
  await recordCrossEntropy(rec, 'ce', { logits: upload(rt, logits), labels: upload(rt, labels), losses, dlogits, R, V, gradScale, perRow });
  await runRecorded(rt, rec);
  return { losses: await read(rt, losses), dlogits: await read(rt, dlogits) };
}

function expectFinite(a: ArrayLike<number>, what: string) {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) expect.fail(`${what}: index ${i} is ${a[i]}`);
}

describe.skipIf(!rt)('cross-entropy kernel: thread-per-row and workgroup-per-row variants agree', () => {
  it('33 × 1000 and 4 × 50257, both variants against the reference', async () => {
    for (const [R, V] of [[33, 1000], [4, 50257]] as const) {
      const logits = randn(R * V, R + V, 3);
      const labels = Int32Array.from({ length: R }, (_, i) => (i * 7919) % V);
      const want = ref.crossEntropy(logits, labels, R, V);
      for (const perRow of [false, true]) {
        const got = await crossEntropy(rt!, logits, labels, R, V, 1 / R, perRow);
        expectClose(got.losses, want.losses, LOSS_TOL, `losses ${R}x${V} perRow=${perRow}`);
        expectClose(got.dlogits, want.dlogits, gradTol(1 / R), `dlogits ${R}x${V} perRow=${perRow}`);
      }
    }
  });
});

describe.skipIf(!rt)('cross-entropy kernel', () => {
  const shapes: [number, number][] = [[1, 1], [1, 2], [7, 13], [33, 1000], [4, 50257]];
  for (const [R, V] of shapes) {
    for (const scale of ['1/R', 0.37] as const) {
      it(`R=${R}, V=${V}, gradScale ${scale}`, async () => {
        const gradScale = scale === '1/R' ? 1 / R : scale;
        const logits = randn(R * V, R * 31 + V, 2);
        const labels = labelsFor(R, V, R + V);
        const got = await crossEntropy(rt!, logits, labels, R, V, gradScale);
        const want = ref.crossEntropy(logits, labels, R, V, gradScale);
        expectClose(got.losses, want.losses, LOSS_TOL, `losses ${R}x${V}`);
        expectClose(got.dlogits, want.dlogits, gradTol(gradScale), `dlogits ${R}x${V}`);
      });
    }
  }

  it('V = 1: loss 0 and gradient 0 for every row', async () => {
    const got = await crossEntropy(rt!, new Float32Array([3, -1e4, 1e4]), new Int32Array(3), 3, 1, 1 / 3);
    expect([...got.losses]).toEqual([0, 0, 0]);
    expect([...got.dlogits]).toEqual([0, 0, 0]);
  });

  it('logits around ±1e4: finite and correct (the max is subtracted before exp)', async () => {
    const [R, V] = [6, 300];
    const r = prng(9);
    const logits = new Float32Array(R * V);
    // Each row: a cluster near +1e4 (spread ±3, so several classes share the probability), the rest near −1e4.
    for (let i = 0; i < R * V; i++) logits[i] = (r() < 0.3 ? 1e4 : -1e4) + 6 * (r() - 0.5);
    const labels = new Int32Array(R);
    for (let i = 0; i < R; i++) {
      // Rows 0-3: the label is the row's largest logit or in the top cluster (loss O(1), the hard case for
      // cancellation against max ≈ 1e4); rows 4-5: a −1e4 label (loss ≈ 2e4, probability 0 in f32).
      let best = 0;
      let low = 0;
      for (let v = 0; v < V; v++) {
        if (logits[i * V + v] > logits[i * V + best]) best = v;
        if (logits[i * V + v] < 0) low = v;
      }
      let top = best;
      for (let v = 0; v < V; v++) if (logits[i * V + v] > 0 && v !== best) top = v;
      labels[i] = i < 2 ? best : i < 4 ? top : low;
    }
    const got = await crossEntropy(rt!, logits, labels, R, V, 1 / R);
    const want = ref.crossEntropy(logits, labels, R, V, 1 / R);
    expectFinite(got.losses, 'losses');
    expectFinite(got.dlogits, 'dlogits');
    // A loss of O(1) from logits of 1e4 must not carry 1e4's rounding (ulp(1e4) ≈ 1e-3): same tolerance.
    expectClose(got.losses, want.losses, LOSS_TOL, 'losses at ±1e4');
    expectClose(got.dlogits, want.dlogits, gradTol(1 / R), 'dlogits at ±1e4');
  });

  it('70 rows × 3 classes: every row lands in its own slot', async () => {
    const [R, V] = [70, 3];
    const logits = randn(R * V, 4, 3);
    const labels = labelsFor(R, V, 5);
    const got = await crossEntropy(rt!, logits, labels, R, V, 1 / R);
    const want = ref.crossEntropy(logits, labels, R, V, 1 / R);
    expectClose(got.losses, want.losses, LOSS_TOL, 'losses');
    expectClose(got.dlogits, want.dlogits, gradTol(1 / R), 'dlogits');
  });

  it('recordScaledSum turns the per-row losses into the mean, and accumulates', async () => {
    const [R, V] = [33, 1000];
    const logits = randn(R * V, 77, 2);
    const labels = labelsFor(R, V, 78);
    const rec = new Recorder(rt!);
    const losses = zeros(rt!, R);
    const mean = zeros(rt!, 1);
    const acc = upload(rt!, new Float32Array([0.75]));
    await recordCrossEntropy(rec, 'ce', { logits: upload(rt!, logits), labels: upload(rt!, labels), losses, dlogits: zeros(rt!, R * V), R, V, gradScale: 1 / R });
    await recordScaledSum(rec, 'mean', losses, mean, R, 1 / R);
    // Two micro-batches adding their share into a scalar that starts at 0.75.
    await recordScaledSum(rec, 'acc 1', losses, acc, R, 0.5 / R);
    await recordScaledSum(rec, 'acc 2', losses, acc, R, 0.5 / R);
    await runRecorded(rt!, rec);
    const want = ref.crossEntropy(logits, labels, R, V).loss;
    expectClose(await read(rt!, mean), [want], LOSS_TOL, 'mean loss');
    expectClose(await read(rt!, acc), [0.75 + want], LOSS_TOL, 'accumulated loss');
  });
});

describe.skipIf(!rt)('scaled sum kernel', () => {
  for (const n of [1, 255, 256, 3001]) {
    it(`out += scale·Σx, n = ${n}, twice, out starting at −2.5`, async () => {
      const x = randn(n, n);
      const rec = new Recorder(rt!);
      const out = upload(rt!, new Float32Array([-2.5, 7]));
      const xv = upload(rt!, x);
      await recordScaledSum(rec, 'sum 1', xv, out, n, 0.125);
      await recordScaledSum(rec, 'sum 2', xv, out, n, -3);
      await runRecorded(rt!, rec);
      let s = 0;
      for (const v of x) s += v;
      const got = await read(rt!, out);
      // Σ of n unit-variance f32 values: error ≲ log2(n)·eps·Σ|x| ≈ 1e-6·n in the worst case.
      expectClose(got, [-2.5 + 0.125 * s - 3 * s, 7], { atol: 1e-6 * n, rtol: 1e-6 }, `sum n=${n}`);
    });
  }
});

describe.skipIf(!rt)('mse kernel', () => {
  for (const [R, D] of [[1, 1], [5, 3], [40, 300], [3, 1000]] as const) {
    it(`R=${R}, D=${D}: per-row Σerr², mean via recordScaledSum, dpred with gradScale 1/(R·D)`, async () => {
      const pred = randn(R * D, R * 7 + D);
      const target = randn(R * D, R * 7 + D + 1, 0.5);
      const rec = new Recorder(rt!);
      const losses = zeros(rt!, R);
      const dpred = zeros(rt!, R * D);
      const mean = zeros(rt!, 1);
      await recordMse(rec, 'mse', { pred: upload(rt!, pred), target: upload(rt!, target), losses, dpred, R, D, gradScale: 1 / (R * D) });
      await recordScaledSum(rec, 'mean', losses, mean, R, 1 / (R * D));
      await runRecorded(rt!, rec);
      const want = ref.mse(pred, target);
      const rows = new Float64Array(R);
      for (let r = 0; r < R; r++) for (let d = 0; d < D; d++) rows[r] += (pred[r * D + d] - target[r * D + d]) ** 2;
      // Sums of D positive f32 terms: relative error ≲ log2(D)·eps; rtol 1e-5 covers it.
      expectClose(await read(rt!, losses), rows, { atol: 1e-6, rtol: 1e-5 }, 'row losses');
      expectClose(await read(rt!, mean), [want.loss], { atol: 1e-6, rtol: 1e-5 }, 'mean loss');
      // dpred = 2·e/(R·D): one f32 subtraction and two products, exact to a couple of ulp.
      expectClose(await read(rt!, dpred), want.dpred, { atol: 1e-9, rtol: 1e-6 }, 'dpred');
    });
  }

  it('gradScale also folds in micro-batches: dpred = 2e·gradScale for any scale', async () => {
    const [R, D] = [4, 5];
    const pred = randn(R * D, 1);
    const target = randn(R * D, 2);
    const rec = new Recorder(rt!);
    const dpred: View = zeros(rt!, R * D);
    const gradScale = 1 / (R * D * 3);
    await recordMse(rec, 'mse', { pred: upload(rt!, pred), target: upload(rt!, target), losses: zeros(rt!, R), dpred, R, D, gradScale });
    await runRecorded(rt!, rec);
    const want = ref.mapArray(ref.mse(pred, target).dpred, (v) => v / 3);
    expectClose(await read(rt!, dpred), want, { atol: 1e-9, rtol: 1e-6 }, 'dpred / 3 micro-batches');
  });
});
