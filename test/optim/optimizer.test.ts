// optimizer.wgsl (Adam, AdamW, SGD with momentum / dampening / nesterov) over several steps against the
// reference formulas, grad_norm.wgsl (global-norm clipping) against reference.clipFactor, and the
// host-side pieces: withDefaults() and learningRate().
import { describe, it, expect } from 'vitest';
import { testRuntime, upload, zeros, runRecorded, read, randn, expectClose, Recorder } from '../helpers.ts';
import {
  withDefaults,
  stepValues,
  recordOptimizer,
  recordGradClip,
  learningRate,
  type OptimizerConfig,
  type ParamGroup,
} from '../../src/optim/optimizer.ts';
import { writeArray } from '../../src/gpu/buffers.ts';
import * as ref from '../../src/reference/ops.ts';
import type { Runtime } from '../../src/gpu/device.ts';

const rt = await testRuntime();

// One arena, two groups at different offsets with padding around them (and an empty group, skipped):
//   [0, 37) group A · [37, 40) padding · [40, 340) group B · [340, 345) padding.
const TOTAL = 345;
const GROUPS = (wdA: number, wdB: number): ParamGroup[] => [
  { label: 'A', offset: 0, count: 37, weightDecay: wdA },
  { label: 'B', offset: 40, count: 300, weightDecay: wdB },
  { label: 'empty', offset: 345, count: 0, weightDecay: 0 },
];
const PADDING = [37, 38, 39, 340, 341, 342, 343, 344];
// The learning rate changes every step (0 included) through the step uniform, with no re-recording.
const LRS = [1e-2, 3e-3, 2e-2, 0, 1e-2, 5e-3];
// f32 kernel vs f64 reference, the reference run independently for all 6 steps (not re-synced): each
// step adds a few f32 roundings of |p| ≤ ~4 (≲ 5e-7) and an update computed to a few ulp (≲ lr·1e-6),
// so 1e-6 absolute plus 1e-5 relative holds at every step with margin.
const TOL = { atol: 1e-6, rtol: 1e-5 };

function withPadding(n: number, seed: number, scale = 1): Float32Array {
  const a = randn(n, seed, scale);
  for (const i of PADDING) a[i] = 0;
  return a;
}

interface RunOptions {
  groups: ParamGroup[];
  /** Clip gradients to this global norm (over the whole arena, padding included). */
  maxNorm?: number;
  /** Gradient scale per step (so that the clip factor differs from step to step). */
  gradScale?: (t: number) => number;
  /** Binding window in elements (forces several dispatches per group, as arenas above the binding limit get). */
  window?: number;
}

