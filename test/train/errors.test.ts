// Bad input is a clear error naming the layer, the tensor and the shapes, raised when the model is built
// or the batch is given, before anything is dispatched.
import { describe, it, expect } from 'vitest';
import { testRuntime } from '../helpers.ts';
import { Sequential, Linear, ReLU, Trainer, ShapeError, BatchError, type TrainerOptions } from '../../src/index.ts';

const rt = await testRuntime();
const base: TrainerOptions = { inputShape: [4], loss: 'cross-entropy', optimizer: { type: 'adam', lr: 1e-3 }, batchSize: 8 };
const mlp = () => new Sequential([new Linear(4, 8), new ReLU(), new Linear(8, 3)]);

describe.skipIf(!rt)('errors at build time', () => {
  it('mismatched layer sizes name the layer and both shapes', async () => {
    const bad = new Sequential([new Linear(4, 8), new ReLU(), new Linear(16, 3)]);
    await expect(Trainer.create(rt!, bad, base)).rejects.toThrow(ShapeError);
    await expect(Trainer.create(rt!, bad, base)).rejects.toThrow(/linear2: expects input \[\.\.\., 16\] but got linear1\.out \[8, 8\]/);
  });
  it('an input shape that does not fit the first layer', async () => {
    await expect(Trainer.create(rt!, mlp(), { ...base, inputShape: [5] })).rejects.toThrow(/linear1: expects input \[\.\.\., 4\] but got input \[8, 5\]/);
  });
  it('invalid sizes and options', async () => {
    expect(() => new Linear(0, 3)).toThrow(/inFeatures must be a positive integer, got 0/);
    await expect(Trainer.create(rt!, mlp(), { ...base, batchSize: 0 })).rejects.toThrow(/batchSize must be a positive integer/);
    await expect(Trainer.create(rt!, mlp(), { ...base, optimizer: { type: 'adam', lr: -1 } })).rejects.toThrow(/lr must be a finite number/);
    await expect(Trainer.create(rt!, mlp(), { ...base, optimizer: { type: 'adam', lr: 1e-3, beta2: 1 } })).rejects.toThrow(/beta2 must be in \[0, 1\)/);
    await expect(Trainer.create(rt!, mlp(), { ...base, freeze: ['nothing*'] })).rejects.toThrow(/freeze: 'nothing\*' matches no parameter/);
    await expect(Trainer.create(rt!, new Sequential([new Linear(4, 3, { name: 'a' }), new Linear(3, 3, { name: 'a' })]), base)).rejects.toThrow(/two layers are named 'a'/);
  });
});

describe.skipIf(!rt)('errors when the batch is given', () => {
  const good = () => ({ x: new Float32Array(8 * 4), y: new Int32Array(8) });
  it('wrong number of rows, wrong dtypes, labels out of range, non-finite inputs', async () => {
    const t = await Trainer.create(rt!, mlp(), base);
    try {
      expect(() => t.step({ x: new Float32Array(7 * 4), y: new Int32Array(8) })).toThrow(/batch x has 28 values; expected 8 rows × 4 = 32/);
      expect(() => t.step({ x: new Float32Array(32), y: new Int32Array(7) })).toThrow(/batch y has 7 labels; expected 8/);
      expect(() => t.step({ x: new Float32Array(32), y: new Float32Array(8) })).toThrow(/batch y must be an Int32Array of class ids for cross-entropy, got Float32Array/);
      expect(() => t.step({ x: new Float64Array(32) as unknown as Float32Array, y: new Int32Array(8) })).toThrow(/batch x must be a Float32Array, got Float64Array/);
      const y = new Int32Array(8);
      y[5] = 3;
      expect(() => t.step({ x: new Float32Array(32), y })).toThrow(BatchError);
      expect(() => t.step({ x: new Float32Array(32), y })).toThrow(/label y\[5\] = 3 is out of range \[0, 3\) for output linear2\.out \[8, 3\]/);
      y[5] = -1;
      expect(() => t.step({ x: new Float32Array(32), y })).toThrow(/label y\[5\] = -1 is out of range/);
      const x = new Float32Array(32);
      x[9] = NaN;
      expect(() => t.step({ x, y: new Int32Array(8) })).toThrow(/batch x\[9\] is NaN: inputs must be finite/);
      x[9] = Infinity;
      expect(() => t.step({ x, y: new Int32Array(8) })).toThrow(/batch x\[9\] is Infinity/);
      // None of the rejected batches reached the GPU: the step counter did not move, and a good one still works.
      expect(t.stepCount).toBe(0);
      expect(Number.isFinite(await t.step(good(), { readLoss: true }))).toBe(true);
      await expect(t.predict(new Float32Array(6))).rejects.toThrow(/6 values are not a whole number of rows of 4/);
    } finally {
      t.destroy();
    }
    expect(() => t.step(good())).toThrow(/this Trainer was destroyed/);
  });
  it('mse targets must match the output shape', async () => {
    const t = await Trainer.create(rt!, mlp(), { ...base, loss: 'mse' });
    try {
      expect(() => t.step({ x: new Float32Array(32), y: new Int32Array(24) })).toThrow(/batch y must be a Float32Array of targets for mse/);
      expect(() => t.step({ x: new Float32Array(32), y: new Float32Array(8) })).toThrow(/batch y has 8 targets; expected 8 rows × 3/);
      expect(Number.isFinite(await t.step({ x: new Float32Array(32), y: new Float32Array(24) }, { readLoss: true }))).toBe(true);
    } finally {
      t.destroy();
    }
  });
});
