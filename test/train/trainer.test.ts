// The whole engine on small MLPs: gradients against the float64 reference MLP and finite differences,
// optimizer steps against the reference formulas, gradient accumulation, the one-submit step, predict,
// and held-out accuracy on the built-in penguins table.
import { describe, it, expect } from 'vitest';
import { testRuntime, randn, expectClose, relL2 } from '../helpers.ts';
import { Sequential, Linear, ReLU, GELU, Tanh, Trainer, penguins, type TrainerOptions, type Layer } from '../../src/index.ts';
import { mlpLossAndGrads, type RefLayer } from '../../src/reference/mlp.ts';
import { adamStep, sgdStep } from '../../src/reference/ops.ts';
import type { Runtime } from '../../src/gpu/device.ts';

const rt = await testRuntime();

// A 5-7-6-4 MLP with three different activations, on a batch of 9 rows: no dimension is a tile multiple.
const refLayers: RefLayer[] = [
  { name: 'linear1', inF: 5, outF: 7, act: 'tanh', bias: true },
  { name: 'linear2', inF: 7, outF: 6, act: 'gelu', bias: true },
  { name: 'linear3', inF: 6, outF: 4, act: 'none', bias: true },
];
const model = (): Layer => new Sequential([new Linear(5, 7), new Tanh(), new Linear(7, 6), new GELU(), new Linear(6, 4)]);
const ROWS = 9;
const x = randn(ROWS * 5, 11);
const y = new Int32Array([0, 1, 2, 3, 3, 2, 1, 0, 2]);

function opts(o: Partial<TrainerOptions> = {}): TrainerOptions {
  return { inputShape: [5], loss: 'cross-entropy', optimizer: { type: 'adam', lr: 0 }, batchSize: ROWS, seed: 3, ...o };
}

async function withTrainer<T>(rt: Runtime, o: Partial<TrainerOptions>, fn: (t: Trainer) => Promise<T>, m = model()): Promise<T> {
  const t = await Trainer.create(rt, m, opts(o));
  try {
    return await fn(t);
  } finally {
    t.destroy();
  }
}

describe.skipIf(!rt)('trainer: gradients', () => {
  it('loss and every gradient match the float64 reference MLP (relative L2 < 1e-5)', async () => {
    await withTrainer(rt!, {}, async (t) => {
      const params = await t.readParams();
      const loss = await t.step({ x, y }, { readLoss: true });
      const ref = mlpLossAndGrads(refLayers, params, x, y, ROWS, 'cross-entropy');
      expect(Math.abs(loss - ref.loss) / ref.loss).toBeLessThan(1e-6);
      const grads = await t.readGrads();
      expect([...grads.keys()].sort()).toEqual([...ref.grads.keys()].sort());
      for (const [name, g] of ref.grads) expect(relL2(grads.get(name)!, g), name).toBeLessThan(1e-5);
    });
  });

  it('gradients agree with central finite differences of the GPU loss', async () => {
    await withTrainer(rt!, {}, async (t) => {
      const params = await t.readParams();
      await t.step({ x, y });
      const grads = await t.readGrads();
      const eps = 1e-2; // f32 loss: smaller steps drown in rounding; the O(eps²) truncation stays ~1e-4
      const random = randn(64, 5);
      let checked = 0;
      for (const [name, p] of params) {
        for (const r of random.slice(checked % 8, (checked % 8) + 3)) {
          const i = Math.abs(Math.floor(r * 1000)) % p.length;
          const probe = async (delta: number) => {
            const q = p.slice();
            q[i] += delta;
            t.writeParams({ [name]: q });
            return (await t.evaluate({ x, y })).loss;
          };
          const fd = ((await probe(eps)) - (await probe(-eps))) / (2 * eps);
          t.writeParams({ [name]: p });
          const g = grads.get(name)![i];
          expect(Math.abs(fd - g), `${name}[${i}]: fd ${fd} vs analytic ${g}`).toBeLessThan(2e-3 + 2e-2 * Math.abs(g));
          checked++;
        }
      }
      expect(checked).toBe(18);
    });
  });

  it('gradient accumulation: 3 micro-batches of 3 equal one batch of 9', async () => {
    const lossOne = await withTrainer(rt!, {}, async (t) => {
      const l = await t.step({ x, y }, { readLoss: true });
      return { l, g: await t.readGrads() };
    });
    const m = model();
    const three = await Trainer.create(rt!, m, opts({ batchSize: 3, accumSteps: 3 }));
    const l3 = await three.step({ x, y }, { readLoss: true });
    const g3 = await three.readGrads();
    three.destroy();
    expect(Math.abs(l3 - lossOne.l)).toBeLessThan(1e-6);
    for (const [name, g] of lossOne.g) expect(relL2(g3.get(name)!, g), name).toBeLessThan(1e-5);
  });
});

