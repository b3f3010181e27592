// TensorFlow.js peer (tfjs-core 4.22 + tfjs-backend-webgpu / tfjs-backend-wasm)
// for the wgsl-train benchmarks. Plain ESM, no build step.
//
// Synchronisation (what stops each timer):
//  - 'webgpu': tfjs-webgpu records dispatches into a pending GPUCommandEncoder
//    and only submits every WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE dispatches or on a
//    read. After the timed op we flush that encoder with the backend's own
//    `submitQueue()` and then `await device.queue.onSubmittedWorkDone()`, which
//    resolves only once the GPU has finished everything submitted so far (the
//    queue is in-order). No data is read back, so no readback cost is timed.
//  - 'wasm': the wasm backend executes every kernel synchronously in the
//    calling thread (XNNPACK/threadpool joins before the kernel returns), so the
//    result is complete when the op returns; no extra sync is needed.

import { createRequire, register } from 'node:module';
import path from 'node:path';
import {
  ensureNodeWebGPU, describeAdapter, describeAdapterInfo, randomFloats, randomLabels,
  mlpInitData, cpuMatmul, assertClose, ADAM,
} from './env.mjs';

const require = createRequire(import.meta.url);
let tfPromise = null;
let wasmPathsSet = false;

export async function loadTf(kind) {
  // navigator.gpu must exist before tfjs-backend-webgpu is evaluated: it only
  // registers the 'webgpu' backend if navigator.gpu is present at import time.
  if (kind === 'webgpu') await ensureNodeWebGPU();
  if (!tfPromise) {
    tfPromise = (async () => {
      const tf = await import('@tensorflow/tfjs-core');
      // tfjs-core's Node bundle has no gradient definitions (the union package
      // @tensorflow/tfjs inlines them); load tfjs-core's own per-file ESM
      // register_all_gradients through a resolve hook (see tfjs-esm-hooks.mjs).
      register('./tfjs-esm-hooks.mjs', import.meta.url);
      await import('@tensorflow/tfjs-core/dist/register_all_gradients.js');
      if (!tf.getGradient('RealDiv')) throw new Error('tfjs: gradients failed to register');
      return tf;
    })();
  }
  const tf = await tfPromise;
  if (kind === 'webgpu') {
    await import('@tensorflow/tfjs-backend-webgpu');
  } else if (kind === 'wasm') {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    if (!wasmPathsSet) {
      // Directory holding tfjs-backend-wasm*.wasm (the package's dist folder).
      const distDir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
      wasm.setWasmPaths(distDir + path.sep);
      wasmPathsSet = true;
    }
  } else {
    throw new Error(`tfjs peer: unknown kind ${kind} (expected 'webgpu' | 'wasm')`);
  }
  return tf;
}

/**
 * TF.js on `kind` (loaded, backend set and ready) with what every TF.js peer needs: the adapter's
 * description, its impl name, activate() (switch back to this backend) and sync() (wait for the GPU).
 * @param {'webgpu'|'wasm'} kind
 */
