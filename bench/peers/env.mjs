// Shared helpers for the peer implementations: expose Dawn's WebGPU (the
// `webgpu` npm package) the way browsers do, and small utilities shared by
// the peers (seeded random data, CPU reference matmul, medians).

let gpuSingleton = null;

/**
 * Make `navigator.gpu` (and the GPU* enum globals such as GPUBufferUsage)
 * available in Node. Node 20 has no `navigator` global; Node >= 21 has one
 * without `gpu`. Idempotent. Returns the GPU object.
 */
export async function ensureNodeWebGPU() {
  if (gpuSingleton) return gpuSingleton;
  const existing = globalThis.navigator;
  if (existing && existing.gpu) {
    gpuSingleton = existing.gpu;
    return gpuSingleton;
  }
  const { create, globals } = await import('webgpu');
  Object.assign(globalThis, globals);
  const gpu = create([]);
  const os = await import('node:os');
  const nav = {
    gpu,
    // jax-js reads navigator.userAgent / hardwareConcurrency for heuristics.
    userAgent: existing?.userAgent ?? `Node.js/${process.versions.node}`,
    hardwareConcurrency: existing?.hardwareConcurrency ?? os.availableParallelism(),
    language: existing?.language ?? 'en-US',
  };
  Object.defineProperty(globalThis, 'navigator', { value: nav, configurable: true, writable: true });
  gpuSingleton = gpu;
  return gpu;
}

/** Short human-readable description of a GPUAdapterInfo. */
export function describeAdapterInfo(info) {
  if (!info) return 'unknown';
  const str = (v) => (typeof v === 'string' ? v.trim() : '');
  const head = [str(info.vendor), str(info.architecture)].filter(Boolean).join(' ');
  const tail = str(info.description) || str(info.device);
  const s = [head, tail].filter(Boolean).join(': ');
  return s || 'unknown';
}

/** Describe the adapter that `requestAdapter(opts)` picks on this GPU object. */
export async function describeAdapter(gpu, opts = { powerPreference: 'high-performance' }) {
  const adapter = await gpu.requestAdapter(opts);
  if (!adapter) return 'none';
  let info = adapter.info;
  if (!info && typeof adapter.requestAdapterInfo === 'function') info = await adapter.requestAdapterInfo();
  return describeAdapterInfo(info);
}

/** Deterministic PRNG (mulberry32), returns floats in [0,1). */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomFloats(n, seed, lo = -1, hi = 1) {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * r();
  return out;
}

export function randomLabels(n, classes, seed) {
  const r = rng(seed);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(r() * classes) % classes;
  return out;
}

/** Uniform(-1/sqrt(fanIn), 1/sqrt(fanIn)) init for an MLP, as flat arrays. */
export function mlpInitData(sizes, seed = 1234) {
  const layers = [];
  for (let l = 0; l + 1 < sizes.length; l++) {
    const fanIn = sizes[l];
    const fanOut = sizes[l + 1];
    const s = 1 / Math.sqrt(fanIn);
    layers.push({
      w: randomFloats(fanIn * fanOut, seed + 2 * l, -s, s),
      b: randomFloats(fanOut, seed + 2 * l + 1, -s, s),
      shapeW: [fanIn, fanOut],
      shapeB: [fanOut],
    });
  }
  return layers;
}

/** Reference C = A·B on the CPU (row-major, A [M,K], B [K,N]); float64 accumulation. */
export function cpuMatmul(a, b, M, N, K) {
  const c = new Float32Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[i * K + k] * b[k * N + j];
      c[i * N + j] = s;
    }
  }
  return c;
}

/** Throw unless |got - want| <= atol + rtol*|want| elementwise. */
export function assertClose(got, want, what, rtol = 1e-3, atol = 1e-3) {
  if (got.length !== want.length) throw new Error(`${what}: length ${got.length} != ${want.length}`);
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (!(d <= atol + rtol * Math.abs(want[i]))) {
      throw new Error(`${what}: mismatch at ${i}: got ${got[i]}, want ${want[i]}`);
    }
  }
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

export const ADAM = Object.freeze({ lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 });

/** The GPT bench model and its Adam settings (shared by the GPT peers). */
export const GPT_DEFAULTS = Object.freeze({ vocab: 256, nLayer: 4, nEmbd: 128, nHead: 4, T: 64, batch: 8, steps: 5, warmup: 2 });
export const GPT_ADAM = Object.freeze({ lr: 3e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8 });

/** Seeded N(0, std) samples (Box–Muller on mulberry32). */
export function randomNormal(n, seed, std) {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u1 = Math.max(r(), 1e-12), u2 = r();
    const m = std * Math.sqrt(-2 * Math.log(u1));
    out[i] = m * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = m * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

/** Seeded token ids in [0, vocab). */
export function randomTokens(n, vocab, seed) {
  const r = rng(seed);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(r() * vocab) % vocab;
  return out;
}

/** `--name=value` / `--flag` command-line arguments as an object (the peer check scripts). */
export function parseArgs(argv = process.argv.slice(2)) {
  return Object.fromEntries(argv.map((a) => {
    const m = /^--([^=]+)(?:=(.*))?$/.exec(a);
    if (!m) throw new Error(`bad argument ${a}`);
    return [m[1], m[2] ?? true];
  }));
}
