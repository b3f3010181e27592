#!/usr/bin/env node
// Smoke check for the GPT-training peers: runs each peer (TF.js WebGPU, TF.js
// Wasm, jax-js WebGPU) in this Node process and prints one JSON line per peer
// with the median step time and tokens/s (= batch·T per second).
//
//   node bench/peers/check-gpt.mjs          small config: nLayer 1, nEmbd 32,
//                                           nHead 4, T 16, batch 2 (warmup 1, steps 3)
//   node bench/peers/check-gpt.mjs --full   the benchmark config: nLayer 4, nEmbd 128,
//                                           nHead 4, T 64, batch 8 (warmup 2, steps 5)
//   --peers=tfjs-webgpu,tfjs-wasm,jax-js-webgpu   select peers
//   --nLayer=L --nEmbd=C --nHead=H --T=T --batch=B --steps=S --warmup=W   override
//
// Exit code 1 if any peer failed (its line then carries "error").

import { median, parseArgs, GPT_DEFAULTS } from './env.mjs';
import { GPT_PEERS as PEERS } from './index.mjs';

const args = parseArgs();
const full = !!args.full;
const base = full
  ? { ...GPT_DEFAULTS }
  : { vocab: 256, nLayer: 1, nEmbd: 32, nHead: 4, T: 16, batch: 2, warmup: 1, steps: 3 };
const cfg = { ...base };
for (const k of Object.keys(base)) if (args[k] !== undefined) cfg[k] = Number(args[k]);

const selected = args.peers ? String(args.peers).split(',') : Object.keys(PEERS);

const round = (x, d = 3) => Number(x.toFixed(d));
let failed = 0;
for (const name of selected) {
  const line = { impl: name };
  let peer;
  const t0 = performance.now();
  try {
    if (!PEERS[name]) throw new Error(`unknown peer ${name}`);
    peer = await PEERS[name]();
    line.impl = peer.impl;
    line.adapter = peer.adapter;
    const r = await peer.gptStep(cfg);
    const med = median(r.ms);
    line.gpt = {
      ...cfg,
      median_ms: round(med),
      tokens_per_s: round((cfg.batch * cfg.T) / (med / 1e3), 1),
      ms: r.ms.map((x) => round(x)),
    };
    if (r.losses) line.gpt.check_losses = r.losses.map((x) => round(x, 5));
    line.total_s = round((performance.now() - t0) / 1e3, 1);
  } catch (e) {
    failed++;
    line.error = String(e && e.stack ? e.stack.split('\n').slice(0, 3).join(' | ') : e);
  } finally {
    if (peer) {
      try { await peer.dispose(); } catch (e) { failed++; line.dispose_error = String(e); }
    }
  }
  console.log(JSON.stringify(line));
}
process.exit(failed ? 1 : 0);