describe.skipIf(!rt)('trainer: optimizer steps', () => {
  const cases = [
    { label: 'AdamW, decay 0.1, cosine schedule with warmup', optimizer: { type: 'adamw', lr: 0.01, weightDecay: 0.1 } as const, schedule: { type: 'cosine', warmupSteps: 2, totalSteps: 6 } as const },
    { label: 'Adam, L2 decay 0.05', optimizer: { type: 'adam', lr: 0.02, weightDecay: 0.05, beta1: 0.8, beta2: 0.99 } as const },
    { label: 'SGD, momentum 0.9, nesterov, decay 0.01', optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.01 } as const },
    { label: 'AdamW with gradient clipping at 0.05', optimizer: { type: 'adamw', lr: 0.01, weightDecay: 0.1 } as const, gradClip: 0.05 },
  ];
  for (const c of cases) {
    it(`6 steps match the torch.optim reference: ${c.label}`, async () => {
      await withTrainer(rt!, { optimizer: c.optimizer, schedule: c.schedule, gradClip: c.gradClip }, async (t) => {
        const p = new Map([...(await t.readParams())].map(([k, v]) => [k, Float64Array.from(v)]));
        const m = new Map([...p].map(([k, v]) => [k, new Float64Array(v.length)]));
        const v2 = new Map([...p].map(([k, v]) => [k, new Float64Array(v.length)]));
        for (let s = 1; s <= 6; s++) {
          const lr = t.lr;
          const xs = randn(ROWS * 5, 100 + s);
          const loss = await t.step({ x: xs, y }, { readLoss: true });
          const ref = mlpLossAndGrads(refLayers, p, xs, y, ROWS, 'cross-entropy');
          expect(Math.abs(loss - ref.loss), `loss at step ${s}`).toBeLessThan(1e-5 * Math.max(1, ref.loss));
          let scale = 1;
          if (c.gradClip) {
            let sq = 0;
            for (const g of ref.grads.values()) for (const e of g) sq += e * e;
            scale = Math.min(1, c.gradClip / (Math.sqrt(sq) + 1e-6));
          }
          for (const [name, g] of ref.grads) {
            const gs = g.map((e) => e * scale);
            const o = c.optimizer;
            if (o.type === 'sgd') sgdStep(p.get(name)!, gs, m.get(name)!, s, { lr, momentum: o.momentum, dampening: 0, nesterov: o.nesterov, weightDecay: o.weightDecay });
            else adamStep(p.get(name)!, gs, m.get(name)!, v2.get(name)!, s, { lr, beta1: (o as { beta1?: number }).beta1 ?? 0.9, beta2: (o as { beta2?: number }).beta2 ?? 0.999, eps: 1e-8, weightDecay: o.weightDecay, decoupled: o.type === 'adamw' });
          }
        }
        const got = await t.readParams();
        for (const [name, want] of p) expectClose(got.get(name)!, want, { atol: 2e-5, rtol: 1e-4 }, `${name} after 6 steps`);
      });
    });
  }
});

