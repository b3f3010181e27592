// TensorFlow.js peer for the GPT training benchmark (tfjs-core 4.22 +
// tfjs-backend-webgpu / tfjs-backend-wasm). Plain ESM, no build step.
//
//   const { impl, adapter, gptStep, dispose } = await initGpt('webgpu' | 'wasm');
//   const { ms } = await gptStep({ vocab: 256, nLayer: 4, nEmbd: 128, nHead: 4,
//                                  T: 64, batch: 8, steps, warmup });
//
// `ms` holds the wall time of each timed step: ONE Adam training step
// (forward, backward, update; lr 3e-4, betas 0.9/0.999, eps 1e-8, no weight
// decay, so Adam == AdamW; no clipping) of a byte-level GPT-2-architecture model
// written with TF.js ops:
//   token + position embeddings (tf.gather), nLayer pre-LayerNorm blocks
//   (LayerNorm eps 1e-5 with gain/bias; causal multi-head self-attention with a
//   fused c_attn [C,3C] + bias, split heads, scores scaled by 1/sqrt(D), causal
//   mask as an additive -1e9 band, softmax, merge heads, c_proj; MLP c_fc [C,4C],
//   GELU (tanh approximation), c_proj; residual adds), final LayerNorm, tied
//   output head (logits = h · wteᵀ), mean softmax cross-entropy over all B·T
//   positions with integer targets (one-hot inside the step).
// Initialisation follows GPT-2: N(0, 0.02) weights (wpe N(0, 0.01), residual
// projections N(0, 0.02/sqrt(2·nLayer))), zero biases, unit LN gains. Data
// (token ids and targets in [0, vocab)) is random, seeded and fixed across
// steps.
//
// Before timing, gptStep checks on the fixed batch that the initial loss is
// within 0.5 of ln(vocab) and that the loss decreases over a few Adam steps
// (these untimed steps also compile every pipeline), and throws otherwise.
//
// Synchronisation (what stops each timer) is the one of tfjs.mjs:
//  - 'webgpu': after the step, flush tfjs-webgpu's pending command encoder with
//    the backend's own endComputePassEncoder()/submitQueue() and await
//    device.queue.onSubmittedWorkDone() (in-order queue: everything submitted so
//    far has finished). Nothing is read back inside the timed region.
//  - 'wasm': kernels run synchronously on the calling thread, so the step is
//    complete when minimize() returns.
//
// Quirk: tfjs-backend-wasm has no UnsortedSegmentSum kernel, which tf.gather's
// registered gradient needs. On 'wasm' the embedding lookups therefore use
// tf.gather forward with a tf.customGrad backward that does the scatter-add as
// a dense product onehot(ids)ᵀ · dy ([V,N]·[N,C]). 'webgpu' uses tf.gather's
// own gradient.

import { randomNormal, randomTokens, GPT_DEFAULTS, GPT_ADAM } from './env.mjs';

export { GPT_DEFAULTS, GPT_ADAM };
import { openTf } from './tfjs.mjs';