export async function openTf(kind) {
  const tf = await loadTf(kind);
  const ok = await tf.setBackend(kind);
  if (!ok || tf.getBackend() !== kind) throw new Error(`tfjs: could not initialise backend '${kind}'`);
  await tf.ready();
  const backend = tf.backend();
  let adapter;
  if (kind === 'webgpu') {
    const gpu = await ensureNodeWebGPU();
    // tfjs keeps only vendor/architecture; ask the same GPU object with the
    // same options tfjs used for the full description.
    adapter = await describeAdapter(gpu, { powerPreference: 'high-performance' });
    if (adapter === 'unknown') adapter = describeAdapterInfo(backend.adapterInfo);
  } else {
    let simd = false, threads = false;
    try { simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'); } catch {}
    try { threads = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'); } catch {}
    adapter = `cpu wasm${simd ? ' simd' : ''}${threads ? ' threaded' : ''}`;
  }
  const impl = kind === 'webgpu' ? 'tfjs-webgpu' : 'tfjs-wasm';
  async function activate() {
    if (tf.getBackend() !== kind) await tf.setBackend(kind);
  }
  /** Wait until all work issued so far has finished (see header comment). */
  async function sync() {
    if (kind !== 'webgpu') return;
    const b = tf.backend();
    if (b.commandEncoder) {
      b.endComputePassEncoder();
      b.submitQueue();
    }
    await b.device.queue.onSubmittedWorkDone();
  }
  return { tf, backend, adapter, impl, activate, sync };
}

/** @param {'webgpu'|'wasm'} kind */
export async function init(kind) {
  const { tf, adapter, impl, activate, sync } = await openTf(kind);
  const owned = new Set(); // tensors/variables/optimizers we must free in dispose()

  let matmulChecked = false;
  async function checkMatmul() {
    const M = 33, N = 17, K = 65; // odd sizes exercise edge handling
    const a = randomFloats(M * K, 11), b = randomFloats(K * N, 12);
    const c = tf.tidy(() => tf.matMul(tf.tensor2d(a, [M, K]), tf.tensor2d(b, [K, N])));
    const got = await c.data();
    c.dispose();
    assertClose(got, cpuMatmul(a, b, M, N, K), `${impl} matmul`);
    matmulChecked = true;
  }

  async function matmul(M, N, K, { warmup = 1, iters = 5 } = {}) {
    await activate();
    if (!matmulChecked) await checkMatmul();
    const A = tf.tensor2d(randomFloats(M * K, 1), [M, K]);
    const B = tf.tensor2d(randomFloats(K * N, 2), [K, N]);
    owned.add(A); owned.add(B);
    await sync();
    const ms = [];
    try {
      for (let i = 0; i < warmup + iters; i++) {
        const t0 = performance.now();
        const C = tf.matMul(A, B);
        await sync();
        const t1 = performance.now();
        C.dispose();
        if (i >= warmup) ms.push(t1 - t0);
      }
    } finally {
      A.dispose(); B.dispose(); owned.delete(A); owned.delete(B);
    }
    return { ms };
  }

  async function mlp({ batch = 128, sizes = [784, 256, 256, 10], steps = 10, warmup = 2 } = {}) {
    await activate();
    const classes = sizes[sizes.length - 1];
    const toVar = (t) => { const v = tf.variable(t); t.dispose(); return v; };
    const layers = mlpInitData(sizes).map((l) => ({
      w: toVar(tf.tensor2d(l.w, l.shapeW)),
      b: toVar(tf.tensor1d(l.b)),
    }));
    const varList = layers.flatMap((l) => [l.w, l.b]);
    const x = tf.tensor2d(randomFloats(batch * sizes[0], 3, 0, 1), [batch, sizes[0]]);
    const y = tf.tensor1d(randomLabels(batch, classes, 4), 'int32');
    const opt = tf.train.adam(ADAM.lr, ADAM.beta1, ADAM.beta2, ADAM.eps);
    const disposables = [...varList, x, y];
    disposables.forEach((t) => owned.add(t));
    owned.add(opt);

    // Mean softmax cross-entropy on integer labels (one-hot inside the step).
    const lossFn = () => {
      let h = x;
      layers.forEach((l, i) => {
        h = tf.add(tf.matMul(h, l.w), l.b);
        if (i + 1 < layers.length) h = tf.relu(h);
      });
      const onehot = tf.cast(tf.oneHot(y, classes), 'float32');
      return tf.losses.softmaxCrossEntropy(onehot, h); // SUM_BY_NONZERO_WEIGHTS = mean
    };

    const ms = [];
    try {
      // Correctness: loss must decrease over a few steps on the fixed batch.
      // These steps also compile the pipelines; they are not timed.
      const losses = [];
      for (let i = 0; i < 4; i++) {
        const l = opt.minimize(lossFn, true, varList);
        losses.push((await l.data())[0]);
        l.dispose();
      }
      if (!losses.every(Number.isFinite) || !(losses[3] < losses[0])) {
        throw new Error(`${impl} mlp: loss did not decrease: ${losses.join(', ')}`);
      }
      await sync();
      for (let i = 0; i < warmup + steps; i++) {
        const t0 = performance.now();
        opt.minimize(lossFn, false, varList); // one Adam step, cost not returned
        await sync();
        const t1 = performance.now();
        if (i >= warmup) ms.push(t1 - t0);
      }
    } finally {
      disposables.forEach((t) => { t.dispose(); owned.delete(t); });
      opt.dispose(); owned.delete(opt);
    }
    return { ms };
  }

  async function dispose() {
    for (const t of owned) { try { t.dispose(); } catch {} }
    owned.clear();
    await sync();
  }

  return { impl, adapter, matmul, mlp, dispose };
}
