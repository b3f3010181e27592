// Limits: a model that does not fit the device (a tensor above maxStorageBufferBindingSize, a parameter
// arena above maxBufferSize) is refused with a LimitError naming the tensor and the limit, before any GPU
// buffer is created, so nothing is dispatched and nothing of that size is ever allocated.
import { describe, it, expect } from 'vitest';
import { testRuntime } from '../helpers.ts';
import { GPT, LimitError, Linear, ReLU, Sequential, Trainer, type Layer, type TrainerOptions } from '../../src/index.ts';
import { buildGraph, checkLimits } from '../../src/train/compile.ts';

const rt = await testRuntime();

/** Runs fn with device.createBuffer counted; returns the sizes asked for and fn's error. */
async function buffersDuring(fn: () => Promise<unknown>): Promise<{ sizes: number[]; error: unknown }> {
  const device = rt!.device;
  const orig = device.createBuffer;
  const sizes: number[] = [];
  device.createBuffer = function (this: GPUDevice, d: GPUBufferDescriptor) {
    sizes.push(d.size);
    return orig.call(this, d);
  } as typeof orig;
  try {
    await fn();
    return { sizes, error: null };
  } catch (error) {
    return { sizes, error };
  } finally {
    device.createBuffer = orig;
  }
}

const opts = (o: Partial<TrainerOptions> = {}): TrainerOptions => ({ inputShape: [8192], loss: 'mse', optimizer: { type: 'adam', lr: 1e-3 }, batchSize: 2, ...o });

describe.skipIf(!rt)('models that do not fit', () => {
  it('a Linear(8192, 4097) weight (134,250,496 bytes) above the binding limit: LimitError naming it, no buffer created', async () => {
    const max = rt!.device.limits.maxStorageBufferBindingSize;
    expect(8192 * 4097 * 4).toBeGreaterThan(max); // true on lavapipe (134,217,728) and most adapters
    const { sizes, error } = await buffersDuring(() => Trainer.create(rt!, new Sequential([new Linear(8192, 4097), new ReLU(), new Linear(4097, 2)]), opts()));
    expect(error).toBeInstanceOf(LimitError);
    expect((error as Error).message).toBe(
      `parameter linear1.weight [8192, 4097] needs 134250496 bytes, above this device's maxStorageBufferBindingSize (${max}); a parameter is bound whole: use a smaller layer`,
    );
    expect(sizes).toEqual([]); // not the weight, not the arena, not anything
  });

  it('a GPT whose token embedding is above the binding limit: split by vocabulary chunk, not refused; a layer above it is', async () => {
    const cfg = { vocab_size: 65_537, n_positions: 8, n_embd: 512, n_layer: 1, n_head: 8, layer_norm_epsilon: 1e-5 }; // 65537·512·4 = 134,219,776
    const max = rt!.device.limits.maxStorageBufferBindingSize;
    expect(() => checkLimits(rt!, buildGraph(new GPT(cfg), [8], 2, 'cross-entropy', max))).not.toThrow();
    // n_embd 4096: c_attn's weight [4096, 12288] (201 MB) cannot be split: refused, naming it, nothing allocated.
    const big = { ...cfg, n_embd: 4096, n_head: 32 };
    const { sizes, error } = await buffersDuring(() => Trainer.create(rt!, new GPT(big), { ...opts(), inputShape: [8], loss: 'cross-entropy' }));
    expect(error).toBeInstanceOf(LimitError);
    expect((error as Error).message).toMatch(/^parameter h\.0\.attn\.c_attn\.weight \[4096, 12288\] needs 201326592 bytes, above this device's maxStorageBufferBindingSize/);
    expect(sizes).toEqual([]);
  });

  it("an activation above the binding limit (a batch too large): LimitError naming the tensor and the batch advice", async () => {
    const rows = Math.floor(rt!.device.limits.maxStorageBufferBindingSize / (4 * 64)) + 1;
    const m = new Sequential([new Linear(4, 64), new ReLU(), new Linear(64, 2)]);
    const { sizes, error } = await buffersDuring(() => Trainer.create(rt!, m, opts({ inputShape: [4], batchSize: rows })));
    expect(error).toBeInstanceOf(LimitError);
    expect((error as Error).message).toMatch(new RegExp(`^tensor linear1\\.out \\[${rows}, 64\\] needs ${rows * 256} bytes, above this device's maxStorageBufferBindingSize \\(\\d+\\); use a smaller batch or sequence length$`));
    expect(sizes).toEqual([]);
  });

  it('a parameter arena above maxBufferSize (every tensor fits a binding): LimitError naming the arena, its size and largest tensors', async () => {
    const { maxBufferSize, maxStorageBufferBindingSize } = rt!.device.limits;
    // Pairs of 8192×4096 and 4096×8192 weights, each exactly at the binding limit on lavapipe.
    const each = 8192 * 4096 * 4;
    expect(each).toBeLessThanOrEqual(maxStorageBufferBindingSize);
    const layers: Layer[] = [];
    for (let i = 0; i * each <= maxBufferSize; i++) layers.push(i % 2 === 0 ? new Linear(8192, 4096, { bias: false }) : new Linear(4096, 8192, { bias: false }));
    if (layers.length % 2 === 1) layers.push(new Linear(4096, 8192, { bias: false }));
    const { sizes, error } = await buffersDuring(() => Trainer.create(rt!, new Sequential(layers), opts({ batchSize: 1 })));
    expect(error).toBeInstanceOf(LimitError);
    const n = layers.length;
    expect((error as Error).message).toMatch(
      new RegExp(`^the parameter arena \\(${n * 8192 * 4096} parameters in ${n} tensors\\) needs ${n * each} bytes, above this device's maxBufferSize \\(${maxBufferSize}\\); largest: linear1\\.weight \\[8192, 4096\\] ${each} bytes`),
    );
    expect(sizes).toEqual([]);
  });

  it('a model just inside the limits still trains (the checks do not refuse what fits)', async () => {
    const t = await Trainer.create(rt!, new Sequential([new Linear(16, 8), new ReLU(), new Linear(8, 2)]), opts({ inputShape: [16], batchSize: 4 }));
    try {
      expect(Number.isFinite(await t.step({ x: new Float32Array(64).fill(0.5), y: new Float32Array(8) }, { readLoss: true }))).toBe(true);
    } finally {
      t.destroy();
    }
  });
});
