// Numerical faults: a NaN or infinity in the loss or the gradients is caught on the GPU (the gradient-norm
// pass runs every step and sets a flag; the optimizer then leaves params, m and v untouched), reported
// with the next loss read: nonFinite 'skip' counts the skipped step, 'stop' rejects with a NonFiniteError
// naming it. Faults are injected past the batch validation: NaN / ±Inf / huge values written into the
// parameters, huge finite inputs and targets (which pass validation), and an absurd learning rate.
import { describe, it, expect } from 'vitest';
import { testRuntime, randn, upload, zeros, read, runRecorded, Recorder } from '../helpers.ts';
import { Sequential, Linear, ReLU, Tanh, Trainer, type TrainerOptions, type OptimizerConfig, type Layer } from '../../src/index.ts';
import { NonFiniteError, type TrainingState } from '../../src/train/trainer.ts';
import { CLIP_STATUS_FLOATS, recordGradClip, recordOptimizer, stepValues, withDefaults } from '../../src/optim/optimizer.ts';
import { writeArray } from '../../src/gpu/buffers.ts';

const rt = await testRuntime();

const ROWS = 8;
const mlp = () => new Sequential([new Linear(4, 8), new Tanh(), new Linear(8, 3)]);
const x = randn(ROWS * 4, 7);
const y = new Int32Array([0, 1, 2, 0, 1, 2, 2, 1]);
const base = (o: Partial<TrainerOptions> = {}): TrainerOptions => ({
  inputShape: [4], loss: 'cross-entropy', optimizer: { type: 'adam', lr: 1e-2 }, batchSize: ROWS, seed: 5, ...o,
});

const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
/** Bitwise equality of two name → values maps (NaN-safe: compares the bits). */
function expectSameBits(a: Map<string, Float32Array>, b: Map<string, Float32Array>, what: string) {
  expect([...a.keys()], what).toEqual([...b.keys()]);
  for (const [k, v] of a) expect(bytes(v).equals(bytes(b.get(k)!)), `${what}: ${k}`).toBe(true);
}
function expectSameState(a: TrainingState, b: TrainingState, what: string) {
  expectSameBits(a.params, b.params, `${what} params`);
  expectSameBits(a.m, b.m, `${what} m`);
  expectSameBits(a.v, b.v, `${what} v`);
}
/** readState without the 'stop' check (the test wants the raw arenas). */
async function arenas(t: Trainer): Promise<TrainingState> {
  return { step: t.stepCount, params: await t.store.read('params'), m: await t.store.read('m'), v: await t.store.read('v') };
}
/** Writes one parameter value straight into the arena: writeParams() itself refuses non-finite values. */
async function poke(t: Trainer, name: string, i: number, value: number) {
  const a = (await t.readParams()).get(name)!.slice();
  a[i] = value;
  t.store.write(name, a);
}
/** Bound every wait: a hang fails the test instead of the whole run. */
function within<T>(p: Promise<T>, ms = 20_000): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms))]);
}

const reluMlp = () => new Sequential([new Linear(4, 8), new ReLU(), new Linear(8, 3)]);

interface Injection {
  label: string;
  options?: Partial<TrainerOptions>;
  model?: () => Layer;
  /** Makes the next step non-finite; returns the batch to step on. */
  inject(t: Trainer): Promise<{ x: Float32Array; y: Int32Array | Float32Array }>;
}

const injections: Injection[] = [
  // lavapipe's tanh(NaN) is finite: the loss stays finite, only the parameter check sees this one.
  { label: 'NaN in a first-layer weight (behind a tanh)', inject: async (t) => (await poke(t, 'linear1.weight', 5, NaN), { x, y }) },
  { label: '+Infinity in a bias', inject: async (t) => (await poke(t, 'linear2.bias', 1, Infinity), { x, y }) },
  { label: '-Infinity in the last weight', inject: async (t) => (await poke(t, 'linear2.weight', 23, -Infinity), { x, y }) },
  { label: 'a huge finite weight (3e38: the forward overflows)', inject: async (t) => (await poke(t, 'linear2.weight', 0, 3e38), { x, y }) },
  {
    label: 'huge finite inputs (1e30 passes validation; ReLU MLP: ‖g‖² overflows)',
    model: reluMlp,
    options: { optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9 } },
    inject: async () => ({ x: x.map((v) => v * 1e30), y }),
  },
  {
    label: 'huge finite MSE targets (1e38: the squared error overflows)',
    options: { loss: 'mse', optimizer: { type: 'adamw', lr: 1e-2, weightDecay: 0.1 } },
    inject: async () => ({ x, y: new Float32Array(ROWS * 3).fill(1e38) }),
  },
  {
    label: 'one bad micro-batch of two (accumSteps 2, gradient clipping)',
    model: reluMlp,
    options: { batchSize: ROWS / 2, accumSteps: 2, gradClip: 0.5 },
    inject: async () => ({ x: x.map((v, i) => (i >= (ROWS / 2) * 4 ? v * 1e30 : v)), y }),
  },
];

