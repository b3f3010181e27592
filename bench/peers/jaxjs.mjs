// jax-js peer (@jax-js/jax, WebGPU device) for the wgsl-train benchmarks.
// Plain ESM, no build step.
//
// jax-js does not officially list Node for WebGPU; it only needs
// `navigator.gpu`, which we provide from Dawn (the `webgpu` package) before
// calling jax-js `init('webgpu')`.
//
// Synchronisation (what stops each timer): jax-js arrays are lazy; the peer's
// own `blockUntilReady()` (Array method / `jax.blockUntilReady(tree)`) first
// dispatches every pending kernel of the array, then submits a zero-byte
// copy from the array's buffer and awaits `mapAsync` on that staging buffer,
// i.e. it resolves only after the GPU queue has executed everything that
// produces the array. No data is read back. For the MLP step we wait on every
// leaf of the returned state (params, Adam moments, count, loss) in parallel.
//
// The Adam update is written by hand (optax-style, bias correction computed on
// device from a step counter) because @jax-js/optax is not published on npm.

import {
  ensureNodeWebGPU, describeAdapter, describeAdapterInfo, randomFloats, randomLabels,
  mlpInitData, cpuMatmul, assertClose, ADAM,
} from './env.mjs';

/** jax-js on its WebGPU backend, with the adapter's description. */
export async function openJax() {
  const gpu = await ensureNodeWebGPU();
  const jax = await import('@jax-js/jax');
  const available = await jax.init('webgpu');
  if (!available.includes('webgpu')) throw new Error('jax-js: WebGPU backend unavailable (navigator.gpu adapter/device request failed)');
  jax.defaultDevice('webgpu');
  let adapter = 'unknown';
  try { adapter = describeAdapterInfo(jax.getWebGPUDevice().adapterInfo); } catch {}
  // jax-js requests the adapter with powerPreference 'high-performance'.
  if (adapter === 'unknown') adapter = await describeAdapter(gpu, { powerPreference: 'high-performance' });
  return { jax, adapter, impl: 'jax-js-webgpu' };
}

