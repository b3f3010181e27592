// Mixed precision (precision: 'f16') against the f32 path on the same model, seed and data: the first
// step's loss and gradients (÷ the loss scale), an SGD update (which shows the unscaling), training on the
// penguins table, bitwise repeatability, and the dynamic loss scale's rule (overflow: skip and halve;
// growthInterval good steps: double). Tolerances, from f16's 11-bit significand (2^-11 ≈ 4.9e-4 per
// rounding, a few roundings per layer): loss within 5e-4 relative (one rounding), each gradient within 5e-3
// relative L2 (measured: 4e-6 and 6.6e-4 for this MLP, 2e-6 and 8.2e-4 for the GPT below).
import { describe, it, expect } from 'vitest';
import { testRuntime, randn, relL2 } from '../helpers.ts';
import { Sequential, Linear, ReLU, GELU, Tanh, Trainer, GPT, penguins, type TrainerOptions, type Layer, type GPTConfig } from '../../src/index.ts';
import type { Runtime } from '../../src/gpu/device.ts';

const rt = await testRuntime();
const hasF16 = !!rt && rt.features.has('shader-f16');

const ROWS = 24;
const model = (): Layer => new Sequential([new Linear(20, 33), new Tanh(), new Linear(33, 17), new GELU(), new Linear(17, 12), new ReLU(), new Linear(12, 5)]);
const x = randn(ROWS * 20, 1);
const y = new Int32Array(ROWS).map((_, i) => (i * 3) % 5);
const opts = (o: Partial<TrainerOptions>): TrainerOptions => ({ inputShape: [20], loss: 'cross-entropy', optimizer: { type: 'sgd', lr: 0 }, batchSize: ROWS, seed: 5, ...o });

async function run<T>(rt: Runtime, o: Partial<TrainerOptions>, fn: (t: Trainer) => Promise<T>): Promise<T> {
  const t = await Trainer.create(rt, model(), opts(o));
  try {
    return await fn(t);
  } finally {
    t.destroy();
  }
}

