// activation.wgsl (forward, backward assign/accumulate) against src/reference/ops.ts, saturation at large
// |x| (no NaN, no Inf, the right limit), and the 2-D grid fold of grid1d().
import { describe, it, expect } from 'vitest';
import { testRuntime, upload, zeros, runRecorded, read, randn, expectClose, Recorder } from '../helpers.ts';
import { recordActivationForward, recordActivationBackward, savesInput, ACT_CODE } from '../../src/ops/activation.ts';
import { grid1d } from '../../src/gpu/program.ts';
import * as ref from '../../src/reference/ops.ts';
import type { Runtime } from '../../src/gpu/device.ts';

const rt = await testRuntime();
const ACTS = ['relu', 'gelu', 'silu', 'tanh', 'sigmoid'] as const;
type Act = (typeof ACTS)[number];

// f32 transcendentals (exp, tanh) are a few ulp on any conforming driver: rtol 1e-5 is ~100 ulp of
// headroom. atol 1e-6 covers values near 0, where the f32 result of a formula like 0.5·x·(1 + tanh(z))
// carries the ~6e-8 absolute error of the tanh term times |x| ≤ ~10 (the data are randn·3).
const TOL = { atol: 1e-6, rtol: 1e-5 };

/** Inputs: randn·3 (well into every saturation region), with exact zeros sprinkled in. */
function inputs(n: number, seed: number): Float32Array {
  const x = randn(n, seed, 3);
  for (let i = 5; i < n; i += 97) x[i] = 0;
  return x;
}

/** Large magnitudes (and a few ordinary values) where a naive exp/tanh overflows to Inf or NaN. */
const EXTREMES = new Float32Array([
  -100, -80, -30, -20, -10, -1e-3, -0, 0, 1e-3, 0.5, 10, 20, 30, 80, 100, -1e4, 1e4, -88.5, 88.5,
]);

const f32 = (v: number) => Math.fround(v);

async function forward(rt: Runtime, act: Act, x: Float32Array): Promise<Float32Array> {
  const rec = new Recorder(rt);
  const y = zeros(rt, x.length);
  await recordActivationForward(rec, `${act} forward`, act, upload(rt, x), y, x.length);
  await runRecorded(rt, rec);
  return read(rt, y);
}

/** dx (=|+=) dy·f'(x), with `saved` = f32 forward output (relu/tanh/sigmoid) or the input (gelu/silu). */
async function backward(rt: Runtime, act: Act, x: Float32Array, dy: Float32Array, dx0?: Float32Array): Promise<Float32Array> {
  const saved = savesInput(act) ? x : ref.mapArray(x, (v) => f32(ref.actForward(act, v)));
  const rec = new Recorder(rt);
  const dx = dx0 ? upload(rt, dx0) : zeros(rt, x.length);
  await recordActivationBackward(rec, `${act} backward`, act, upload(rt, dy), upload(rt, saved), dx, x.length, !!dx0);
  await runRecorded(rt, rec);
  return read(rt, dx);
}

function expectFinite(a: ArrayLike<number>, what: string) {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) expect.fail(`${what}: index ${i} is ${a[i]}`);
}

describe('grid1d (no GPU)', () => {
  it('one row while the groups fit in x', () => {
    expect(grid1d(1)).toEqual({ workgroups: [1, 1, 1], stride: 256 });
    expect(grid1d(0)).toEqual({ workgroups: [1, 1, 1], stride: 256 });
    expect(grid1d(70000)).toEqual({ workgroups: [274, 1, 1], stride: 274 * 256 });
    expect(grid1d(65535 * 256)).toEqual({ workgroups: [65535, 1, 1], stride: 65535 * 256 });
  });
  it('folds into y past maxPerDim, covering every item exactly once', () => {
    expect(grid1d(65535 * 256 + 1)).toEqual({ workgroups: [65535, 2, 1], stride: 65535 * 256 });
    for (const [n, size, max] of [[1000, 8, 10], [81, 8, 10], [80, 8, 10], [79, 8, 10], [70000, 256, 4], [12345, 32, 7]]) {
      const g = grid1d(n, size, max);
      const [x, y, z] = g.workgroups;
      expect(x).toBeLessThanOrEqual(max);
      expect(z).toBe(1);
      expect(g.stride).toBe(x * size);
      // The shader's index i = gid.y · stride + gid.x, guarded by i < n: every i < n must occur once.
      const hits = new Uint8Array(n);
      for (let gy = 0; gy < y; gy++) for (let gx = 0; gx < x * size; gx++) {
        const i = gy * g.stride + gx;
        if (i < n) hits[i]++;
      }
      expect(hits.every((h) => h === 1), `grid1d(${n}, ${size}, ${max})`).toBe(true);
      // No whole row of workgroups is wasted.
      expect((y - 1) * g.stride).toBeLessThan(n);
    }
  });
});