/** @param {'webgpu'} kind */
export async function init(kind = 'webgpu') {
  if (kind !== 'webgpu') throw new Error(`jax-js peer: unsupported kind ${kind} (expected 'webgpu')`);
  const { jax, adapter, impl } = await openJax();
  const { numpy: np, nn, tree, jit, valueAndGrad, blockUntilReady } = jax;
  const ownedFns = new Set();
  const ownedTrees = new Set();
  const fromF32 = (data, shape) => np.array(data).reshape(shape);

  const matmulFn = jit((a, b) => np.matmul(a, b));
  ownedFns.add(matmulFn);

  let matmulChecked = false;
  async function checkMatmul() {
    const M = 33, N = 17, K = 65;
    const a = randomFloats(M * K, 11), b = randomFloats(K * N, 12);
    const c = matmulFn(fromF32(a, [M, K]), fromF32(b, [K, N]));
    const got = await c.data();
    assertClose(got, cpuMatmul(a, b, M, N, K), `${impl} matmul`);
    matmulChecked = true;
  }

  async function matmul(M, N, K, { warmup = 1, iters = 5 } = {}) {
    if (!matmulChecked) await checkMatmul();
    const A = fromF32(randomFloats(M * K, 1), [M, K]);
    const B = fromF32(randomFloats(K * N, 2), [K, N]);
    const inputs = [A, B];
    ownedTrees.add(inputs);
    await blockUntilReady(inputs);
    const ms = [];
    try {
      for (let i = 0; i < warmup + iters; i++) {
        const t0 = performance.now();
        const C = matmulFn(A.ref, B.ref);
        await C.blockUntilReady();
        const t1 = performance.now();
        C.dispose();
        if (i >= warmup) ms.push(t1 - t0);
      }
    } finally {
      tree.dispose(inputs);
      ownedTrees.delete(inputs);
    }
    return { ms };
  }

  async function mlp({ batch = 128, sizes = [784, 256, 256, 10], steps = 10, warmup = 2 } = {}) {
    const classes = sizes[sizes.length - 1];
    const nLayers = sizes.length - 1;
    const { lr, beta1, beta2, eps } = ADAM;

    const params = {};
    mlpInitData(sizes).forEach((l, i) => {
      params[`w${i}`] = fromF32(l.w, l.shapeW);
      params[`b${i}`] = fromF32(l.b, l.shapeB);
    });
    const zeros = (p) => Object.fromEntries(Object.entries(p).map(([k, v]) => [k, np.zeros(v.shape)]));
    const x = fromF32(randomFloats(batch * sizes[0], 3, 0, 1), [batch, sizes[0]]);
    const y = np.array(randomLabels(batch, classes, 4), { dtype: np.int32 });
    // `state` is replaced every step (jit consumes its inputs); `holder` lets
    // dispose() find the live state.
    const holder = { state: { params, m: zeros(params), v: zeros(params), count: np.zeros([]) }, data: [x, y] };
    ownedTrees.add(holder);

    // Mean softmax cross-entropy on integer labels. Every argument is consumed
    // exactly once (jax-js ownership rules).
    const lossFn = (p, xb, yb) => {
      let h = xb;
      for (let i = 0; i < nLayers; i++) {
        h = np.matmul(h, p[`w${i}`]).add(p[`b${i}`]);
        if (i + 1 < nLayers) h = nn.relu(h);
      }
      return nn.logSoftmax(h).mul(nn.oneHot(yb, classes)).sum().mul(-1 / batch);
    };

    // One whole Adam training step, jitted: forward, backward, update.
    const step = jit((state, xb, yb) => {
      const [loss, g] = valueAndGrad(lossFn)(tree.ref(state.params), xb, yb);
      return { state: adamUpdate(np, state, g, { lr, beta1, beta2, eps }), loss };
    });
    ownedFns.add(step);

    const runStep = () => {
      const out = step(holder.state, x.ref, y.ref);
      holder.state = out.state;
      return out;
    };

    const ms = [];
    try {
      // Correctness: loss must decrease over a few steps on the fixed batch.
      // These steps also trace/compile the jitted step; they are not timed.
      const losses = [];
      for (let i = 0; i < 4; i++) {
        const { loss } = runStep();
        losses.push((await loss.data())[0]);
      }
      if (!losses.every(Number.isFinite) || !(losses[3] < losses[0])) {
        throw new Error(`${impl} mlp: loss did not decrease: ${losses.join(', ')}`);
      }
      await blockUntilReady(holder.state);
      for (let i = 0; i < warmup + steps; i++) {
        const t0 = performance.now();
        const out = runStep();
        await blockUntilReady(out);
        const t1 = performance.now();
        out.loss.dispose();
        if (i >= warmup) ms.push(t1 - t0);
      }
    } finally {
      tree.dispose(holder.state);
      tree.dispose(holder.data);
      ownedTrees.delete(holder);
      step.dispose();
      ownedFns.delete(step);
    }
    return { ms };
  }

  async function dispose() {
    for (const t of ownedTrees) {
      try { tree.dispose(t.state ? [t.state, t.data] : t); } catch {}
    }
    ownedTrees.clear();
    for (const f of ownedFns) { try { f.dispose(); } catch {} }
    ownedFns.clear();
  }

  return { impl, adapter, matmul, mlp, dispose };
}

/**
 * One Adam update of a parameter tree inside a jitted step (jax-js ownership: p, m, v, g and count are
 * consumed). Returns the next { params, m, v, count }.
 */
export function adamUpdate(np, { params: p, m, v, count }, g, { lr, beta1, beta2, eps }) {
  const t = count.add(1);
  // bias corrections: a = lr / (1 - beta1^t), c = 1 / sqrt(1 - beta2^t)
  const a = np.reciprocal(np.exp(t.ref.mul(Math.log(beta1))).mul(-1).add(1)).mul(lr);
  const c = np.reciprocal(np.sqrt(np.exp(t.ref.mul(Math.log(beta2))).mul(-1).add(1)));
  const p2 = {}, m2 = {}, v2 = {};
  for (const k of Object.keys(p)) {
    const gk = g[k];
    m2[k] = m[k].mul(beta1).add(gk.ref.mul(1 - beta1));
    v2[k] = v[k].mul(beta2).add(np.square(gk).mul(1 - beta2));
    const denom = np.sqrt(v2[k].ref).mul(c.ref).add(eps);
    p2[k] = p[k].sub(m2[k].ref.mul(a.ref).div(denom));
  }
  a.dispose(); c.dispose();
  return { params: p2, m: m2, v: v2, count: t };
}
