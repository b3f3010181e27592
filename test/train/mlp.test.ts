import { describe, it, expect } from 'vitest';
import { testRuntime, randn } from '../helpers.ts';
import { Sequential, Linear, ReLU, Trainer } from '../../src/index.ts';

const rt = await testRuntime();

describe.skipIf(!rt)('mlp smoke', () => {
  it('loss falls', async () => {
    const model = new Sequential([new Linear(4, 16), new ReLU(), new Linear(16, 3)]);
    const t = await Trainer.create(rt!, model, { inputShape: [4], loss: 'cross-entropy', optimizer: { type: 'adam', lr: 0.05 }, batchSize: 8, seed: 1 });
    const x = randn(32, 3);
    const y = new Int32Array([0, 1, 2, 0, 1, 2, 0, 1]);
    const losses = [];
    for (let i = 0; i < 20; i++) losses.push(await t.step({ x, y }, { readLoss: true }));
    console.log(losses);
    expect(losses[19]).toBeLessThan(losses[0]);
    t.destroy();
  });
});