const goodBatch = (t: Trainer) => (t.options.loss === 'mse' ? { x, y: new Float32Array(ROWS * 3).fill(0.5) } : { x, y });

describe.skipIf(!rt)("nonFinite: 'skip'", () => {
  for (const inj of injections) {
    it(`${inj.label}: the step is skipped (params, m, v bitwise unchanged), counted, and training goes on`, async () => {
      const t = await Trainer.create(rt!, (inj.model ?? mlp)(), base({ nonFinite: 'skip', ...inj.options }));
      try {
        for (let s = 0; s < 2; s++) expect(Number.isFinite(await t.step(goodBatch(t), { readLoss: true }))).toBe(true);
        const clean = await arenas(t);
        const batch = await inj.inject(t);
        const before = await arenas(t); // with the injected value, if it went into the parameters
        await within(t.step(batch, { readLoss: true })); // may be finite: the fault can be in the gradients or weights alone
        expect(t.skippedSteps).toBe(1);
        expect(t.stepCount).toBe(3);
        expectSameState(await arenas(t), before, 'after the skipped step');
        // Put the clean parameters back: the next step updates normally and is not counted.
        t.writeParams(clean.params);
        const next = await t.step(goodBatch(t), { readLoss: true });
        expect(Number.isFinite(next)).toBe(true);
        expect(t.skippedSteps).toBe(1);
        const after = await t.readParams();
        expect([...after].some(([k, v]) => !bytes(v).equals(bytes(clean.params.get(k)!))), 'a good step moves the weights').toBe(true);
        await t.checkNonFinite(); // 'skip' never throws
      } finally {
        t.destroy();
      }
    });
  }

  it('steps that do not read the loss are skipped too, and counted when a later read comes back', async () => {
    const t = await Trainer.create(rt!, mlp(), base({ nonFinite: 'skip' }));
    try {
      const good = await t.readParams();
      await poke(t, 'linear1.bias', 0, NaN);
      const before = await arenas(t);
      for (let s = 0; s < 3; s++) await t.step({ x, y });
      expect(t.skippedSteps).toBe(0); // nothing read back yet
      await t.step({ x, y }, { readLoss: true });
      expect(t.skippedSteps).toBe(4);
      expectSameState(await arenas(t), before, 'after 4 skipped steps');
      t.writeParams(good);
      await t.step({ x, y });
      await t.checkNonFinite();
      expect(t.skippedSteps).toBe(4);
      expect((await t.readState()).step).toBe(5);
    } finally {
      t.destroy();
    }
  });
});