describe.skipIf(!hasF16)('mixed precision (f16) against f32', () => {
  it('first step: loss within 5e-4 and every gradient (÷ loss scale) within 5e-3 relative L2', async () => {
    const f32 = await run(rt!, {}, async (t) => ({ loss: await t.step({ x, y }, { readLoss: true }), grads: await t.readGrads() }));
    const f16 = await run(rt!, { precision: 'f16' }, async (t) => ({ loss: await t.step({ x, y }, { readLoss: true }), grads: await t.readGrads(), scale: t.lossScale }));
    expect(f16.scale).toBe(2 ** 16);
    expect(Math.abs(f16.loss - f32.loss) / f32.loss).toBeLessThan(5e-4);
    for (const [name, g] of f32.grads) {
      const unscaled = f16.grads.get(name)!.map((v) => v / f16.scale);
      expect(relL2(unscaled, g), name).toBeLessThan(5e-3);
    }
  });

  it('an SGD step applies the unscaled gradient (update within 5e-3 relative L2 of f32)', async () => {
    const o = { optimizer: { type: 'sgd' as const, lr: 0.5 } };
    const before = await run(rt!, o, (t) => t.readParams());
    const after32 = await run(rt!, o, async (t) => (await t.step({ x, y }), t.readParams()));
    const after16 = await run(rt!, { ...o, precision: 'f16' }, async (t) => (await t.step({ x, y }), t.readParams()));
    for (const [name, p0] of before) {
      const d32 = after32.get(name)!.map((v, i) => v - p0[i]);
      const d16 = after16.get(name)!.map((v, i) => v - p0[i]);
      expect(relL2(d16, d32), name).toBeLessThan(5e-3);
    }
  });

  it('penguins, Adam, 15 epochs: the f16 loss curve stays within 5% of f32, held-out accuracy ≥ 95%, bitwise repeatable', async () => {
    const data = penguins({ seed: 0 });
    const F = data.features.length;
    const train = async (precision: 'f32' | 'f16') => {
      const m = new Sequential([new Linear(F, 32), new ReLU(), new Linear(32, 3)]);
      const t = await Trainer.create(rt!, m, { inputShape: [F], loss: 'cross-entropy', optimizer: { type: 'adam', lr: 0.01 }, batchSize: 16, seed: 0, precision });
      try {
        const h = await t.fit(data.train, { epochs: 15, logEvery: 10 });
        return { losses: h.losses.map((l) => l.loss), acc: (await t.evaluate(data.test)).accuracy!, skipped: t.skippedSteps, params: await t.readParams() };
      } finally {
        t.destroy();
      }
    };
    const a32 = await train('f32');
    const a16 = await train('f16');
    const b16 = await train('f16');
    expect(a16.losses.length).toBe(a32.losses.length);
    // Early losses are large and the curves close; late ones are small, so they are compared with a floor.
    a16.losses.forEach((l, i) => expect(Math.abs(l - a32.losses[i]), `logged loss ${i}`).toBeLessThan(0.05 * Math.max(a32.losses[i], 0.1)));
    expect(a16.acc).toBeGreaterThanOrEqual(0.95);
    expect(a16.skipped).toBe(0);
    expect(b16.losses).toEqual(a16.losses);
    for (const [name, p] of a16.params) expect(Buffer.from(b16.params.get(name)!.buffer).equals(Buffer.from(p.buffer)), name).toBe(true);
  });

  it('dynamic loss scale: an overflowing step is skipped (weights untouched) and halves the scale; growthInterval good steps double it', async () => {
    await run(rt!, { precision: 'f16', optimizer: { type: 'adam', lr: 1e-3 }, lossScale: { initial: 2 ** 40, growthInterval: 3 } }, async (t) => {
      const p0 = await t.readParams();
      let scale = t.lossScale;
      let skipped = 0;
      let good = 0;
      let sawGrowth = false;
      expect(scale).toBe(2 ** 40);
      for (let i = 0; i < 40; i++) {
        const r = await t.step({ x, y }, { readLoss: true, status: true }); // never a NonFiniteError ('stop' is the default)
        expect(Number.isFinite(r.loss)).toBe(true);
        expect([r.lossScale, r.skippedSteps]).toEqual([t.lossScale, t.skippedSteps]);
        if (t.skippedSteps > skipped) {
          expect(t.skippedSteps).toBe(skipped + 1);
          expect(t.lossScale).toBe(scale / 2);
          if (i === 0) {
            const p1 = await t.readParams();
            for (const [name, p] of p0) expect(Buffer.from(p1.get(name)!.buffer).equals(Buffer.from(p.buffer)), name).toBe(true);
          }
          good = 0;
        } else if (++good === 3) {
          expect(t.lossScale).toBe(scale * 2);
          sawGrowth = true;
          good = 0;
        } else expect(t.lossScale).toBe(scale);
        scale = t.lossScale;
        skipped = t.skippedSteps;
      }
      expect(skipped).toBeGreaterThanOrEqual(10); // 2^40 down to a scale at which the gradients fit f16
      expect(sawGrowth).toBe(true);
      expect(scale).toBeLessThan(2 ** 30);
    });
  });

  it('a non-finite weight is still a fault under loss scaling: NonFiniteError with the default stop', async () => {
    await run(rt!, { precision: 'f16' }, async (t) => {
      const p = await t.readParams();
      const w = p.get('linear1.weight')!;
      w[3] = 1e30 * 1e30; // Infinity, written past the host check by the GPU arena's own write below
      (t as unknown as { store: { write(n: string, d: Float32Array): void } }).store.write('linear1.weight', w);
      await expect(t.step({ x, y }, { readLoss: true })).rejects.toThrow(/step 1: .*not finite/);
      expect(t.lossScale).toBe(2 ** 16);
    });
  });
});

// A GPT with every GPT kernel in f16: embedding, fused residual + LayerNorm, attention (HS 10: scalar loads),
// GELU MLP, tied head, cross-entropy; odd sizes. With a 32768-byte binding limit the vocabulary splits into
// chunks of 128 rows (the f16 copy of wte is then bound per chunk too).
const gptCfg: GPTConfig = { vocab_size: 300, n_positions: 16, n_embd: 40, n_layer: 2, n_head: 4, layer_norm_epsilon: 1e-5 };
const GB = 3, GT = 11;
const tokens = (k: number) => Int32Array.from({ length: GB * GT }, (_, i) => (i * 37 + k * 101 + 5) % 300);
const gptOpts = (o: Partial<TrainerOptions>): TrainerOptions => ({
  inputShape: [GT], loss: 'cross-entropy', batchSize: GB, decay: 'matrices', gradClip: 1, optimizer: { type: 'adamw', lr: 3e-3, weightDecay: 0.1 }, seed: 7, ...o,
});