/** Runs LRS.length recorded steps on the GPU and the reference side by side, comparing every step. */
async function runAndCompare(rt: Runtime, config: OptimizerConfig, o: RunOptions) {
  const c = withDefaults(config);
  const p0 = withPadding(TOTAL, 1);
  const params = upload(rt, p0, 'params');
  const grads = zeros(rt, TOTAL, 'grads');
  const m = zeros(rt, TOTAL, 'm');
  const v = zeros(rt, TOTAL, 'v');
  const clip = upload(rt, new Float32Array([0, 1]), 'clip');
  const step = rt.device.createBuffer({ label: 'step', size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });

  const rec = new Recorder(rt);
  if (o.maxNorm !== undefined) await recordGradClip(rec, grads.buffer, TOTAL, o.maxNorm, clip, o.window);
  await recordOptimizer(rec, c, { step, params: params.buffer, grads: grads.buffer, m: m.buffer, v: v.buffer, clip }, o.groups, o.window);

  const P = Float64Array.from(p0);
  const M = new Float64Array(TOTAL);
  const V = new Float64Array(TOTAL);
  let got = p0;
  for (let t = 1; t <= LRS.length; t++) {
    const lr = LRS[t - 1];
    const g = withPadding(TOTAL, 100 + t, o.gradScale?.(t) ?? 1);
    writeArray(rt.device, step, 0, stepValues(c, lr, t));
    writeArray(rt.device, grads.buffer, 0, g);
    await runRecorded(rt, rec);

    let scale = 1;
    if (o.maxNorm !== undefined) {
      const want = ref.clipFactor([g], o.maxNorm);
      const [norm, s] = await read(rt, clip);
      expectClose([norm, s], [want.norm, want.scale], { atol: 0, rtol: 1e-5 }, `clip at step ${t}`);
      scale = want.scale;
    }
    for (const grp of o.groups) {
      const sl = (a: Float64Array) => a.subarray(grp.offset, grp.offset + grp.count);
      const gs = ref.mapArray(g.subarray(grp.offset, grp.offset + grp.count), (x) => x * scale);
      if (c.type === 'sgd') {
        const h = { lr, momentum: c.momentum, dampening: c.dampening, nesterov: c.nesterov, weightDecay: grp.weightDecay };
        ref.sgdStep(sl(P), gs, sl(M), t, h);
      } else {
        const h = { lr, beta1: c.beta1, beta2: c.beta2, eps: c.eps, weightDecay: grp.weightDecay, decoupled: c.type === 'adamw' };
        ref.adamStep(sl(P), gs, sl(M), sl(V), t, h);
      }
    }
    got = await read(rt, params);
    expectClose(got, P, TOL, `${c.type} params after step ${t} (lr ${lr})`);
  }
  // After the last step: the state too, and the padding untouched in every arena.
  const gotM = await read(rt, m);
  const gotV = await read(rt, v);
  if (c.type !== 'sgd') {
    expectClose(gotM, M, { atol: 1e-7, rtol: 1e-5 }, 'adam m');
    expectClose(gotV, V, { atol: 1e-9, rtol: 1e-5 }, 'adam v');
  } else if (c.momentum !== 0) {
    expectClose(gotM, M, { atol: 1e-6, rtol: 1e-5 }, 'sgd momentum buffer');
  } else {
    expect(gotM.every((x) => x === 0), 'plain SGD keeps no state').toBe(true);
  }
  for (const i of PADDING) {
    expect([got[i], gotM[i], gotV[i]], `padding element ${i} (params, m, v)`).toEqual([0, 0, 0]);
  }
  // Sanity: the parameters moved (a test that compares two unchanged arrays proves nothing).
  expect(got.some((x, i) => Math.abs(x - p0[i]) > 1e-4)).toBe(true);
}

describe.skipIf(!rt)('optimizer kernels, 6 steps, two groups in one arena, lr rewritten each step', () => {
  it('Adam (L2 weight decay 0.1 on group A, 0 on group B)', () =>
    runAndCompare(rt!, { type: 'adam', lr: 1e-2 }, { groups: GROUPS(0.1, 0) }));
  it('Adam with non-default betas (β2 = 0.9999: 1 − β2 must not be taken in f32) and eps', () =>
    runAndCompare(rt!, { type: 'adam', lr: 1e-2, beta1: 0.8, beta2: 0.9999, eps: 1e-6 }, { groups: GROUPS(0, 0.05) }));
  it('AdamW (decoupled decay 0.1 on group A, 0 on group B)', () =>
    runAndCompare(rt!, { type: 'adamw', lr: 1e-2 }, { groups: GROUPS(0.1, 0) }));
  it('SGD, plain', () => runAndCompare(rt!, { type: 'sgd', lr: 1e-2 }, { groups: GROUPS(0, 0) }));
  // Groups starting off a 4-element boundary take the scalar kernel (the aligned ones above take vec4).
  const ODD_GROUPS: ParamGroup[] = [
    { label: 'A', offset: 1, count: 36, weightDecay: 0.1 },
    { label: 'B', offset: 41, count: 298, weightDecay: 0 },
  ];
  it('AdamW over groups at offsets 1 and 41 (scalar path)', () => runAndCompare(rt!, { type: 'adamw', lr: 1e-2 }, { groups: ODD_GROUPS }));
  it('SGD with momentum over groups at offsets 1 and 41 (scalar path)', () =>
    runAndCompare(rt!, { type: 'sgd', lr: 1e-2, momentum: 0.9 }, { groups: ODD_GROUPS }));
  it('SGD, momentum 0.9, dampening 0.1 (weight decay 0.05 on group A)', () =>
    runAndCompare(rt!, { type: 'sgd', lr: 1e-2, momentum: 0.9, dampening: 0.1 }, { groups: GROUPS(0.05, 0) }));
  it('SGD, nesterov momentum 0.9 with weight decay (0.1 on A, 0.01 on B)', () =>
    runAndCompare(rt!, { type: 'sgd', lr: 1e-2, momentum: 0.9, nesterov: true }, { groups: GROUPS(0.1, 0.01) }));
});