/** @param {'webgpu'|'wasm'} kind */
export async function initGpt(kind) {
  const { tf, adapter, impl, activate, sync } = await openTf(kind);
  const startTensors = tf.memory().numTensors;
  const owned = new Set(); // tensors / variables / optimizers to free in dispose()

  /**
   * Build the model, optimizer and fixed batch for a config. Returns the
   * pieces plus `free()`, which disposes every tensor it created.
   */
  function build(cfg) {
    const { vocab: V, nLayer: L, nEmbd: C, nHead: H, T, batch: B } = cfg;
    if (C % H !== 0) throw new Error(`nEmbd ${C} not divisible by nHead ${H}`);
    const D = C / H;
    const N = B * T;
    const made = [];
    const keep = (t) => { made.push(t); return t; };
    let seed = 1000;
    const param = (shape, std) => {
      const n = shape.reduce((a, b) => a * b, 1);
      const t = tf.tensor(std === 'ones' ? new Float32Array(n).fill(1) : std === 0 ? new Float32Array(n) : randomNormal(n, seed++, std), shape);
      const v = tf.variable(t);
      t.dispose();
      return keep(v);
    };
    const projStd = 0.02 / Math.sqrt(2 * L);
    const p = {
      wte: param([V, C], 0.02),
      wpe: param([T, C], 0.01),
      blocks: [],
      lnfG: param([C], 'ones'), lnfB: param([C], 0),
    };
    for (let l = 0; l < L; l++) {
      p.blocks.push({
        ln1G: param([C], 'ones'), ln1B: param([C], 0),
        attnW: param([C, 3 * C], 0.02), attnB: param([3 * C], 0),
        projW: param([C, C], projStd), projB: param([C], 0),
        ln2G: param([C], 'ones'), ln2B: param([C], 0),
        fcW: param([C, 4 * C], 0.02), fcB: param([4 * C], 0),
        fc2W: param([4 * C, C], projStd), fc2B: param([C], 0),
      });
    }
    const varList = made.slice();

    // Fixed batch: inputs and next-token-style targets, both random in [0, V).
    const ids = keep(tf.tensor1d(randomTokens(N, V, 7), 'int32'));
    const targets = keep(tf.tensor1d(randomTokens(N, V, 8), 'int32'));
    const pos = keep(tf.range(0, T, 1, 'int32'));
    const targetsOneHot = keep(tf.tidy(() => tf.cast(tf.oneHot(targets, V), 'float32')));
    // Additive causal mask [T,T]: 0 where key j <= query i, -1e9 above.
    const maskData = new Float32Array(T * T);
    for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) maskData[i * T + j] = -1e9;
    const mask = keep(tf.tensor2d(maskData, [T, T]));
    const scale = 1 / Math.sqrt(D);
    const geluK = Math.sqrt(2 / Math.PI);

    // Embedding lookup. webgpu: tf.gather and its registered gradient. wasm:
    // tf.gather forward, scatter-add as onehot(idx)ᵀ·dy backward (see header).
    let embed;
    if (kind === 'wasm') {
      const oneHotCache = new Map();
      const oneHotOf = (idx, rows) => {
        let oh = oneHotCache.get(idx);
        if (!oh) { oh = keep(tf.tidy(() => tf.cast(tf.oneHot(idx, rows), 'float32'))); oneHotCache.set(idx, oh); }
        return oh;
      };
      oneHotOf(ids, V); oneHotOf(pos, T);
      const fns = new Map();
      embed = (w, idx) => {
        let f = fns.get(idx);
        if (!f) {
          const oh = oneHotOf(idx, w.shape[0]);
          f = tf.customGrad((table) => ({
            value: tf.gather(table, idx),
            gradFunc: (dy) => tf.matMul(oh, dy, true, false),
          }));
          fns.set(idx, f);
        }
        return f(w);
      };
    } else {
      embed = (w, idx) => tf.gather(w, idx);
    }

    const layerNorm = (x, g, b) => {
      const mean = tf.mean(x, -1, true);
      const xc = tf.sub(x, mean);
      const v = tf.mean(tf.square(xc), -1, true);
      return tf.add(tf.mul(tf.mul(xc, tf.rsqrt(tf.add(v, 1e-5))), g), b);
    };
    const gelu = (x) => {
      const inner = tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), geluK);
      return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
    };
    const linear = (x, w, b) => tf.add(tf.matMul(x, w), b);
    const heads = (x) => tf.transpose(tf.reshape(x, [B, T, H, D]), [0, 2, 1, 3]); // [B,H,T,D]

    const attention = (x, blk) => {
      const qkv = linear(x, blk.attnW, blk.attnB); // [N,3C]
      const [q, k, v] = tf.split(qkv, 3, 1);
      const att = tf.softmax(tf.add(tf.mul(tf.matMul(heads(q), heads(k), false, true), scale), mask)); // [B,H,T,T]
      const y = tf.matMul(att, heads(v)); // [B,H,T,D]
      const merged = tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [N, C]);
      return linear(merged, blk.projW, blk.projB);
    };

    const lossFn = () => {
      const tok = embed(p.wte, ids); // [N,C]
      const posE = embed(p.wpe, pos); // [T,C]
      let h = tf.reshape(tf.add(tf.reshape(tok, [B, T, C]), posE), [N, C]);
      for (const blk of p.blocks) {
        h = tf.add(h, attention(layerNorm(h, blk.ln1G, blk.ln1B), blk));
        h = tf.add(h, linear(gelu(linear(layerNorm(h, blk.ln2G, blk.ln2B), blk.fcW, blk.fcB)), blk.fc2W, blk.fc2B));
      }
      const logits = tf.matMul(layerNorm(h, p.lnfG, p.lnfB), p.wte, false, true); // [N,V]
      return tf.losses.softmaxCrossEntropy(targetsOneHot, logits); // mean over N
    };

    const opt = tf.train.adam(GPT_ADAM.lr, GPT_ADAM.beta1, GPT_ADAM.beta2, GPT_ADAM.eps);
    const all = { made, opt };
    owned.add(all);
    const free = () => {
      for (const t of made) { try { t.dispose(); } catch {} }
      made.length = 0;
      try { opt.dispose(); } catch {}
      owned.delete(all);
    };
    return { lossFn, varList, opt, free };
  }

  async function gptStep(options = {}) {
    await activate();
    const cfg = { ...GPT_DEFAULTS, ...options };
    const before = tf.memory().numTensors;
    const { lossFn, varList, opt, free } = build(cfg);
    const ms = [];
    const losses = [];
    try {
      // Correctness on the fixed batch (also compiles every pipeline; untimed).
      for (let i = 0; i < 4; i++) {
        const l = opt.minimize(lossFn, true, varList);
        losses.push((await l.data())[0]);
        l.dispose();
      }
      const ln = Math.log(cfg.vocab);
      if (!losses.every(Number.isFinite) || Math.abs(losses[0] - ln) > 0.5) {
        throw new Error(`${impl} gpt: initial loss ${losses[0]} not within 0.5 of ln(${cfg.vocab}) = ${ln.toFixed(3)}`);
      }
      if (!(losses[3] < losses[0])) {
        throw new Error(`${impl} gpt: loss did not decrease: ${losses.join(', ')}`);
      }
      await sync();
      for (let i = 0; i < (cfg.warmup ?? 0) + cfg.steps; i++) {
        const t0 = performance.now();
        opt.minimize(lossFn, false, varList); // one Adam step, cost not returned
        await sync();
        const t1 = performance.now();
        if (i >= cfg.warmup) ms.push(t1 - t0);
      }
    } finally {
      free();
      await sync();
    }
    const after = tf.memory().numTensors;
    if (after !== before) throw new Error(`${impl} gpt: leaked ${after - before} tensors`);
    return { ms, losses }; // losses: the untimed check steps' losses (diagnostic)
  }

  async function dispose() {
    for (const o of [...owned]) {
      for (const t of o.made) { try { t.dispose(); } catch {} }
      try { o.opt.dispose(); } catch {}
    }
    owned.clear();
    await sync();
    const now = tf.memory().numTensors;
    if (now !== startTensors) throw new Error(`${impl} gpt: ${now - startTensors} tensors still alive after dispose()`);
  }

  return { impl, adapter, gptStep, dispose };
}
