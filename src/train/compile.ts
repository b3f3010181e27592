// Turns a model into programs: the graph for a batch size, the memory plan, the buffers, and the
// recorded list of dispatches. A training step is: zero gradients and loss; for each micro-batch,
// forward then backward; clip; update. An inference program is the forward pass alone.
import { Graph, ShapeError, dtypeBytes, type Layer, type Op, type OpContext, type Tensor } from '../graph/graph.ts';
import { planMemory, type MemoryPlan } from '../plan/memory.ts';
import { Recorder, type Cost } from '../gpu/program.ts';
import { ArenaLayout, createStorage, LimitError, type View } from '../gpu/buffers.ts';
import { addLoss, type LossKind } from '../nn/loss.ts';
import { recordGradClip, recordOptimizer, type OptimizerConfig } from '../optim/optimizer.ts';
import { arenaAlignBytes, type ParamStore } from './params.ts';
import type { Runtime } from '../gpu/device.ts';

/** 'f32': everything in f32. 'f16': mixed precision (f16 activations and matmul operands, f32 accumulation, f32 master weights, dynamic loss scaling). */
export type Precision = 'f32' | 'f16';

export interface ModelGraph {
  graph: Graph;
  input: Tensor;
  labels: Tensor;
  output: Tensor;
}

/**
 * Applies the model to an input of `rows` samples of `inputShape`, then the loss. precision 'f16' makes the
 * activations (and so their gradients) f16; parameters, their gradients and the loss stay f32.
 */
export function buildGraph(model: Layer, inputShape: readonly number[], rows: number, loss: LossKind, maxBindingBytes?: number, precision: Precision = 'f32'): ModelGraph {
  const graph = new Graph();
  graph.maxBindingBytes = maxBindingBytes;
  graph.activationDtype = precision;
  const input = graph.tensor('input', [rows, ...inputShape], 'input', model.inputDtype ?? 'f32');
  const output = model.apply(graph, input);
  if (output.shape[0] !== rows) {
    throw new ShapeError(`the model's output ${output} does not keep the batch dimension ${rows} of its input`);
  }
  const labels = addLoss(graph, loss, output);
  return { graph, input, labels, output };
}

/** Buffers of one micro-batch's input, labels and host-computed aux tensors. */
export interface BatchSlot {
  input: View;
  labels: View;
  aux: Map<Tensor, View>;
}

export interface Program {
  rec: Recorder;
  plan: MemoryPlan;
  slots: GPUBuffer[];
  batches: BatchSlot[];
  cost: Cost;
  destroy(): void;
}

function makeBatchSlots(rt: Runtime, mg: ModelGraph, count: number): BatchSlot[] {
  const view = (t: Tensor, i: number): View => ({ buffer: createStorage(rt.device, t.size * 4, `${t.name} (micro-batch ${i})`), offset: 0, size: t.size * 4 });
  return Array.from({ length: count }, (_, i) => ({
    input: view(mg.input, i),
    labels: view(mg.labels, i),
    aux: new Map(mg.graph.aux.map((a) => [a.tensor, view(a.tensor, i)])),
  }));
}

