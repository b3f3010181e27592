// jax-js peer (@jax-js/jax, WebGPU device) for the GPT training benchmark.
// Plain ESM, no build step. Same export shape as tfjs-gpt.mjs:
//
//   const { impl, adapter, gptStep, dispose } = await initGpt('webgpu');
//   const { ms } = await gptStep({ vocab: 256, nLayer: 4, nEmbd: 128, nHead: 4,
//                                  T: 64, batch: 8, steps, warmup });
//
// The model is the one of tfjs-gpt.mjs (byte-level GPT-2 architecture: token +
// position embeddings, pre-LayerNorm blocks with eps 1e-5, fused
// c_attn [C,3C] + bias, split heads, scaled scores, additive -1e9 causal band,
// softmax, merge, c_proj; MLP c_fc [C,4C], GELU tanh approximation, c_proj;
// residuals; final LayerNorm; tied head logits = h·wteᵀ; mean softmax
// cross-entropy over B·T integer targets), with the same seeded init and data.
// The whole training step (forward, backward, Adam update with lr 3e-4, betas
// 0.9/0.999, eps 1e-8, no weight decay, no clipping) is one jax-js `jit`. The
// Adam update is written by hand, as in jaxjs.mjs (optax-style bias correction
// from an on-device step counter).
//
// Synchronisation: jax-js arrays are lazy; `jax.blockUntilReady(tree)` on the
// step's whole output (new params, moments, count, loss) dispatches the pending
// kernels and resolves once the GPU has executed them (see jaxjs.mjs). Nothing
// is read back inside the timed region.
//
// Quirk: the embedding lookups are one-hot products (onehot(ids)·wte, [N,V]·[V,C])
// rather than np.take: np.take's gradient is a `scatter` routine, and jax-js
// 0.1.25's jit refuses it ("jit: routine primitive scatter input is not imm")
// when its input is a fused expression, which it always is in this step.
//
// Before timing, gptStep checks on the fixed batch that the initial loss is
// within 0.5 of ln(vocab) and that the loss decreases over a few steps (these
// untimed steps also trace and compile the jitted step), and throws otherwise.

import { randomNormal, randomTokens, GPT_DEFAULTS, GPT_ADAM } from './env.mjs';
import { adamUpdate, openJax } from './jaxjs.mjs';

export { GPT_DEFAULTS, GPT_ADAM };



