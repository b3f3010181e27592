#!/usr/bin/env node
// Smoke check for the benchmark peers: runs each peer (TF.js WebGPU, TF.js
// Wasm, jax-js WebGPU) in this Node process and prints one JSON line per peer.
//
//   node bench/peers/check.mjs            tiny shapes (matmul 64^3, MLP batch 16)
//   node bench/peers/check.mjs --full     matmul 1024^3 (warmup 1, iters 3),
//                                         MLP 784-256-256-10 batch 128 (warmup 2, steps 5)
//   --peers=tfjs-webgpu,tfjs-wasm,jax-js-webgpu   select peers
//   --matmul=M[,N,K] --batch=B --iters=I --steps=S --warmup-mm=W --warmup-mlp=W
//
// Exit code 1 if any peer failed (its line then carries "error").

import { median, parseArgs } from './env.mjs';
import { PEERS } from './index.mjs';

const args = parseArgs();
const full = !!args.full;
const mm = String(args.matmul ?? (full ? 1024 : 64)).split(',').map(Number);
const [M, N, K] = mm.length === 3 ? mm : [mm[0], mm[0], mm[0]];
const cfg = {
  matmul: { M, N, K, warmup: Number(args['warmup-mm'] ?? 1), iters: Number(args.iters ?? (full ? 3 : 5)) },
  mlp: {
    batch: Number(args.batch ?? (full ? 128 : 16)),
    sizes: [784, 256, 256, 10],
    warmup: Number(args['warmup-mlp'] ?? (full ? 2 : 1)),
    steps: Number(args.steps ?? (full ? 5 : 3)),
  },
};

const selected = args.peers ? String(args.peers).split(',') : Object.keys(PEERS);

const round = (x, d = 3) => Number(x.toFixed(d));
let failed = 0;
for (const name of selected) {
  const line = { impl: name };
  let peer;
  try {
    if (!PEERS[name]) throw new Error(`unknown peer ${name}`);
    peer = await PEERS[name]();
    line.impl = peer.impl;
    line.adapter = peer.adapter;
    const { M, N, K, warmup, iters } = cfg.matmul;
    const r1 = await peer.matmul(M, N, K, { warmup, iters });
    const mmMed = median(r1.ms);
    line.matmul = { M, N, K, warmup, iters, median_ms: round(mmMed), gflops: round((2 * M * N * K) / (mmMed * 1e6)), ms: r1.ms.map((x) => round(x)) };
    const r2 = await peer.mlp(cfg.mlp);
    const mlpMed = median(r2.ms);
    line.mlp = { batch: cfg.mlp.batch, sizes: cfg.mlp.sizes, warmup: cfg.mlp.warmup, steps: cfg.mlp.steps, median_ms: round(mlpMed), samples_per_s: round(cfg.mlp.batch / (mlpMed / 1e3), 1), ms: r2.ms.map((x) => round(x)) };
  } catch (e) {
    failed++;
    line.error = String(e && e.stack ? e.stack.split('\n').slice(0, 3).join(' | ') : e);
  } finally {
    if (peer) { try { await peer.dispose(); } catch {} }
  }
  console.log(JSON.stringify(line));
}
process.exit(failed ? 1 : 0);