function context(
  rec: Recorder,
  mg: ModelGraph,
  plan: MemoryPlan,
  slots: GPUBuffer[],
  store: ParamStore,
  batch: BatchSlot,
  lossScalar: View,
  lossScale: View | null,
  microBatches: number,
  training: boolean,
  opIndex: number,
  phase: 'forward' | 'backward',
): OpContext {
  const slotView = (slot: number | undefined, t: Tensor | number, what: string): View => {
    if (slot === undefined) throw new Error(`no buffer planned for ${what}`);
    if (typeof t === 'number') return { buffer: slots[slot], offset: 0, size: t * 4 };
    return t.dtype === 'f16' ? { buffer: slots[slot], offset: 0, size: t.bytes, dtype: 'f16' } : { buffer: slots[slot], offset: 0, size: t.bytes };
  };
  return {
    rec,
    microBatches,
    lossScalar,
    lossScale,
    training,
    value(t) {
      if (t === mg.input) return batch.input;
      if (t === mg.labels) return batch.labels;
      if (t.kind === 'param') return store.value(t);
      if (t.kind === 'aux') return batch.aux.get(t)!;
      return slotView(plan.value.get(t), t, `${t}`);
    },
    operand(t) {
      if (t.kind !== 'param') throw new Error(`operand(${t}): only parameters have an operand copy`);
      return store.operand(t);
    },
    grad(t) {
      if (!plan.needsGrad.has(t)) return null;
      if (t.kind === 'param') return store.grad(t);
      const s = plan.grad.get(t);
      return s === undefined ? null : slotView(s, t, `gradient of ${t}`);
    },
    accumulates: (t) => plan.accumulates(opIndex, t),
    temp(i) {
      const op = mg.graph.ops[opIndex];
      const elements = op.temps(phase, training)[i];
      return slotView(plan.temp.get(`${opIndex}:${phase}:${i}`), elements, `scratch ${i} of ${op.name}`);
    },
  };
}

async function recordPasses(
  rec: Recorder,
  mg: ModelGraph,
  plan: MemoryPlan,
  slots: GPUBuffer[],
  store: ParamStore,
  batches: BatchSlot[],
  lossScalar: View,
  lossScale: View | null,
  training: boolean,
) {
  const ops: readonly Op[] = mg.graph.ops;
  for (const batch of batches) {
    const ctx = (i: number, phase: 'forward' | 'backward') =>
      context(rec, mg, plan, slots, store, batch, lossScalar, lossScale, batches.length, training, i, phase);
    for (let i = 0; i < ops.length; i++) await ops[i].forward(ctx(i, 'forward'));
    if (!training) continue;
    for (let i = ops.length - 1; i >= 0; i--) await ops[i].backward(ctx(i, 'backward'));
  }
}

/**
 * Checks a model against the device's limits before anything is allocated: every tensor (parameter,
 * activation, input) must fit one binding (maxStorageBufferBindingSize) and the parameter arena (params,
 * grads and optimizer moments are one buffer each) one buffer (maxBufferSize). Throws a LimitError
 * naming the tensor (or the arena's largest tensors) and the limit.
 */
export function checkLimits(rt: Runtime, mg: ModelGraph): void {
  const { maxStorageBufferBindingSize: maxBinding, maxBufferSize, minStorageBufferOffsetAlignment } = rt.device.limits;
  const bound = new Map(mg.graph.params.map((p) => [p.tensor, p.bindElements ?? p.tensor.size]));
  for (const t of mg.graph.tensors) {
    if (mg.graph.parts.has(t)) continue; // split into parts, each checked on its own
    if (dtypeBytes(t.dtype, bound.get(t) ?? t.size) > maxBinding) {
      const hint = t.kind === 'param' ? 'a parameter is bound whole: use a smaller layer' : 'use a smaller batch or sequence length';
      throw new LimitError(`${t.kind === 'param' ? 'parameter' : 'tensor'} ${t} needs ${t.bytes} bytes, above this device's maxStorageBufferBindingSize (${maxBinding}); ${hint}`);
    }
  }
  const layout = new ArenaLayout(arenaAlignBytes(minStorageBufferOffsetAlignment, mg.graph.activationDtype === 'f16'));
  for (const p of mg.graph.params) layout.add(p.tensor.name, p.tensor.size);
  if (layout.bytes > maxBufferSize) {
    const largest = [...mg.graph.params].sort((a, b) => b.tensor.size - a.tensor.size).slice(0, 3).map((p) => `${p.tensor} ${p.tensor.size * 4} bytes`);
    const count = mg.graph.params.reduce((a, p) => a + p.tensor.size, 0);
    throw new LimitError(
      `the parameter arena (${count} parameters in ${mg.graph.params.length} tensors) needs ${layout.bytes} bytes, above this device's maxBufferSize (${maxBufferSize}); largest: ${largest.join(', ')}`,
    );
  }
}

