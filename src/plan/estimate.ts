// How much GPU memory training a model takes, computed from the same graph and memory plan the trainer
// uses (no GPU needed), and whether it fits a device's limits: total bytes, the largest single binding
// (checked against maxStorageBufferBindingSize) and the largest buffer (against maxBufferSize).
import { dtypeBytes, type Layer } from '../graph/graph.ts';
import { buildGraph, type Precision } from '../train/compile.ts';
import { planMemory } from './memory.ts';
import { arenaAlignBytes } from '../train/params.ts';
import type { LossKind } from '../nn/loss.ts';
import { DEFAULT_MAX_BINDING_BYTES } from '../nn/vocab.ts';

export interface MemoryEstimate {
  /** Parameters, gradients and optimizer moments (Adam: 4 copies of the parameter arena), and the f16 weight copy under mixed precision. */
  arenaBytes: number;
  /** Activations, activation gradients and scratch after liveness sharing. */
  activationBytes: number;
  /** What the activations would take without sharing. */
  activationBytesUnshared: number;
  /** Inputs and labels of every micro-batch. */
  batchBytes: number;
  totalBytes: number;
  parameters: number;
  /** The largest tensor a kernel binds on its own, and its size (after splitting by vocabulary chunk, for a GPT). */
  largestBinding: { name: string; bytes: number };
  /** The largest buffer to allocate (the parameter arena or an activation slot). */
  largestBuffer: number;
}

export function estimateTrainingMemory(
  model: Layer,
  o: {
    inputShape: number[];
    batchSize: number;
    loss: LossKind;
    accumSteps?: number;
    stateArenas?: number;
    alignBytes?: number;
    /** The device's maxStorageBufferBindingSize, which decides vocabulary chunking (default 128 MiB, WebGPU's default). */
    maxBindingBytes?: number;
    /** 'f16': mixed precision (f16 activations and an f16 weight copy); default 'f32'. */
    precision?: Precision;
  },
): MemoryEstimate {
  const precision = o.precision ?? 'f32';
  const mg = buildGraph(model, o.inputShape, o.batchSize, o.loss, o.maxBindingBytes ?? DEFAULT_MAX_BINDING_BYTES, precision);
  const plan = planMemory(mg.graph, { training: true, keep: [] });
  const align = arenaAlignBytes(o.alignBytes ?? 256, precision === 'f16') / 4;
  let arena = 0;
  let parameters = 0;
  let largest = { name: '', bytes: 0 };
  for (const p of mg.graph.params) {
    arena = Math.ceil(arena / align) * align + p.tensor.size;
    parameters += p.tensor.size;
  }
  const bound = new Map(mg.graph.params.map((p) => [p.tensor, p.bindElements ?? p.tensor.size]));
  for (const t of mg.graph.tensors) {
    if (mg.graph.parts.has(t)) continue; // bound as its parts
    const bytes = dtypeBytes(t.dtype, bound.get(t) ?? t.size);
    if (bytes > largest.bytes) largest = { name: bound.get(t) !== t.size && bound.has(t) ? `${t.name} (one vocabulary chunk)` : t.name, bytes };
  }
  const arenaBytes = arena * 4 * (2 + (o.stateArenas ?? 2)) + (precision === 'f16' ? Math.ceil(arena / 4) * 8 : 0);
  const batchBytes = (mg.input.size + mg.labels.size) * 4 * (o.accumSteps ?? 1);
  return {
    arenaBytes,
    activationBytes: plan.bytes,
    activationBytesUnshared: plan.bytesUnshared,
    batchBytes,
    totalBytes: arenaBytes + plan.bytes + batchBytes,
    parameters,
    largestBinding: largest,
    largestBuffer: Math.max(arena * 4, ...plan.slotBytes),
  };
}
