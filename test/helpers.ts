// Shared test helpers: one WebGPU runtime per test file (a visible skip where none exists, a failure
// in CI), upload/run/read helpers, a seeded PRNG and closeness checks with stated tolerances.
import { afterAll, expect } from 'vitest';
import { createRuntime, type Runtime } from '../src/gpu/device.ts';
import { Recorder, encodeCommands } from '../src/gpu/program.ts';
import { createStorage, readF32, writeArray, type View } from '../src/gpu/buffers.ts';
import { prng } from '../src/train/random.ts';

export { prng };

let runtime: Runtime | null | undefined;
export let noDeviceReason = '';

/** The test runtime, or null (with noDeviceReason set) where this machine has no WebGPU adapter. */
export async function testRuntime(): Promise<Runtime | null> {
  if (runtime !== undefined) return runtime;
  try {
    runtime = await createRuntime();
  } catch (e) {
    noDeviceReason = (e as Error).message;
    if (process.env.CI) throw e;
    console.warn(`SKIPPING GPU tests: ${noDeviceReason}`);
    runtime = null;
  }
  return runtime;
}

afterAll(() => {
  runtime?.destroy();
});

export function upload(rt: Runtime, data: Float32Array | Int32Array, label = 'test data'): View {
  const buffer = createStorage(rt.device, data.byteLength, label);
  writeArray(rt.device, buffer, 0, data);
  return { buffer, offset: 0, size: Math.max(4, data.byteLength) };
}

export function zeros(rt: Runtime, n: number, label = 'test output'): View {
  return { buffer: createStorage(rt.device, n * 4, label), offset: 0, size: Math.max(4, n * 4) };
}

export async function runRecorded(rt: Runtime, rec: Recorder): Promise<void> {
  rt.device.pushErrorScope('validation');
  const enc = rt.device.createCommandEncoder();
  encodeCommands(enc, rec.commands);
  rt.device.queue.submit([enc.finish()]);
  const err = await rt.device.popErrorScope();
  if (err) throw new Error(`validation error: ${err.message}`);
  await rt.device.queue.onSubmittedWorkDone();
}

export function read(rt: Runtime, v: View): Promise<Float32Array> {
  return readF32(rt.device, v);
}

export function randn(n: number, seed: number, scale = 1): Float32Array {
  const r = prng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(r(), 1e-12);
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
  }
  return out;
}

/** Every |a - e| ≤ atol + rtol·|e|; on failure names the first bad index and the worst error. */
export function expectClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: { atol: number; rtol: number },
  what: string,
): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  let worst = 0;
  let worstAt = -1;
  let firstBad = -1;
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    const bound = tol.atol + tol.rtol * Math.abs(expected[i]);
    if (!(err <= bound) && firstBad < 0) firstBad = i;
    if (!(err <= worst)) (worst = err), (worstAt = i);
  }
  if (firstBad >= 0) {
    expect.fail(
      `${what}: index ${firstBad} is ${actual[firstBad]}, expected ${expected[firstBad]} ` +
        `(atol ${tol.atol}, rtol ${tol.rtol}); worst |err| ${worst} at ${worstAt}`,
    );
  }
}

/** Relative L2 error ‖a − e‖ / ‖e‖. */
export function relL2(a: ArrayLike<number>, e: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < e.length; i++) (num += (a[i] - e[i]) ** 2), (den += e[i] ** 2);
  return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-30);
}

export { Recorder };
