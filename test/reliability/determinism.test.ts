// Determinism and isolation: the same seed gives bitwise identical losses, weights and optimizer moments
// run after run (a small GPT, AdamW with clipping), and several Trainers stepping in turn on one device
// (same pipelines, separate buffers and bind groups) each get exactly what they get alone — including
// when one of them hits a non-finite step and stops.
import { describe, it, expect } from 'vitest';
import { testRuntime, randn } from '../helpers.ts';
import { GPT, Linear, ReLU, Sequential, Trainer, type GPTConfig, type TrainerOptions, type Layer } from '../../src/index.ts';
import { NonFiniteError, type TrainingState } from '../../src/train/trainer.ts';

const rt = await testRuntime();

const config: GPTConfig = { vocab_size: 37, n_positions: 12, n_embd: 16, n_layer: 2, n_head: 2, layer_norm_epsilon: 1e-5 };
const B = 2;
const T = 8;
const gptOptions = (o: Partial<TrainerOptions> = {}): TrainerOptions => ({
  inputShape: [T], loss: 'cross-entropy', batchSize: B, seed: 11, gradClip: 0.5, decay: 'matrices',
  optimizer: { type: 'adamw', lr: 3e-3, weightDecay: 0.1 }, ...o,
});
const tokens = (s: number) => {
  const x = new Int32Array(B * T).map((_, i) => (i * 5 + s * 11 + ((i * i) % 7)) % config.vocab_size);
  return { x, y: x.map((v, i) => (v * 3 + i) % config.vocab_size) };
};
const mlpX = (s: number) => randn(8 * 6, 100 + s);
const mlpY = new Int32Array(8).map((_, i) => i % 3);

interface Job {
  label: string;
  model: () => Layer;
  options: TrainerOptions;
  batch: (s: number) => { x: Float32Array | Int32Array; y: Int32Array };
}
const jobs: Job[] = [
  { label: 'GPT, AdamW + clipping', model: () => new GPT(config), options: gptOptions(), batch: tokens },
  { label: 'the same GPT, other seed, SGD + momentum', model: () => new GPT(config), options: gptOptions({ seed: 12, optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9 }, gradClip: undefined }), batch: (s) => tokens(s + 50) },
  {
    label: 'MLP, Adam, 2 micro-batches',
    model: () => new Sequential([new Linear(6, 12), new ReLU(), new Linear(12, 3)]),
    options: { inputShape: [6], loss: 'cross-entropy', batchSize: 4, accumSteps: 2, optimizer: { type: 'adam', lr: 1e-2 }, seed: 3 },
    batch: (s) => ({ x: mlpX(s), y: mlpY }),
  },
];

const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
function expectSameState(a: TrainingState, b: TrainingState, what: string) {
  expect(a.step, `${what}: step`).toBe(b.step);
  for (const k of ['params', 'm', 'v'] as const) {
    expect([...a[k].keys()], `${what}: ${k} names`).toEqual([...b[k].keys()]);
    for (const [n, v] of a[k]) expect(bits(v).equals(bits(b[k].get(n)!)), `${what}: ${k} ${n}`).toBe(true);
  }
}

async function alone(job: Job, steps: number): Promise<{ losses: number[]; state: TrainingState }> {
  const t = await Trainer.create(rt!, job.model(), job.options);
  try {
    const losses: number[] = [];
    for (let s = 0; s < steps; s++) losses.push(await t.step(job.batch(s), { readLoss: true }));
    return { losses, state: await t.readState() };
  } finally {
    t.destroy();
  }
}

describe.skipIf(!rt)('determinism', () => {
  it('a small GPT, 5 AdamW steps with clipping: bitwise identical losses, weights and moments run after run', async () => {
    const a = await alone(jobs[0], 5);
    const b = await alone(jobs[0], 5);
    expect(a.losses.every(Number.isFinite)).toBe(true);
    expect(new Set(a.losses).size, 'the weights moved: every step has its own loss').toBe(5);
    expect(b.losses).toEqual(a.losses);
    expectSameState(b.state, a.state, 'second run');
  });
});

describe.skipIf(!rt)('several Trainers on one device', () => {
  it('three models stepping in turn (loss read or not, submits interleaved) each equal their run alone', async () => {
    const STEPS = 5;
    const solo = [];
    for (const j of jobs) solo.push(await alone(j, STEPS));
    const trainers = await Promise.all(jobs.map((j) => Trainer.create(rt!, j.model(), j.options)));
    try {
      const losses: Promise<number | undefined>[][] = jobs.map(() => []);
      const reads = (i: number, s: number) => i !== 1 || s % 2 === 0; // the second one reads every other loss
      for (let s = 0; s < STEPS; s++) {
        // All three submitted before any loss is awaited: their steps interleave in the queue.
        for (const [i, t] of trainers.entries()) losses[i].push(t.step(jobs[i].batch(s), { readLoss: reads(i, s) }));
      }
      for (const [i, t] of trainers.entries()) {
        const want = solo[i].losses.map((l, s) => (reads(i, s) ? l : undefined));
        expect(await Promise.all(losses[i]), jobs[i].label).toEqual(want);
        expectSameState(await t.readState(), solo[i].state, jobs[i].label);
      }
    } finally {
      for (const t of trainers) t.destroy();
    }
  });

  it('one Trainer stopping on a non-finite step does not disturb the others', async () => {
    const STEPS = 4;
    const solo = await alone(jobs[0], STEPS);
    const good = await Trainer.create(rt!, jobs[0].model(), jobs[0].options);
    const bad = await Trainer.create(rt!, new Sequential([new Linear(6, 12), new ReLU(), new Linear(12, 3)]), {
      inputShape: [6], loss: 'cross-entropy', batchSize: 8, optimizer: { type: 'sgd', lr: 1e30 }, seed: 3,
    });
    try {
      const losses: number[] = [];
      let stopped: unknown = null;
      for (let s = 0; s < STEPS; s++) {
        const l = good.step(jobs[0].batch(s), { readLoss: true });
        if (!stopped) {
          try {
            await bad.step({ x: mlpX(s), y: mlpY }, { readLoss: true });
          } catch (e) {
            stopped = e;
          }
        }
        losses.push(await l);
      }
      expect(stopped).toBeInstanceOf(NonFiniteError);
      expect((stopped as NonFiniteError).step).toBe(2);
      expect(losses).toEqual(solo.losses);
      expectSameState(await good.readState(), solo.state, 'the good Trainer');
    } finally {
      good.destroy();
      bad.destroy();
    }
  });
});