describe.skipIf(!rt)("nonFinite: 'stop' (the default)", () => {
  for (const inj of injections) {
    it(`${inj.label}: the loss read rejects with a NonFiniteError naming the step; the weights are not touched`, async () => {
      const t = await Trainer.create(rt!, (inj.model ?? mlp)(), base(inj.options));
      try {
        await t.step(goodBatch(t), { readLoss: true });
        const batch = await inj.inject(t);
        const before = await arenas(t);
        const err = await within(t.step(batch, { readLoss: true }).then(() => null, (e) => e));
        expect(err).toBeInstanceOf(NonFiniteError);
        expect((err as NonFiniteError).step).toBe(2);
        expect((err as Error).message).toMatch(/^step 2: the loss .* is not finite; .*parameters and optimizer state are those after step 1/);
        expectSameState(await arenas(t), before, 'after the faulty step');
        expect(() => t.step(goodBatch(t))).toThrow(NonFiniteError);
        expect(() => t.step(goodBatch(t))).toThrow(/^step 2: /);
      } finally {
        t.destroy();
      }
    });
  }

  it('an absurd learning rate (SGD, lr 1e30): step 2 overflows, is named, and every later step is skipped', async () => {
    const t = await Trainer.create(rt!, reluMlp(), base({ optimizer: { type: 'sgd', lr: 1e30 } }));
    try {
      const initial = await t.readState();
      expect(Number.isFinite(await t.step({ x, y }, { readLoss: true }))).toBe(true);
      const afterOne = await arenas(t);
      // Steps 2…4 without reading the loss: the GPU stops updating at step 2; nobody knows yet.
      for (let s = 0; s < 3; s++) expect(await t.step({ x, y })).toBeUndefined();
      const err = await within(t.step({ x, y }, { readLoss: true }).then(() => null, (e) => e));
      expect(err).toBeInstanceOf(NonFiniteError);
      expect(err.step).toBe(2);
      expect(t.skippedSteps).toBe(4); // steps 2, 3, 4 and 5
      expectSameState(await arenas(t), afterOne, 'after the stop');
      expect(() => t.step({ x, y })).toThrow(NonFiniteError);
      await expect(t.readState()).rejects.toThrow(NonFiniteError);
      await expect(t.checkNonFinite()).rejects.toThrow(/^step 2: /);
      // Inference and reading the (good) weights still work.
      expectSameBits(await t.readParams(), afterOne.params, 'readParams after the stop');
      expect(typeof (await t.evaluate({ x, y })).loss).toBe('number'); // runs (NaN here: the step-1 weights are ~1e30)
      // loadState clears the stop: the first step from the initial state is finite again.
      t.loadState(initial);
      expect(Number.isFinite(await t.step({ x, y }, { readLoss: true }))).toBe(true);
      expectSameBits(await t.readParams(), afterOne.params, 'step 1 again, after loadState');
      await t.checkNonFinite();
      const again = await within(t.step({ x, y }, { readLoss: true }).then(() => null, (e) => e));
      expect(again).toBeInstanceOf(NonFiniteError);
      expect(again.step).toBe(2);
    } finally {
      t.destroy();
    }
  });

  it('fit() rejects with the NonFiniteError (no unhandled rejection), and checkNonFinite() finds a fault nobody read', async () => {
    const data = { x: randn(64 * 4, 3), y: new Int32Array(64).map((_, i) => i % 3) };
    const t = await Trainer.create(rt!, reluMlp(), base({ optimizer: { type: 'sgd', lr: 1e30 } }));
    try {
      const err = await within(t.fit(data, { epochs: 3, logEvery: 5 }).then(() => null, (e) => e));
      expect(err).toBeInstanceOf(NonFiniteError);
      expect(err.step).toBe(2);
      expect(t.stepCount).toBe(5); // found at the first loss read, step 5
    } finally {
      t.destroy();
    }
    const u = await Trainer.create(rt!, reluMlp(), base({ optimizer: { type: 'sgd', lr: 1e30 } }));
    try {
      for (let s = 0; s < 3; s++) await u.step({ x, y });
      await expect(within(u.checkNonFinite())).rejects.toThrow(/^step 2: the loss or a gradient \(norm not read\) is not finite/);
    } finally {
      u.destroy();
    }
  });

  it('writeParams and loadState refuse NaN and infinities (before writing anything)', async () => {
    const t = await Trainer.create(rt!, mlp(), base());
    try {
      const p = await t.readParams();
      for (const bad of [NaN, Infinity, -Infinity]) {
        const w = p.get('linear2.weight')!.slice();
        w[4] = bad;
        expect(() => t.writeParams({ 'linear1.bias': new Float32Array(8), 'linear2.weight': w })).toThrow(`writeParams: linear2.weight[4] is ${bad}: values must be finite`);
        const state = await t.readState();
        state.v.get('linear1.bias')![2] = bad;
        expect(() => t.loadState(state)).toThrow(`training state 'v': linear1.bias[2] is ${bad}: values must be finite`);
      }
      expectSameBits(await t.readParams(), p, 'nothing was written');
    } finally {
      t.destroy();
    }
  });

  it('bad options: nonFinite must be skip or stop, gradClip finite', async () => {
    await expect(Trainer.create(rt!, mlp(), base({ nonFinite: 'ignore' as 'skip' }))).rejects.toThrow(/nonFinite must be 'skip' or 'stop', got "ignore"/);
    await expect(Trainer.create(rt!, mlp(), base({ gradClip: Infinity }))).rejects.toThrow(/gradClip must be a finite number > 0/);
  });
});

