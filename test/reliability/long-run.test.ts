// Long runs: 2,000 optimizer steps of a small MLP through fit() (loss read every 100 steps, a validation
// pass every epoch) with the number and total bytes of live GPU buffers constant after the first step,
// and the JS heap bounded (measured after forced collections).
import { describe, it, expect } from 'vitest';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { testRuntime, randn } from '../helpers.ts';
import { Linear, ReLU, Sequential, Trainer } from '../../src/index.ts';

const rt = await testRuntime();

/** A forced full collection: global.gc when node runs with --expose-gc, else one obtained through v8 flags. */
function collector(): () => void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) return g;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

describe.skipIf(!rt)('a long run', () => {
  it('2,000 steps: live GPU buffers constant in number and bytes after the first step, bounded heap growth', async () => {
    const device = rt!.device;
    const live = new Map<GPUBuffer, number>();
    let created = 0;
    const origCreate = device.createBuffer;
    const origDestroy = GPUBuffer.prototype.destroy;
    device.createBuffer = function (this: GPUDevice, d: GPUBufferDescriptor) {
      const b = origCreate.call(this, d);
      live.set(b, d.size);
      created++;
      return b;
    } as typeof origCreate;
    GPUBuffer.prototype.destroy = function (this: GPUBuffer) {
      live.delete(this);
      return origDestroy.call(this);
    };
    const gc = collector();
    const heap = () => {
      gc();
      gc();
      return process.memoryUsage().heapUsed;
    };
    const count = () => ({ buffers: live.size, bytes: [...live.values()].reduce((a, b) => a + b, 0) });

    const B = 8;
    const rows = B * 250; // 250 steps per epoch
    const data = { x: randn(rows * 8, 1), y: new Int32Array(rows).map((_, i) => (i * 7) % 4) };
    const validation = { x: randn(40 * 8, 2), y: new Int32Array(40).map((_, i) => i % 4) };
    const t0 = performance.now();
    let t: Trainer | undefined;
    try {
      t = await Trainer.create(rt!, new Sequential([new Linear(8, 16), new ReLU(), new Linear(16, 4)]), {
        inputShape: [8], loss: 'cross-entropy', optimizer: { type: 'adamw', lr: 1e-2 }, batchSize: B, gradClip: 1, seed: 1,
      });
      // The first step and the first evaluation create what the run keeps (loss staging, forward program).
      await t.step({ x: data.x.subarray(0, B * 8), y: data.y.subarray(0, B) }, { readLoss: true });
      await t.evaluate(validation);
      const first = count();
      const heap0 = heap();
      const samples: { step: number; buffers: number; bytes: number }[] = [];
      const history = await t.fit(data, {
        steps: 1999, logEvery: 100, validation,
        onProgress: (p) => samples.push({ step: p.step, ...count() }),
      });
      await t.sync();
      const heap1 = heap();
      const last = count();
      const seconds = (performance.now() - t0) / 1000;
      const growth = heap1 - heap0;
      console.log(
        `long run: ${t.stepCount} steps in ${seconds.toFixed(1)} s; live GPU buffers ${first.buffers} (${first.bytes} bytes) after step 1, ` +
          `${last.buffers} (${last.bytes} bytes) after step ${t.stepCount}; ${created} buffers created in all; ` +
          `heap ${(heap0 / 1e6).toFixed(2)} MB → ${(heap1 / 1e6).toFixed(2)} MB (growth ${(growth / 1024).toFixed(1)} KiB)`,
      );
      expect(t.stepCount).toBe(2000);
      expect(history.losses.length).toBe(20);
      expect(history.losses[19].loss).toBeLessThan(history.losses[0].loss);
      for (const s of samples) expect({ buffers: s.buffers, bytes: s.bytes }, `live buffers at step ${s.step}`).toEqual(first);
      expect(last).toEqual(first);
      // Nothing is retained per step: 2,000 steps of growth would show as ≥ 2,000 × (a few hundred bytes).
      expect(growth).toBeLessThan(512 * 1024);
      expect(seconds).toBeLessThan(60);
      // Everything the Trainer made is gone after destroy() (forward programs go a tick later).
      t.destroy();
      await new Promise((r) => setTimeout(r, 10));
      expect([...live.keys()].map((b) => b.label)).toEqual([]);
    } finally {
      t?.destroy();
      device.createBuffer = origCreate;
      GPUBuffer.prototype.destroy = origDestroy;
    }
  });
});