/** Creates the plan's buffers, first checking that no tensor is larger than one binding may be. */
function allocateSlots(rt: Runtime, mg: ModelGraph, plan: MemoryPlan): GPUBuffer[] {
  checkLimits(rt, mg);
  const max = rt.device.limits.maxBufferSize;
  plan.slotBytes.forEach((bytes, i) => {
    if (bytes > max) throw new LimitError(`activation slot ${i} needs ${bytes} bytes, above this device's maxBufferSize (${max}); use a smaller batch or sequence length`);
  });
  const slots: GPUBuffer[] = [];
  try {
    for (const [i, bytes] of plan.slotBytes.entries()) slots.push(createStorage(rt.device, bytes, `activation slot ${i}`));
  } catch (e) {
    for (const b of slots) b.destroy();
    throw e;
  }
  return slots;
}

export interface TrainingProgramOptions {
  microBatches: number;
  optimizer: Required<OptimizerConfig>;
  gradClip?: number;
  /** The non-finite guard's mode: the gradient-norm pass runs every step to check loss and gradients. */
  nonFinite: 'skip' | 'stop';
  /** Mixed precision: good steps before the loss scale doubles (0: no loss scaling). */
  growthInterval: number;
  stepUniform: GPUBuffer;
  lossScalar: View;
  /** CLIP_STATUS_FLOATS floats: [norm, scale] and the non-finite status words. */
  clip: View;
}

export async function compileTrainingStep(rt: Runtime, mg: ModelGraph, store: ParamStore, o: TrainingProgramOptions): Promise<Program> {
  const frozen = new Set(mg.graph.params.map((p) => p.tensor).filter((t) => store.layout.get(t.name).offset >= store.trainedLength));
  const plan = planMemory(mg.graph, { training: true, keep: [], frozen });
  const slots = allocateSlots(rt, mg, plan);
  const batches = makeBatchSlots(rt, mg, o.microBatches);
  const rec = new Recorder(rt);
  rec.clear('zero gradients', store.grads);
  rec.clear('zero loss', o.lossScalar.buffer, o.lossScalar.offset, 16);
  // Mixed precision: the loss gradient is seeded × the dynamic loss scale (clip status word 5).
  const lossScale = mg.graph.activationDtype === 'f16' ? o.clip : null;
  await recordPasses(rec, mg, plan, slots, store, batches, o.lossScalar, lossScale, true);
  // One small reduction over the gradient arena every step: the clip factor (when clipping) and the
  // non-finite check, whose flag makes the optimizer leave params, m and v untouched.
  await recordGradClip(rec, store.grads, store.trainedLength, o.gradClip, o.clip, undefined, { mode: o.nonFinite, loss: o.lossScalar, step: o.stepUniform, params: store.params, growthInterval: o.growthInterval });
  await recordOptimizer(rec, o.optimizer, { step: o.stepUniform, params: store.params, grads: store.grads, m: store.m, v: store.v, clip: o.clip }, store.groups);
  await store.recordOperandRefresh(rec);
  return finish(rec, plan, slots, batches);
}

export async function compileForward(rt: Runtime, mg: ModelGraph, store: ParamStore, lossScalar: View): Promise<Program> {
  const plan = planMemory(mg.graph, { training: false, keep: mg.graph.parts.get(mg.output) ?? [mg.output] });
  const slots = allocateSlots(rt, mg, plan);
  const batches = makeBatchSlots(rt, mg, 1);
  const rec = new Recorder(rt);
  rec.clear('zero loss', lossScalar.buffer, lossScalar.offset, 16);
  await recordPasses(rec, mg, plan, slots, store, batches, lossScalar, null, false);
  return finish(rec, plan, slots, batches);
}

function finish(rec: Recorder, plan: MemoryPlan, slots: GPUBuffer[], batches: BatchSlot[]): Program {
  return {
    rec,
    plan,
    slots,
    batches,
    cost: rec.cost(),
    destroy() {
      for (const b of [...slots, ...rec.owned, ...batches.flatMap((b) => [b.input.buffer, b.labels.buffer, ...[...b.aux.values()].map((v) => v.buffer)])]) b.destroy();
    },
  };
}
