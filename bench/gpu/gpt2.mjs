#!/usr/bin/env node
// GPT-2 124M full fine-tuning steps (B 4, T 256, AdamW, clipping): the figure to take on a real GPU (the
// matmuls up to 4096³ come from bench/run.mjs). One JSON line per measurement, like bench/run.mjs.
//
//   node bench/gpu/gpt2.mjs [--steps=5] [--precision=f32,f16] [--peak-tflops=X] [--tiny]
//
// MFU = model FLOPs per second / the card's peak fp32 (non-tensor-core) FLOP/s, where the peak is known
// (a small table by adapter name, or --peak-tflops). Model FLOPs per token follow llm.c / PaLM: 6·N for
// the weights (N without the position embedding) plus 6·L·T·C for attention (forward QKᵀ and PV, ×3 for
// the backward); the kernels' own count (trainer.flopsPerStep, which includes the recomputation in the
// attention backward) is reported beside it. --tiny swaps in a 2-layer model for a check on a CPU adapter.
import { ensureNodeWebGPU, median } from '../peers/env.mjs';
import { createRuntime, adapterName, GPT, Trainer } from '../../dist/index.js';

const flags = Object.fromEntries(process.argv.slice(2).filter((a) => a.startsWith('--')).map((a) => { const [k, v] = a.slice(2).split('='); return [k, v ?? true]; }));
const steps = Number(flags.steps ?? 5);
const gpu = await ensureNodeWebGPU();
const rt = await createRuntime({ gpu });
const adapter = adapterName(rt.adapterInfo);
const round = (x) => Number(x.toPrecision(5));
const emit = (o) => console.log(JSON.stringify({ adapter, ...o }));

// Peak fp32 FLOP/s without tensor cores, by the adapter's name (vendor spec sheets); --peak-tflops overrides.
const PEAKS = [[/H200/i, 67], [/H100.*PCIe/i, 51], [/H100/i, 67], [/A100/i, 19.5], [/L40S/i, 91.6], [/RTX 4090/i, 82.6]];
const desc = `${rt.adapterInfo.device} ${rt.adapterInfo.description}`;
const peakTflops = flags['peak-tflops'] ? Number(flags['peak-tflops']) : PEAKS.find(([re]) => re.test(desc))?.[1];

const config = flags.tiny
  ? { vocab_size: 50257, n_positions: 1024, n_embd: 128, n_layer: 2, n_head: 4, layer_norm_epsilon: 1e-5 }
  : { vocab_size: 50257, n_positions: 1024, n_embd: 768, n_layer: 12, n_head: 12, layer_norm_epsilon: 1e-5 };
const [Bsz, T] = [4, 256];
const precisions = String(flags.precision ?? (rt.features.has('shader-f16') ? 'f32,f16' : 'f32')).split(',');
for (const precision of precisions) {
  const t0 = performance.now();
  const trainer = await Trainer.create(rt, new GPT(config), {
    inputShape: [T], loss: 'cross-entropy', batchSize: Bsz, optimizer: { type: 'adamw', lr: 1e-4, weightDecay: 0.1 }, decay: 'matrices', gradClip: 1, precision,
  });
  const compileMs = performance.now() - t0;
  const x = new Int32Array(Bsz * T).map((_, i) => (i * 7919) % config.vocab_size);
  const y = new Int32Array(Bsz * T).map((_, i) => (i * 104729 + 1) % config.vocab_size);
  const first = await trainer.step({ x, y }, { readLoss: true }); // warm-up (and the loss at initialisation)
  const ms = [];
  let loss = first;
  for (let i = 0; i < steps; i++) {
    const t = performance.now();
    loss = await trainer.step({ x, y }, { readLoss: true });
    ms.push(performance.now() - t);
  }
  const { n_layer: L, n_embd: C, vocab_size: V } = config;
  const N = 12 * L * C * C + 13 * L * C + V * C + 2 * C; // every weight but wpe (tied head counted once)
  const modelFlops = Bsz * T * (6 * N + 6 * L * T * C);
  const stepMs = median(ms);
  const line = {
    bench: 'gpt2-step', model: flags.tiny ? 'gpt2-tiny-check' : 'gpt2-124M', batch: Bsz, T, optimizer: 'adamw', precision, impl: 'wgsl-train',
    compile_ms: round(compileMs), dispatches: trainer.dispatchesPerStep, encode_ms: round(trainer.measureEncode(10)),
    loss_first: round(first), loss_last: round(loss), step_ms_median: round(stepMs), step_ms_min: round(Math.min(...ms)),
    tokens_per_s: round((Bsz * T * 1000) / stepMs), model_tflops: round(modelFlops / (stepMs * 1e9)), kernel_tflops: round(trainer.flopsPerStep / (stepMs * 1e9)),
    ...(peakTflops ? { peak_tflops: peakTflops, mfu: round(modelFlops / (stepMs * 1e9) / peakTflops) } : {}),
    ...(precision === 'f16' ? { loss_scale: trainer.lossScale, skipped_steps: trainer.skippedSteps } : {}),
  };
  emit(line);
  trainer.destroy();
}
rt.destroy();
process.exit(0);