describe.skipIf(!hasF16)('mixed precision (f16): GPT', () => {
  const first = async (precision: 'f32' | 'f16', maxBindingBytes?: number) => {
    const t = await Trainer.create(rt!, new GPT(gptCfg, undefined, { maxBindingBytes }), gptOpts({ precision, optimizer: { type: 'sgd', lr: 0 } }));
    try {
      const loss = await t.step({ x: tokens(0), y: tokens(1) }, { readLoss: true });
      return { loss, grads: await t.readGrads(), scale: t.lossScale };
    } finally {
      t.destroy();
    }
  };

  it('first step: loss within 5e-4, every gradient (÷ loss scale) within 5e-3 relative L2 of f32; vocabulary chunks agree', async () => {
    const f32 = await first('f32');
    for (const limit of [undefined, 32768]) {
      const f16 = await first('f16', limit);
      expect(Math.abs(f16.loss - f32.loss) / f32.loss).toBeLessThan(5e-4);
      for (const [name, g] of f32.grads) expect(relL2(f16.grads.get(name)!.map((v) => v / f16.scale), g), `${name} (limit ${limit})`).toBeLessThan(5e-3);
    }
  });

  it('20 AdamW steps: the loss curve stays within 2% of f32 and falls; bitwise repeatable', async () => {
    const train = async (precision: 'f32' | 'f16') => {
      const t = await Trainer.create(rt!, new GPT(gptCfg), gptOpts({ precision }));
      try {
        const losses: number[] = [];
        for (let k = 0; k < 20; k++) losses.push(await t.step({ x: tokens(k % 4), y: tokens(k % 4 + 1) }, { readLoss: true }));
        return { losses, skipped: t.skippedSteps };
      } finally {
        t.destroy();
      }
    };
    const a32 = await train('f32');
    const a16 = await train('f16');
    expect((await train('f16')).losses).toEqual(a16.losses);
    a16.losses.forEach((l, i) => expect(Math.abs(l - a32.losses[i]) / a32.losses[i], `step ${i + 1}`).toBeLessThan(0.02));
    expect(a16.losses[19]).toBeLessThan(0.9 * a16.losses[0]);
    expect(a16.skipped).toBe(0);
  });
});

describe.skipIf(!hasF16)('mixed precision (f16): accumulation, LoRA and host writes', () => {
  it('gradient accumulation (2 micro-batches): gradients (÷ loss scale) within 5e-3 relative L2 of f32', async () => {
    const x2 = randn(2 * ROWS * 20, 9);
    const y2 = new Int32Array(2 * ROWS).map((_, i) => (i * 7) % 5);
    const grads = async (precision: 'f32' | 'f16') =>
      run(rt!, { precision, accumSteps: 2 }, async (t) => (await t.step({ x: x2, y: y2 }), { g: await t.readGrads(), scale: t.lossScale }));
    const [a, b] = [await grads('f32'), await grads('f16')];
    for (const [name, g] of a.g) expect(relL2(b.g.get(name)!.map((v) => v / b.scale), g), name).toBeLessThan(5e-3);
  });

  it('LoRA on a GPT after writeParams (the f16 copy of the frozen base is refreshed): loss within 5e-4, adapter gradients within 5e-3 of f32', async () => {
    const lora = { rank: 2, alpha: 4, targets: ['c_attn', 'c_fc'] as ('c_attn' | 'c_fc')[] };
    // Base weights from a differently seeded model, written after a first step (which has made the f16 copy
    // of the trainer's own initial weights): a stale copy would show.
    const base = await (async () => {
      const t = await Trainer.create(rt!, new GPT(gptCfg), gptOpts({ seed: 99 }));
      try {
        return await t.readParams();
      } finally {
        t.destroy();
      }
    })();
    const first = async (precision: 'f32' | 'f16') => {
      const t = await Trainer.create(rt!, new GPT(gptCfg, lora), gptOpts({ precision, trainOnly: ['*.lora_A', '*.lora_B'], optimizer: { type: 'sgd', lr: 0 } }));
      try {
        await t.step({ x: tokens(0), y: tokens(1) }, { readLoss: true }); // lr 0: nothing changes but the f16 copy is made
        t.writeParams(base);
        const loss = await t.step({ x: tokens(2), y: tokens(3) }, { readLoss: true });
        const g = await t.readGrads();
        return { loss, g: new Map([...g].filter(([n]) => /lora_[AB]$/.test(n))), scale: t.lossScale };
      } finally {
        t.destroy();
      }
    };
    const [a, b] = [await first('f32'), await first('f16')];
    expect(Math.abs(b.loss - a.loss) / a.loss).toBeLessThan(5e-4);
    expect(a.g.size).toBe(8);
    for (const [name, g] of a.g) {
      if (g.every((v) => v === 0)) continue; // lora_A gets no gradient while lora_B is zero (its initial value)
      expect(relL2(b.g.get(name)!.map((v) => v / b.scale), g), name).toBeLessThan(5e-3);
    }
  });
});

describe.skipIf(!rt)('mixed precision: errors', () => {
  it("precision 'f16' on an adapter without shader-f16 is refused, naming the feature", async () => {
    const noF16 = Object.create(rt!, { features: { value: new Set([...rt!.features].filter((f) => f !== 'shader-f16')) } }) as Runtime;
    await expect(Trainer.create(noF16, model(), opts({ precision: 'f16' }))).rejects.toThrow(/precision 'f16' needs the adapter feature 'shader-f16'/);
    await expect(Trainer.create(rt!, model(), opts({ precision: 'bf16' as never }))).rejects.toThrow(/precision must be 'f32' or 'f16'/);
    await expect(Trainer.create(rt!, model(), opts({ precision: 'f16', lossScale: { growthInterval: 0 } }))).rejects.toThrow(/growthInterval/);
  });
});