describe.skipIf(!rt)('gradient clipping', () => {
  // window: elements per binding window (the device's maxStorageBufferBindingSize / 4 when absent).
  for (const [n, windowLen] of [[345, undefined], [1, undefined], [50_000, undefined], [50_000, 4096], [50_000, 128]] as const) {
    for (const which of ['below', 'above'] as const) {
      it(`norm and scale, n = ${n}, ${windowLen ? `windows of ${windowLen}` : 'one window'}, max norm ${which} the norm`, async () => {
        const g = randn(n, n + (windowLen ?? 0), 0.5);
        const norm = ref.clipFactor([g], 1).norm;
        const maxNorm = which === 'below' ? norm / 3 : norm * 2;
        const rec = new Recorder(rt!);
        const clip = upload(rt!, new Float32Array([-1, -1]));
        await recordGradClip(rec, upload(rt!, g).buffer, n, maxNorm, clip, windowLen);
        await runRecorded(rt!, rec);
        const want = ref.clipFactor([g], maxNorm);
        const got = await read(rt!, clip);
        // ‖g‖² is a sum of n positive f32 terms (relative error ≲ log2(n)·eps); sqrt halves it.
        expectClose(got, [want.norm, want.scale], { atol: 0, rtol: 1e-5 }, `clip n=${n}`);
        if (which === 'above') expect(got[1]).toBe(1);
        else expect(got[1]).toBeLessThan(1);
      });
    }
  }

  it('clips over the first n elements only, padding zeros included', async () => {
    const g = withPadding(TOTAL, 3);
    const tail = randn(100, 4, 10); // past n: must not count
    const all = new Float32Array(TOTAL + 100);
    all.set(g);
    all.set(tail, TOTAL);
    const rec = new Recorder(rt!);
    const clip = zeros(rt!, 2);
    await recordGradClip(rec, upload(rt!, all).buffer, TOTAL, 1, clip);
    await runRecorded(rt!, rec);
    const want = ref.clipFactor([g], 1);
    expectClose(await read(rt!, clip), [want.norm, want.scale], { atol: 0, rtol: 1e-5 }, 'clip over n');
  });

  // Gradient magnitudes grow each step, so the clip factor (< 1 throughout) changes every step.
  it('Adam applies the clip factor (vs the reference with grads pre-multiplied by it)', () =>
    runAndCompare(rt!, { type: 'adam', lr: 1e-2 }, { groups: GROUPS(0.1, 0), maxNorm: 1, gradScale: (t) => 1 + 3 * t }));
  it('AdamW with clipping over windows of 128 elements: several dispatches per group give the same result', () =>
    runAndCompare(rt!, { type: 'adamw', lr: 1e-2, weightDecay: 0.1 }, { groups: GROUPS(0.1, 0), maxNorm: 1, gradScale: (t) => 1 + 3 * t, window: 128 }));
  it('SGD with momentum applies the clip factor', () =>
    runAndCompare(rt!, { type: 'sgd', lr: 1e-1, momentum: 0.9 }, { groups: GROUPS(0, 0.1), maxNorm: 2, gradScale: (t) => t }));
});

