// The kernels tab's matmul benchmark: C = A·B on square sizes with each of the engine's matmul kernels
// ('tiled', 'subgroup' and 'registers', forced through recordMatmul's `kernel` option), checked against a CPU product on
// sizes ≤ 256, then timed until at least `minMs` of GPU work and 3 runs (median of the runs).
// The same protocol as bench/lab/matmul.mjs: record once, then encode + submit + onSubmittedWorkDone.
import { createRuntime, adapterName, Recorder, encodeCommands, recordMatmul, createStorage, writeArray, readF32, type Runtime } from '../src/index.ts';
import type { BenchRow, FromBench, ToBench } from './protocol.ts';

const post = (m: FromBench) => (self as unknown as Worker).postMessage(m);
let rtPromise: Promise<Runtime> | null = null;

self.onmessage = (ev: MessageEvent<ToBench>) => {
  run(ev.data).catch((e: unknown) => {
    const err = e instanceof Error ? e : new Error(String(e));
    post({ type: 'error', name: err.name, message: err.message });
  });
};

function randomArray(n: number, seed: number): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a * 1664525 + 1013904223) >>> 0;
    out[i] = a / 2 ** 32 - 0.5;
  }
  return out;
}

function cpuMatmul(A: Float32Array, B: Float32Array, n: number): Float32Array {
  const C = new Float32Array(n * n);
  for (let i = 0; i < n; i++)
    for (let k = 0; k < n; k++) {
      const a = A[i * n + k];
      for (let j = 0; j < n; j++) C[i * n + j] += a * B[k * n + j];
    }
  return C;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function run(m: ToBench) {
  rtPromise ??= createRuntime();
  const rt = await rtPromise;
  post({ type: 'adapter', name: adapterName(rt.adapterInfo) });
  const device = rt.device;
  for (const n of m.sizes) {
    const view = (label: string) => ({ buffer: createStorage(device, n * n * 4, label), offset: 0, size: n * n * 4 });
    const A = view('A'), B = view('B'), C = view('C');
    const a = randomArray(n * n, 1), b = randomArray(n * n, 2);
    writeArray(device, A.buffer, 0, a);
    writeArray(device, B.buffer, 0, b);
    const want = n <= 256 ? cpuMatmul(a, b, n) : null;
    try {
      for (const kernel of m.kernels) {
        const impl = `wgsl-train ${kernel}`;
        if (kernel === 'subgroup' && !rt.features.has('subgroups')) {
          post({ type: 'row', row: { impl, size: n, ms_median: NaN, ms_min: NaN, iters: 0, gflops: NaN, max_error: null, note: 'needs the subgroups feature, which this adapter does not offer' } });
          continue;
        }
        const rec = new Recorder(rt);
        device.pushErrorScope('validation');
        try {
          await recordMatmul(rec, { label: `matmul ${kernel} ${n}`, A, B, C, M: n, N: n, K: n, kernel });
        } catch (e) {
          // A kernel this adapter cannot run (e.g. 'subgroup' where subgroups are narrower than it needs).
          await device.popErrorScope();
          post({ type: 'row', row: { impl, size: n, ms_median: NaN, ms_min: NaN, iters: 0, gflops: NaN, max_error: null, note: `not run: ${(e as Error).message}` } });
          continue;
        }
        const err = await device.popErrorScope();
        if (err) throw new Error(`${impl}: ${err.message}`);
        const once = async () => {
          const enc = device.createCommandEncoder();
          encodeCommands(enc, rec.commands);
          device.queue.submit([enc.finish()]);
          await device.queue.onSubmittedWorkDone();
        };
        await once(); // warm-up (and the result we check)
        let maxError: number | null = null;
        if (want) {
          const got = await readF32(device, C);
          maxError = 0;
          for (let i = 0; i < want.length; i++) maxError = Math.max(maxError, Math.abs(got[i] - want[i]) || (got[i] === want[i] ? 0 : Infinity));
        }
        const ms: number[] = [];
        const t0 = performance.now();
        while (ms.length < 3 || (performance.now() - t0 < m.minMs && ms.length < 50)) {
          const t = performance.now();
          await once();
          ms.push(performance.now() - t);
        }
        for (const buf of rec.owned) buf.destroy();
        const med = median(ms);
        const row: BenchRow = {
          impl,
          size: n,
          ms_median: +med.toPrecision(4),
          ms_min: +Math.min(...ms).toPrecision(4),
          iters: ms.length,
          gflops: +((2 * n ** 3) / (med * 1e6)).toPrecision(4),
          max_error: maxError === null ? null : +maxError.toPrecision(3),
        };
        if (maxError !== null && !(maxError <= 1e-4 * Math.sqrt(n) + 1e-6)) row.note = `WRONG: max |error| ${maxError} against the CPU product`;
        post({ type: 'row', row });
      }
    } finally {
      A.buffer.destroy();
      B.buffer.destroy();
      C.buffer.destroy();
    }
  }
  post({ type: 'done' });
}