describe.skipIf(!rt)('the check in the kernels (grad_norm.wgsl + optimizer.wgsl)', () => {
  // 50,000 gradients over windows of 4096 (13 windows, several workgroups each): a single bad value
  // anywhere must be caught, including a finite one whose square overflows ‖g‖².
  const N = 50_000;
  const bad: [string, number, number][] = [
    ['NaN at 0', 0, NaN], ['NaN at the last element', N - 1, NaN], ['+Inf at a window edge', 4095, Infinity],
    ['-Inf after a window edge', 4096, -Infinity], ['NaN mid-window', 12_345, NaN], ['2e19 (finite, g² overflows)', 777, 2e19],
  ];
  async function run(g: Float32Array, optimizer: OptimizerConfig, mode: 'skip' | 'stop', maxNorm?: number, lossValue = 1.5, p0 = randn(N, 1)) {
    const c = withDefaults(optimizer);
    const params = upload(rt!, p0, 'params');
    const m = zeros(rt!, N, 'm');
    const v = zeros(rt!, N, 'v');
    const clip = upload(rt!, new Float32Array([0, 1, 0, 0, 0, 0, 0, 0]), 'clip');
    const loss = upload(rt!, new Float32Array([lossValue, 0, 0, 0]), 'loss');
    const step = rt!.device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    writeArray(rt!.device, step, 0, stepValues(c, 1e-2, 7));
    const rec = new Recorder(rt!);
    const grads = upload(rt!, g, 'grads');
    await recordGradClip(rec, grads.buffer, N, maxNorm, clip, 4096, { mode, loss, step, params: params.buffer });
    await recordOptimizer(rec, c, { step, params: params.buffer, grads: grads.buffer, m: m.buffer, v: v.buffer, clip }, [{ label: 'all', offset: 0, count: N, weightDecay: 0.1 }], 4096);
    await runRecorded(rt!, rec);
    const out = { p0, params: await read(rt!, params), m: await read(rt!, m), status: await read(rt!, clip) };
    for (const b of [params, m, v, clip, loss, grads]) b.buffer.destroy();
    step.destroy();
    return out;
  }
  for (const [label, at, value] of bad) {
    for (const [opt, mode] of [[{ type: 'adamw', lr: 1e-2 }, 'stop'], [{ type: 'sgd', lr: 1e-2, momentum: 0.9 }, 'skip']] as const) {
      it(`${label}, ${opt.type}, '${mode}': flagged, no parameter or moment written`, async () => {
        const g = randn(N, 2, 0.1);
        g[at] = value;
        const r = await run(g, opt, mode, mode === 'stop' ? 1 : undefined);
        expect(r.status[2]).toBe(1);
        expect(r.status[3]).toBe(1);
        expect(r.status[4]).toBe(mode === 'stop' ? 7 : 0);
        expect(bytes(r.params).equals(bytes(r.p0))).toBe(true);
        expect(r.m.every((e) => e === 0)).toBe(true);
      });
    }
  }
  it('a bad value beside a negative one (sign bits set) in the other array, and a bad parameter alone', async () => {
    const g = randn(N, 2, 0.1).map((e) => -Math.abs(e) - 1e-3);
    const p = randn(N, 1).map((e) => -Math.abs(e) - 1e-3);
    for (const [label, gi, pi] of [['NaN gradient, negative weight', NaN, -1], ['negative gradient, NaN weight', -1, NaN], ['negative gradient, -Inf weight', -1, -Infinity]] as const) {
      const gg = g.slice();
      const pp = p.slice();
      gg[31_000] = gi;
      pp[31_000] = pi;
      const r = await run(gg, { type: 'adamw', lr: 1e-2 }, 'skip', undefined, 1.5, pp);
      expect(r.status[2], label).toBe(1);
      expect(bytes(r.params).equals(bytes(pp)), label).toBe(true);
    }
  });

  it('a non-finite loss alone is flagged; clean gradients are not, and update as before', async () => {
    const g = randn(N, 2, 0.1);
    const clean = await run(g, { type: 'adam', lr: 1e-2 }, 'skip');
    expect([...clean.status.slice(2, 5)]).toEqual([0, 0, 0]);
    expect(clean.status[1]).toBe(1); // no clipping asked: scale exactly 1
    expect(bytes(clean.params).equals(bytes(clean.p0))).toBe(false);
    expect(CLIP_STATUS_FLOATS).toBe(8);
    for (const lossValue of [NaN, Infinity, -Infinity]) {
      const r = await run(g, { type: 'adam', lr: 1e-2 }, 'stop', undefined, lossValue);
      expect([...r.status.slice(2, 5)], `loss ${lossValue}`).toEqual([1, 1, 7]);
      expect(bytes(r.params).equals(bytes(r.p0)), `loss ${lossValue}`).toBe(true);
    }
  });
});