describe('withDefaults (no GPU)', () => {
  it("torch.optim's defaults", () => {
    expect(withDefaults({ type: 'adam', lr: 1e-3 })).toEqual({ type: 'adam', lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });
    expect(withDefaults({ type: 'adamw', lr: 1e-3 })).toEqual({ type: 'adamw', lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 });
    expect(withDefaults({ type: 'sgd', lr: 0.1 })).toEqual({ type: 'sgd', lr: 0.1, momentum: 0, dampening: 0, nesterov: false, weightDecay: 0 });
  });
  it('keeps what is given', () => {
    expect(withDefaults({ type: 'adamw', lr: 0, beta1: 0, beta2: 0.5, eps: 0, weightDecay: 0 })).toEqual({ type: 'adamw', lr: 0, beta1: 0, beta2: 0.5, eps: 0, weightDecay: 0 });
    expect(withDefaults({ type: 'sgd', lr: 1, momentum: 0.9, nesterov: true, weightDecay: 1e-4 })).toMatchObject({ momentum: 0.9, nesterov: true, dampening: 0, weightDecay: 1e-4 });
  });
  it('rejects a bad learning rate', () => {
    for (const lr of [-1e-3, NaN, Infinity, -Infinity]) {
      expect(() => withDefaults({ type: 'adam', lr }), `lr ${lr}`).toThrow(/lr must be/);
      expect(() => withDefaults({ type: 'sgd', lr }), `lr ${lr}`).toThrow(/lr must be/);
    }
  });
  it('rejects betas outside [0, 1)', () => {
    expect(() => withDefaults({ type: 'adam', lr: 1, beta1: 1 })).toThrow(/beta1/);
    expect(() => withDefaults({ type: 'adam', lr: 1, beta1: -0.1 })).toThrow(/beta1/);
    expect(() => withDefaults({ type: 'adamw', lr: 1, beta2: 1 })).toThrow(/beta2/);
    expect(() => withDefaults({ type: 'adamw', lr: 1, beta2: NaN })).toThrow(/beta2/);
  });
  it('rejects negative eps, weight decay and momentum (as torch.optim does)', () => {
    expect(() => withDefaults({ type: 'adam', lr: 1, eps: -1e-8 })).toThrow(/eps/);
    expect(() => withDefaults({ type: 'adamw', lr: 1, weightDecay: -0.1 })).toThrow(/weightDecay/);
    expect(() => withDefaults({ type: 'sgd', lr: 1, weightDecay: -0.1 })).toThrow(/weightDecay/);
    expect(() => withDefaults({ type: 'sgd', lr: 1, momentum: -0.9 })).toThrow(/momentum/);
  });
  it('rejects an unknown type and nesterov without momentum or with dampening', () => {
    expect(() => withDefaults({ type: 'adagrad', lr: 1 } as unknown as OptimizerConfig)).toThrow(/unknown type 'adagrad'/);
    expect(() => withDefaults({ type: 'sgd', lr: 1, nesterov: true })).toThrow(/nesterov/);
    expect(() => withDefaults({ type: 'sgd', lr: 1, nesterov: true, momentum: 0.9, dampening: 0.1 })).toThrow(/nesterov/);
  });
  it('stepValues: lr, bias-corrected step size and sqrt(1 − β2^t), t', () => {
    const c = withDefaults({ type: 'adam', lr: 1e-3 });
    const want = [2e-3, 2e-3 / (1 - 0.9 ** 3), Math.sqrt(1 - 0.999 ** 3), 3];
    expectClose(stepValues(c, 2e-3, 3), want, { atol: 0, rtol: 1e-7 }, 'adam step values');
    expect([...stepValues(withDefaults({ type: 'sgd', lr: 1 }), 0.5, 7)]).toEqual([0.5, 0.5, 1, 7]);
  });
});

describe('learningRate (no GPU)', () => {
  it('constant: the base rate at every step, with no schedule too', () => {
    for (const step of [0, 1, 100, 1e6]) {
      expect(learningRate(undefined, 3e-4, step)).toBe(3e-4);
      expect(learningRate({ type: 'constant' }, 3e-4, step)).toBe(3e-4);
    }
  });
  it('linear warmup from base/warmup to base, then constant', () => {
    const s = { type: 'constant', warmupSteps: 4 } as const;
    expect([0, 1, 2, 3, 4, 5, 50].map((k) => learningRate(s, 1, k))).toEqual([0.25, 0.5, 0.75, 1, 1, 1, 1]);
  });
  it('cosine without warmup: base at 0, the mean of base and min at the midpoint, min at the end and after', () => {
    const s = { type: 'cosine', totalSteps: 100, minLr: 0.1 } as const;
    expect(learningRate(s, 1, 0)).toBe(1);
    expect(learningRate(s, 1, 50)).toBeCloseTo(0.55, 12);
    expect(learningRate(s, 1, 25)).toBeCloseTo(0.1 + 0.45 * (1 + Math.SQRT1_2), 12);
    expect(learningRate(s, 1, 99)).toBeGreaterThan(0.1);
    expect(learningRate(s, 1, 99)).toBeLessThan(0.1 + 1e-3);
    expect(learningRate(s, 1, 100)).toBe(0.1);
    expect(learningRate(s, 1, 1000)).toBe(0.1);
    expect(learningRate({ type: 'cosine', totalSteps: 10 }, 2, 10)).toBe(0); // minLr defaults to 0
  });
  it('cosine with warmup: ramps up, peaks at the end of warmup, decays to min over the rest', () => {
    const s = { type: 'cosine', warmupSteps: 10, totalSteps: 110, minLr: 0 } as const;
    expect(learningRate(s, 2, 0)).toBeCloseTo(0.2, 12);
    expect(learningRate(s, 2, 9)).toBeCloseTo(2, 12);
    expect(learningRate(s, 2, 10)).toBe(2);
    expect(learningRate(s, 2, 60)).toBeCloseTo(1, 12); // midpoint of the decay
    expect(learningRate(s, 2, 110)).toBe(0);
    let prev = Infinity;
    for (let k = 10; k <= 110; k++) {
      const lr = learningRate(s, 2, k);
      expect(lr).toBeLessThanOrEqual(prev);
      prev = lr;
    }
  });
});