/** @param {'webgpu'} kind */
export async function initGpt(kind = 'webgpu') {
  if (kind !== 'webgpu') throw new Error(`jax-js gpt peer: unsupported kind ${kind} (expected 'webgpu')`);
  const { jax, adapter, impl } = await openJax();
  const { numpy: np, nn, tree, jit, valueAndGrad, blockUntilReady } = jax;
  const live = new Set(); // { holder, step } of runs in progress, for dispose()

  function build(cfg) {
    const { vocab: V, nLayer: L, nEmbd: C, nHead: H, T, batch: B } = cfg;
    if (C % H !== 0) throw new Error(`nEmbd ${C} not divisible by nHead ${H}`);
    const D = C / H;
    const N = B * T;
    const { lr, beta1, beta2, eps } = GPT_ADAM;

    // Flat parameter dict; same creation order and seeds as tfjs-gpt.mjs.
    const params = {};
    let seed = 1000;
    const param = (name, shape, std) => {
      const n = shape.reduce((a, b) => a * b, 1);
      const data = std === 'ones' ? new Float32Array(n).fill(1) : std === 0 ? new Float32Array(n) : randomNormal(n, seed++, std);
      params[name] = np.array(data).reshape(shape);
    };
    const projStd = 0.02 / Math.sqrt(2 * L);
    param('wte', [V, C], 0.02);
    param('wpe', [T, C], 0.01);
    for (let l = 0; l < L; l++) {
      param(`h${l}.ln1G`, [C], 'ones'); param(`h${l}.ln1B`, [C], 0);
      param(`h${l}.attnW`, [C, 3 * C], 0.02); param(`h${l}.attnB`, [3 * C], 0);
      param(`h${l}.projW`, [C, C], projStd); param(`h${l}.projB`, [C], 0);
      param(`h${l}.ln2G`, [C], 'ones'); param(`h${l}.ln2B`, [C], 0);
      param(`h${l}.fcW`, [C, 4 * C], 0.02); param(`h${l}.fcB`, [4 * C], 0);
      param(`h${l}.fc2W`, [4 * C, C], projStd); param(`h${l}.fc2B`, [C], 0);
    }
    param('lnfG', [C], 'ones'); param('lnfB', [C], 0);

    const zeros = (p) => Object.fromEntries(Object.entries(p).map(([k, v]) => [k, np.zeros(v.shape)]));
    const ids = np.array(randomTokens(N, V, 7), { dtype: np.int32 });
    const targets = np.array(randomTokens(N, V, 8), { dtype: np.int32 });
    const pos = np.arange(0, T, 1, { dtype: np.int32 });
    const holder = { state: { params, m: zeros(params), v: zeros(params), count: np.zeros([]) }, data: [ids, targets, pos] };

    const scale = 1 / Math.sqrt(D);
    // jax-js ownership: every use of an array consumes one reference, so an
    // array used k times needs k-1 `.ref`s.
    const layerNorm = (x, g, b) => {
      const mu = x.ref.mean(-1, { keepdims: true });
      const xc = x.sub(mu);
      const v = np.square(xc.ref).mean(-1, { keepdims: true });
      return xc.mul(np.reciprocal(np.sqrt(v.add(1e-5)))).mul(g).add(b);
    };
    const linear = (x, w, b) => np.matmul(x, w).add(b);
    const heads = (x) => x.reshape([B, T, H, D]).transpose([0, 2, 1, 3]); // [B,H,T,D]

    const lossFn = (p, idsB, targetsB, posB) => {
      // Additive causal mask [T,T]: 0 on/below the diagonal, -1e9 above.
      const mask = np.tri(T).sub(1).mul(1e9);
      // Embedding lookups as one-hot products (see header: np.take's gradient
      // is a scatter that jax-js 0.1.25 cannot compile inside jit).
      const tok = np.matmul(nn.oneHot(idsB, V), p.wte.ref); // [N,C]
      const posE = np.matmul(nn.oneHot(posB, T), p.wpe); // [T,C]
      let h = tok.reshape([B, T, C]).add(posE).reshape([N, C]);
      for (let l = 0; l < L; l++) {
        const q_ = (k) => p[`h${l}.${k}`];
        // attention
        const qkv = linear(layerNorm(h.ref, q_('ln1G'), q_('ln1B')), q_('attnW'), q_('attnB')); // [N,3C]
        const [q, k, v] = np.split(qkv, 3, 1);
        const scores = np.matmul(heads(q), heads(k).transpose([0, 1, 3, 2])).mul(scale).add(mask.ref);
        const y = np.matmul(nn.softmax(scores, -1), heads(v)).transpose([0, 2, 1, 3]).reshape([N, C]);
        h = h.add(linear(y, q_('projW'), q_('projB')));
        // MLP
        const f = nn.gelu(linear(layerNorm(h.ref, q_('ln2G'), q_('ln2B')), q_('fcW'), q_('fcB')), { approximate: true });
        h = h.add(linear(f, q_('fc2W'), q_('fc2B')));
      }
      mask.dispose();
      const logits = np.matmul(layerNorm(h, p.lnfG, p.lnfB), p.wte.transpose()); // [N,V]
      return nn.logSoftmax(logits, -1).mul(nn.oneHot(targetsB, V)).sum().mul(-1 / N);
    };

    const step = jit((state, idsB, targetsB, posB) => {
      const [loss, g] = valueAndGrad(lossFn)(tree.ref(state.params), idsB, targetsB, posB);
      return { state: adamUpdate(np, state, g, { lr, beta1, beta2, eps }), loss };
    });

    const run = { holder, step };
    live.add(run);
    const runStep = () => {
      const out = step(holder.state, ids.ref, targets.ref, pos.ref);
      holder.state = out.state;
      return out;
    };
    const free = () => {
      try { tree.dispose(holder.state); } catch {}
      try { tree.dispose(holder.data); } catch {}
      try { step.dispose(); } catch {}
      live.delete(run);
    };
    return { runStep, holder, free };
  }

  async function gptStep(options = {}) {
    const cfg = { ...GPT_DEFAULTS, ...options };
    const { runStep, holder, free } = build(cfg);
    const ms = [];
    const losses = [];
    try {
      // Correctness on the fixed batch (also traces/compiles; untimed).
      for (let i = 0; i < 4; i++) {
        const { loss } = runStep();
        losses.push((await loss.data())[0]);
      }
      const ln = Math.log(cfg.vocab);
      if (!losses.every(Number.isFinite) || Math.abs(losses[0] - ln) > 0.5) {
        throw new Error(`${impl} gpt: initial loss ${losses[0]} not within 0.5 of ln(${cfg.vocab}) = ${ln.toFixed(3)}`);
      }
      if (!(losses[3] < losses[0])) {
        throw new Error(`${impl} gpt: loss did not decrease: ${losses.join(', ')}`);
      }
      await blockUntilReady(holder.state);
      for (let i = 0; i < (cfg.warmup ?? 0) + cfg.steps; i++) {
        const t0 = performance.now();
        const out = runStep();
        await blockUntilReady(out);
        const t1 = performance.now();
        out.loss.dispose();
        if (i >= cfg.warmup) ms.push(t1 - t0);
      }
    } finally {
      free();
    }
    return { ms, losses }; // losses: the untimed check steps' losses (diagnostic)
  }

  async function dispose() {
    for (const run of [...live]) {
      try { tree.dispose(run.holder.state); } catch {}
      try { tree.dispose(run.holder.data); } catch {}
      try { run.step.dispose(); } catch {}
    }
    live.clear();
  }

  return { impl, adapter, gptStep, dispose };
}