describe.skipIf(!rt)('trainer: the recorded step', () => {
  it('one queue.submit per step, no mapping, no allocation or pipeline/bind-group creation when the loss is not read', async () => {
    await withTrainer(rt!, { optimizer: { type: 'adam', lr: 1e-3 } }, async (t) => {
      await t.step({ x, y }, { readLoss: true }); // warm: the loss staging buffer exists now
      await t.sync();
      const device = rt!.device;
      const queue = device.queue;
      const counts = { submit: 0, map: 0, createBuffer: 0, createBindGroup: 0, createPipeline: 0 };
      const restore: (() => void)[] = [];
      const spy = <T extends object>(obj: T, key: keyof T, counter: keyof typeof counts) => {
        const orig = obj[key] as unknown as (...a: unknown[]) => unknown;
        (obj as Record<string, unknown>)[key as string] = function (this: unknown, ...a: unknown[]) {
          counts[counter]++;
          return orig.apply(this, a);
        };
        restore.push(() => ((obj as Record<string, unknown>)[key as string] = orig));
      };
      spy(queue, 'submit', 'submit');
      spy(GPUBuffer.prototype, 'mapAsync', 'map');
      spy(device, 'createBuffer', 'createBuffer');
      spy(device, 'createBindGroup', 'createBindGroup');
      spy(device, 'createComputePipeline', 'createPipeline');
      try {
        for (let i = 0; i < 5; i++) expect(await t.step({ x, y })).toBeUndefined();
        await t.sync();
      } finally {
        restore.forEach((r) => r());
      }
      expect(counts).toEqual({ submit: 5, map: 0, createBuffer: 0, createBindGroup: 0, createPipeline: 0 });
    });
  });

  it('measureEncode times encoding only: nothing is submitted and the step count does not move', async () => {
    await withTrainer(rt!, {}, async (t) => {
      const queue = rt!.device.queue;
      const submit = queue.submit;
      let submits = 0;
      queue.submit = function (...a: Parameters<GPUQueue['submit']>) {
        submits++;
        return submit.apply(this, a);
      };
      try {
        expect(t.measureEncode(5)).toBeGreaterThan(0);
      } finally {
        queue.submit = submit;
      }
      expect(submits).toBe(0);
      expect(t.stepCount).toBe(0);
    });
  });

  it('predict matches the reference forward pass, for a row count that is not the batch size', async () => {
    await withTrainer(rt!, {}, async (t) => {
      const xs = randn(13 * 5, 42);
      const out = await t.predict(xs);
      const ref = mlpLossAndGrads(refLayers, await t.readParams(), xs, new Int32Array(13), 13, 'cross-entropy');
      expectClose(out, ref.output, { atol: 1e-5, rtol: 1e-4 }, 'predict');
    });
  });

  it('the same seed gives bitwise identical losses and weights', async () => {
    const run = () =>
      withTrainer(rt!, { optimizer: { type: 'adam', lr: 0.01 } }, async (t) => {
        const losses: number[] = [];
        for (let s = 0; s < 4; s++) losses.push(await t.step({ x, y }, { readLoss: true }));
        return { losses, w: (await t.readParams()).get('linear2.weight')! };
      });
    const a = await run();
    const b = await run();
    expect(b.losses).toEqual(a.losses);
    expect(Buffer.from(b.w.buffer).equals(Buffer.from(a.w.buffer))).toBe(true);
  });
});

describe.skipIf(!rt)('trainer: real data', () => {
  it('an MLP on the penguins table reaches ≥ 95% held-out accuracy', async () => {
    const data = penguins({ seed: 0 });
    const F = data.features.length;
    const m = new Sequential([new Linear(F, 32), new ReLU(), new Linear(32, 3)]);
    const t = await Trainer.create(rt!, m, { inputShape: [F], loss: 'cross-entropy', optimizer: { type: 'adam', lr: 0.01 }, batchSize: 16, seed: 0 });
    const before = await t.evaluate(data.test);
    const history = await t.fit(data.train, { epochs: 15, logEvery: 17, validation: data.test });
    const after = await t.evaluate(data.test);
    t.destroy();
    expect(before.accuracy!).toBeLessThan(0.8);
    expect(history.losses[history.losses.length - 1].loss).toBeLessThan(history.losses[0].loss);
    expect(after.accuracy!).toBeGreaterThanOrEqual(0.95);
  });
});