describe.skipIf(!rt)('activation kernel', () => {
  for (const act of ACTS) {
    for (const n of [1, 7, 1000, 70000]) {
      it(`${act} forward, n = ${n}`, async () => {
        const x = inputs(n, n + ACT_CODE[act]);
        const got = await forward(rt!, act, x);
        expectClose(got, ref.mapArray(x, (v) => ref.actForward(act, v)), TOL, `${act} forward n=${n}`);
      });
    }
  }

  for (const act of ACTS) {
    for (const accumulate of [false, true]) {
      for (const n of [7, 70000]) {
        it(`${act} backward (${savesInput(act) ? 'saved input' : 'saved output'}, ${accumulate ? 'accumulate' : 'assign'}), n = ${n}`, async () => {
          const x = inputs(n, 3 * n + ACT_CODE[act]);
          const dy = randn(n, 11 * n + 1);
          const dx0 = accumulate ? randn(n, 17) : undefined;
          const got = await backward(rt!, act, x, dy, dx0);
          const want = ref.mapArray(x, (v, i) => dy[i] * ref.actDerivative(act, v) + (dx0 ? dx0[i] : 0));
          expectClose(got, want, TOL, `${act} backward n=${n} accumulate=${accumulate}`);
        });
      }
    }
  }

  for (const act of ACTS) {
    it(`${act} at large |x| (±30, ±100, ±1e4): finite and at the right limit`, async () => {
      const x = EXTREMES;
      const y = await forward(rt!, act, x);
      expectFinite(y, `${act} forward`);
      expectClose(y, ref.mapArray(x, (v) => ref.actForward(act, v)), TOL, `${act} forward at large |x|`);
      const dy = new Float32Array(x.length).fill(1);
      const dx = await backward(rt!, act, x, dy);
      expectFinite(dx, `${act} backward`);
      expectClose(dx, ref.mapArray(x, (v) => ref.actDerivative(act, v)), TOL, `${act} backward at large |x|`);
    });
  }

  it('the shader folds into a 2-D grid: forward and backward with y > 1 (small maxPerDim)', async () => {
    // The 65535-workgroup fold needs > 16.7M elements with the real limit, too much for a software
    // adapter; the same index arithmetic runs with a grid folded at 4 workgroups per row.
    const n = 70001;
    const g = grid1d(n, 256, 4);
    expect(g.workgroups[1]).toBeGreaterThan(1);
    const x = inputs(n, 5);
    const dy = randn(n, 6);
    const rec = new Recorder(rt!);
    const y = zeros(rt!, n);
    // Sentinel past the end: threads with i ≥ n must not write.
    const dxData = new Float32Array(n + 300).fill(0);
    dxData.fill(42, n);
    const dx = upload(rt!, dxData);
    const common = { shader: 'activation', bindings: ['read', 'read', 'write'] as const, workgroups: g.workgroups, cost: { flops: 0, bytes: 0 } };
    const uniform: ReadonlyArray<['u32', number]> = [['u32', n], ['u32', g.stride]];
    await rec.dispatch({ ...common, label: 'gelu fwd folded', entry: 'forward', defines: { ACT: ACT_CODE.gelu, ACCUMULATE: false, IN_T: 'f32', SAVED_T: 'f32', OUT_T: 'f32', F16: false }, uniform, resources: [upload(rt!, x), rec.dummy('read'), y] });
    await rec.dispatch({ ...common, label: 'gelu bwd folded', entry: 'backward', defines: { ACT: ACT_CODE.gelu, ACCUMULATE: false, IN_T: 'f32', SAVED_T: 'f32', OUT_T: 'f32', F16: false }, uniform, resources: [upload(rt!, dy), upload(rt!, x), dx] });
    await runRecorded(rt!, rec);
    expectClose(await read(rt!, y), ref.mapArray(x, (v) => ref.actForward('gelu', v)), TOL, 'folded forward');
    const got = await read(rt!, dx);
    expectClose(got.subarray(0, n), ref.mapArray(x, (v, i) => dy[i] * ref.actDerivative('gelu', v)), TOL, 'folded backward');
    expect([...got.subarray(n)].every((v) => v === 42), 'elements past n untouched').toBe(true);
  });
});
