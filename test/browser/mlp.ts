// Browser training test: trains a 4-16-3 MLP on three seeded Gaussian blobs with the engine
// from src/index.ts, for STEPS Adam steps, and records the loss of every step.
// Sets window.__result = { ok, losses, adapter, ms, error? } for test/browser/run.mjs.
// (Imported by relative path so that `tsc` can check it; Vite serves it as /src/index.ts.)

import { createRuntime, Sequential, Linear, ReLU, Trainer } from '../../src/index.ts';

interface MlpResult {
  ok: boolean;
  losses: number[];
  adapter?: unknown;
  accuracy?: number;
  ms?: number;
  error?: string;
}
declare global {
  interface Window {
    __result?: unknown;
  }
}

const STEPS = 30;
const BATCH = 32;
const FEATURES = 4;
const CLASSES = 3;

/** mulberry32: small seeded PRNG with uniform output in [0, 1). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Three Gaussian blobs in 4-D: class c is centred at CENTERS[c] with standard deviation 0.7. */
const CENTERS = [
  [2, 0, -1, 1],
  [-2, 1, 1, -1],
  [0, -2, 2, 0],
];
function makeBatch(rand: () => number, n: number): { x: Float32Array; y: Int32Array } {
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const x = new Float32Array(n * FEATURES);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(rand() * CLASSES);
    y[i] = c;
    for (let j = 0; j < FEATURES; j++) x[i * FEATURES + j] = CENTERS[c]![j]! + 0.7 * gauss();
  }
  return { x, y };
}

async function run(result: MlpResult): Promise<void> {
  const t0 = performance.now();
  const rt = await createRuntime();
  result.adapter = rt.adapterInfo;
  const model = new Sequential([new Linear(FEATURES, 16), new ReLU(), new Linear(16, CLASSES)]);
  const trainer = await Trainer.create(rt, model, {
    inputShape: [FEATURES],
    loss: 'cross-entropy',
    optimizer: { type: 'adam', lr: 0.05 },
    batchSize: BATCH,
    seed: 1,
  });
  try {
    const rand = mulberry32(1234);
    for (let s = 0; s < STEPS; s++) {
      const loss: number = await trainer.step(makeBatch(rand, BATCH), { readLoss: true });
      result.losses.push(loss);
    }
  } finally {
    trainer.destroy();
    rt.destroy();
  }
  result.ms = Math.round(performance.now() - t0);
  result.ok = true;
}

const result: MlpResult = { ok: false, losses: [] };
try {
  await run(result);
} catch (e) {
  result.ok = false;
  result.error = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}
window.__result = result;
const out = document.getElementById('out');
if (out) out.textContent = JSON.stringify(result, null, 2);
