// Per-kernel GPU times from timestamp queries: one entry per dispatch of the step, non-negative times, and the
// profiled step is a real step (same loss trajectory as an unprofiled run).
import { describe, it, expect } from 'vitest';
import { testRuntime, randn } from '../helpers.ts';
import { Sequential, Linear, ReLU, Trainer, summarizeKernelTimes } from '../../src/index.ts';

const rt = await testRuntime();
const hasTimestamps = !!rt?.features.has('timestamp-query');

describe.skipIf(!rt || !hasTimestamps)('profile (timestamp-query)', () => {
  it('times every dispatch of a real step', async () => {
    const make = () => Trainer.create(rt!, new Sequential([new Linear(6, 16), new ReLU(), new Linear(16, 3)]), { inputShape: [6], loss: 'cross-entropy', optimizer: { type: 'adam', lr: 0.01 }, batchSize: 8, seed: 5 });
    const x = randn(48, 1);
    const y = new Int32Array([0, 1, 2, 0, 1, 2, 0, 1]);
    const a = await make();
    const b = await make();
    try {
      const times = await a.profile({ x, y });
      expect(times.length).toBe(a.dispatchesPerStep);
      expect(times.map((t) => t.label)).toContain('linear1 forward');
      for (const t of times) expect(t.ms).toBeGreaterThanOrEqual(0);
      expect(times.reduce((s, t) => s + t.ms, 0)).toBeGreaterThan(0);
      const summary = summarizeKernelTimes(times);
      expect(summary.reduce((s, r) => s + r.calls, 0)).toBe(times.length);
      // The profiled step counts as a step: the next losses match an unprofiled twin.
      await b.step({ x, y });
      expect(await a.step({ x, y }, { readLoss: true })).toBe(await b.step({ x, y }, { readLoss: true }));
    } finally {
      a.destroy();
      b.destroy();
    }
  });
});