// Both gradient-norm variants, forced (the default is chosen by adapter): the workgroup reduction (GPUs)
// and the thread-per-part pass with a one-invocation finish (CPU adapters). Each runs with the trainer's
// non-finite check (gradients, weights and loss), against reference.clipFactor.
describe.skipIf(!rt)('gradient norm variants with the non-finite check', () => {
  async function gradNorm(g: Float32Array, p: Float32Array, perThread: boolean, window?: number): Promise<Float32Array> {
    const grads = upload(rt!, g, 'grads');
    const params = upload(rt!, p, 'params');
    const clip = upload(rt!, new Float32Array([0, 1, 0, 0, 0, 0, 0, 0]), 'clip');
    const loss = upload(rt!, new Float32Array([1.5, 0, 0, 0]), 'loss');
    const step = rt!.device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    writeArray(rt!.device, step, 0, new Float32Array([1e-3, 1e-3, 1, 3]));
    const rec = new Recorder(rt!);
    await recordGradClip(rec, grads.buffer, g.length, 1, clip, window, { mode: 'stop', loss, step, params: params.buffer }, perThread);
    await runRecorded(rt!, rec);
    const out = await read(rt!, clip);
    for (const b of [grads.buffer, params.buffer, clip.buffer, loss.buffer, step, ...rec.owned]) b.destroy();
    return out;
  }
  // n: vec4 path (multiple of 4) and scalar path; one window, and windows of 4096 elements.
  const SIZES: [number, number | undefined][] = [[269_328, undefined], [50_001, undefined], [50_000, 4096], [1_050_000, undefined]];
  for (const perThread of [true, false]) {
    const variant = perThread ? 'thread per part' : 'workgroups';
    for (const [n, window] of SIZES) {
      it(`${variant}, n = ${n}${window ? `, windows of ${window}` : ''}: norm and scale as the reference, bitwise repeatable`, async () => {
        const g = randn(n, n, 1e-3);
        const p = randn(n, n + 1);
        const want = ref.clipFactor([g], 1);
        const got = await gradNorm(g, p, perThread, window);
        // ‖g‖² is a sum of n positive f32 terms (relative error ≲ log2(n)·eps); sqrt halves it.
        expectClose(got.subarray(0, 2), [want.norm, want.scale], { atol: 0, rtol: 1e-5 }, `${variant} n=${n}`);
        expect([...got.subarray(2, 5)], 'finite: no skip').toEqual([0, 0, 0]);
        const again = await gradNorm(g, p, perThread, window);
        expect(Buffer.from(again.buffer).equals(Buffer.from(got.buffer)), 'fixed summation order').toBe(true);
      });
    }
    it(`${variant}: NaN and ±Inf at the first, a middle and the last element, in the gradients or the weights`, async () => {
      for (const [n, window] of [[269_328, undefined], [50_001, 4096]] as const) {
        const g = randn(n, 5, 1e-3);
        const p = randn(n, 6);
        for (const at of [0, Math.floor(n / 2) + 1, n - 1]) {
          for (const value of [NaN, Infinity, -Infinity]) {
            for (const where of ['gradients', 'weights'] as const) {
              const gg = where === 'gradients' ? g.slice() : g;
              const pp = where === 'weights' ? p.slice() : p;
              (where === 'gradients' ? gg : pp)[at] = value;
              const got = await gradNorm(gg, pp, perThread, window);
              // status: skip this step, one skipped step, first non-finite step t = 3 ('stop')
              expect([...got.subarray(2, 5)], `${value} in the ${where} at ${at} of ${n}`).toEqual([1, 1, 3]);
            }
          }
        }
      }
    });
  }
  it('both variants agree with each other to the reference tolerance', async () => {
    const n = 1_050_000;
    const g = randn(n, 9, 0.5);
    const p = randn(n, 10);
    const [a, b] = [await gradNorm(g, p, true), await gradNorm(g, p, false)];
    expectClose([a[0]], [b[0]], { atol: 0, rtol: 1e-5 }, 'norms of the two variants');
  });
});
