// Device faults: a device destroyed mid-training (between steps, while a step's loss is being read, during
// fit(), during a read of the weights) makes the running call reject with a DeviceLostError that names
// device loss, promptly (every wait here is bounded), and leaves no unhandled rejection behind. Each test
// makes its own Runtime, since it destroys it.
import { describe, it, expect, afterAll } from 'vitest';
import { testRuntime, randn } from '../helpers.ts';
import { createRuntime, DeviceLostError, Sequential, Linear, ReLU, Trainer, type Runtime, type TrainerOptions } from '../../src/index.ts';

const shared = await testRuntime(); // only to know whether an adapter exists

const unhandled: unknown[] = [];
const onUnhandled = (e: unknown) => unhandled.push(e);
process.on('unhandledRejection', onUnhandled);
afterAll(() => {
  process.off('unhandledRejection', onUnhandled);
});

const ROWS = 8;
const x = randn(ROWS * 4, 1);
const y = new Int32Array(ROWS).map((_, i) => i % 3);
const opts: TrainerOptions = { inputShape: [4], loss: 'cross-entropy', optimizer: { type: 'adamw', lr: 1e-2 }, batchSize: ROWS, gradClip: 1 };
const LOST = /the WebGPU device was lost \(destroyed/;

function within<T>(p: Promise<T>, ms = 10_000): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`timed out after ${ms} ms: a hang`)), ms))]);
}
/** The call's error, thrown synchronously or as a rejection, within a bounded time. */
async function failure(fn: () => unknown): Promise<unknown> {
  try {
    await within(Promise.resolve().then(fn));
  } catch (e) {
    return e;
  }
  return null;
}
async function fresh(): Promise<{ rt: Runtime; t: Trainer }> {
  const rt = await createRuntime();
  const t = await Trainer.create(rt, new Sequential([new Linear(4, 16), new ReLU(), new Linear(16, 3)]), opts);
  await t.step({ x, y }, { readLoss: true });
  return { rt, t };
}
function expectLost(e: unknown, what: RegExp) {
  expect(e, String(e)).toBeInstanceOf(DeviceLostError);
  expect((e as Error).message).toMatch(what);
  expect((e as Error).message).toMatch(LOST);
}

describe.skipIf(!shared)('device lost mid-training', () => {
  it('destroyed between steps: the next step that reads its loss rejects, then every call fails fast', async () => {
    const { rt, t } = await fresh();
    rt.device.destroy();
    // Whether device.lost has fired yet or not (it can come a moment after destroy()), the step fails.
    expectLost(await failure(() => t.step({ x, y }, { readLoss: true })), /^step( 2: reading the loss)?:/);
    await within(rt.device.lost);
    expectLost(await failure(() => t.step({ x, y })), /^step:/);
    expect(() => t.step({ x, y })).toThrow(DeviceLostError); // synchronously, before anything is written
    expectLost(await failure(() => t.evaluate({ x, y })), /^evaluate:/);
    expectLost(await failure(() => t.predict(x)), /^predict:/);
    expectLost(await failure(() => t.readParams()), /^readParams:/);
    expectLost(await failure(() => t.readState()), /^readState:/);
    expectLost(await failure(() => t.checkNonFinite()), /^checkNonFinite:/);
    expectLost(await failure(() => t.sync()), /^sync:/);
    expectLost(await failure(() => t.fit({ x, y }, { epochs: 1 })), /^step:/);
    expectLost(await failure(() => Trainer.create(rt, new Linear(4, 3), opts)), /^Trainer.create:/);
    t.destroy();
  });

  it("destroyed while a step's loss is pending: that loss rejects", async () => {
    const { rt, t } = await fresh();
    const pending = [t.step({ x, y }, { readLoss: true }), t.step({ x, y }), t.step({ x, y }, { readLoss: true })];
    rt.device.destroy();
    expectLost(await failure(() => pending[0]), /^step 2: reading the loss/);
    expect(await within(pending[1])).toBeUndefined();
    expectLost(await failure(() => pending[2]), /^step 4: reading the loss/);
    t.destroy();
  });

  it('destroyed while the weights are being read: readParams and readState reject', async () => {
    const { rt, t } = await fresh();
    const reads = [t.readParams(), t.readState(), t.evaluate({ x, y })];
    rt.device.destroy();
    for (const [i, r] of reads.entries()) {
      const e = await failure(() => r);
      expect(e, `read ${i}: ${e}`).toBeInstanceOf(DeviceLostError);
      expect((e as Error).message).toMatch(LOST);
    }
    t.destroy();
  });

  for (const when of ['from onProgress (a loss read in flight)', 'from a timer mid-run'] as const) {
    it(`destroyed during fit(), ${when}: fit rejects with DeviceLostError`, async () => {
      const { rt, t } = await fresh();
      const data = { x: randn(ROWS * 40 * 4, 2), y: new Int32Array(ROWS * 40).map((_, i) => i % 3) };
      let timer: ReturnType<typeof setTimeout> | undefined;
      const fit = t.fit(data, {
        epochs: 50, logEvery: 3,
        onProgress: (p) => {
          if (when.startsWith('from onProgress') && p.step >= 6) rt.device.destroy();
        },
      });
      if (when === 'from a timer mid-run') timer = setTimeout(() => rt.device.destroy(), 30);
      const e = await failure(() => fit);
      clearTimeout(timer);
      expect(e, String(e)).toBeInstanceOf(DeviceLostError);
      expect((e as Error).message).toMatch(LOST);
      expect(t.stepCount).toBeLessThan(50 * 40);
      t.destroy();
    });
  }

  it('no unhandled rejection was left behind by any of the above', async () => {
    await new Promise((r) => setTimeout(r, 200));
    expect(unhandled.map(String)).toEqual([]);
  });

  it('a destroyed Trainer: a pending loss read rejects with a clear error, not a hang', async () => {
    const rt = await createRuntime();
    try {
      const t = await Trainer.create(rt, new Linear(4, 3), opts);
      const p = t.step({ x, y }, { readLoss: true });
      t.destroy();
      const e = await failure(() => p);
      // Either the read finished before destroy() took effect, or it names the destroyed Trainer.
      if (e !== null) expect((e as Error).message).toMatch(/step 1: reading the loss: this Trainer was destroyed before the GPU answered/);
      expect(() => t.step({ x, y })).toThrow(/step: this Trainer was destroyed/);
    } finally {
      rt.destroy();
    }
  });
});
