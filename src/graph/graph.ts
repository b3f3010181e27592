// The graph a model builds: tensors with shapes, and ops that each know how to record their forward
// and backward dispatches. Shapes are checked here, when the model is built, so that a mismatch is an
// error naming the layer and both shapes rather than a WebGPU validation error later.
import type { Recorder } from '../gpu/program.ts';
import type { View } from '../gpu/buffers.ts';

/**
 * input: the batch's input; labels: its targets; param: a trained (or frozen) parameter; activation: computed
 * by an op; aux: computed on the host from each micro-batch's input and uploaded with it (e.g. the token
 * buckets of a deterministic embedding backward).
 */
export type TensorKind = 'input' | 'labels' | 'param' | 'activation' | 'aux';

/** Element types: f32, i32 (token ids, labels), f16 (activations and their gradients under mixed precision). */
export type DType = 'f32' | 'i32' | 'f16';

/** Bytes a tensor of `elements` of `dtype` takes in a buffer (f16 rounded up to whole 4-byte words). */
export function dtypeBytes(dtype: DType, elements: number): number {
  return dtype === 'f16' ? Math.ceil(elements / 2) * 4 : elements * 4;
}

export class Tensor {
  constructor(
    readonly id: number,
    readonly name: string,
    readonly shape: readonly number[],
    readonly kind: TensorKind,
    readonly dtype: DType = 'f32',
  ) {}

  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  /** Bytes of the tensor's value (and of its gradient, which has its dtype). */
  get bytes(): number {
    return dtypeBytes(this.dtype, this.size);
  }

  toString(): string {
    return `${this.name} [${this.shape.join(', ')}]`;
  }
}

export class ShapeError extends Error {
  override name = 'ShapeError';
}

/** What an op sees while recording: the buffers of its tensors and of their gradients. */
export interface OpContext {
  rec: Recorder;
  /** The buffer range holding a tensor's value (an f16 tensor's view says so in its dtype). */
  value(t: Tensor): View;
  /**
   * A parameter as a matmul operand: its f16 copy under mixed precision (refreshed after every update),
   * else its f32 value. Kernels that need the exact weight (LayerNorm's scale, biases) use value().
   */
  operand(t: Tensor): View;
  /** The buffer range of a tensor's gradient, or null when the tensor needs none. */
  grad(t: Tensor): View | null;
  /** Whether this op adds into grad(t) (another op wrote it first) rather than assigning it. */
  accumulates(t: Tensor): boolean;
  /** The i-th scratch buffer the op asked for in this phase (see Op.temps). */
  temp(index: number): View;
  /** Micro-batches per optimizer step: loss gradients are scaled by 1 / this. */
  microBatches: number;
  /** The step's loss scalar (accumulating); only loss ops write it. */
  lossScalar: View;
  /**
   * Under mixed precision, the status words whose element 5 is the dynamic loss scale (see grad_norm.wgsl):
   * loss ops multiply the gradient they seed by it. Null otherwise.
   */
  lossScale: View | null;
  /** Whether this recording is for training (gradients wanted) or inference. */
  training: boolean;
}

export interface Op {
  /** The layer's name, used in errors and profiles (e.g. "fc1"). */
  readonly name: string;
  /** Tensors read in the forward pass (activations, inputs, labels). */
  readonly inputs: readonly Tensor[];
  readonly params: readonly Tensor[];
  readonly outputs: readonly Tensor[];
  /** Tensors whose values the backward pass reads: they are kept alive until then. */
  readonly saved: readonly Tensor[];
  /** Element counts of the scratch buffers the op needs in a phase (ctx.temp(i) hands out the i-th). */
  temps(phase: 'forward' | 'backward', training: boolean): number[];
  /** True for fused losses, which write their input's gradient in the forward pass. */
  readonly gradInForward?: boolean;
  forward(ctx: OpContext): Promise<void>;
  backward(ctx: OpContext): Promise<void>;
}

export interface ParamInit {
  /** Fills the parameter's initial values from a seeded uniform [0, 1) source. */
  init(random: () => number, size: number): Float32Array;
}

export interface ParamInfo {
  tensor: Tensor;
  init: ParamInit['init'];
  /**
   * The most elements of this parameter any kernel binds at once, when kernels bind it in chunks (e.g. the
   * token embedding split by vocabulary); absent: it is bound whole.
   */
  bindElements?: number;
}

export interface AuxInfo {
  tensor: Tensor;
  /**
   * The tensor's int32 contents (at most tensor.size values) for the micro-batch input[start … start+length).
   * `stamp` changes with every micro-batch written, so an op may compute once for several aux tensors and
   * reuse preallocated arrays (the step allocates nothing).
   */
  compute(input: Int32Array | Float32Array, start: number, length: number, stamp: number): Int32Array;
}

/** Collects tensors and ops as layers are applied. */
export class Graph {
  readonly tensors: Tensor[] = [];
  readonly ops: Op[] = [];
  readonly params: ParamInfo[] = [];
  readonly aux: AuxInfo[] = [];
  /** Checks of a batch's input that ops add (e.g. token ids below the vocabulary size); each returns an error or null. */
  readonly inputChecks: ((input: Int32Array | Float32Array) => string | null)[] = [];
  /**
   * Tensors that exist only as a set of parts (e.g. the logits split by vocabulary chunk, each part its own
   * activation [rows, chunk]): the whole has no producer and no buffer; ops read and write the parts.
   */
  readonly parts = new Map<Tensor, Tensor[]>();
  /** The largest storage binding the target device allows (maxStorageBufferBindingSize), when known. */
  maxBindingBytes?: number;
  /** The dtype of activations created without an explicit one: 'f16' under mixed precision. */
  activationDtype: 'f32' | 'f16' = 'f32';
  private readonly names = new Set<string>();
  private readonly counters = new Map<string, number>();

  /** A unique layer name from a prefix: "linear" → "linear1", "linear2", … unless given. */
  layerName(prefix: string, given?: string): string {
    if (given !== undefined) {
      if (this.names.has(given)) throw new ShapeError(`two layers are named '${given}'`);
      this.names.add(given);
      return given;
    }
    let n = this.counters.get(prefix) ?? 0;
    let name: string;
    do name = `${prefix}${++n}`;
    while (this.names.has(name));
    this.counters.set(prefix, n);
    this.names.add(name);
    return name;
  }

  /** A tensor; an activation without an explicit dtype gets the graph's activationDtype. */
  tensor(name: string, shape: readonly number[], kind: TensorKind, dtype?: DType): Tensor {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 1) throw new ShapeError(`${name}: invalid shape [${shape.join(', ')}]`);
    }
    const t = new Tensor(this.tensors.length, name, [...shape], kind, dtype ?? (kind === 'activation' ? this.activationDtype : 'f32'));
    this.tensors.push(t);
    return t;
  }

  param(name: string, shape: readonly number[], init: ParamInit['init']): Tensor {
    const t = this.tensor(name, shape, 'param');
    this.params.push({ tensor: t, init });
    return t;
  }

  auxTensor(name: string, elements: number, compute: AuxInfo['compute']): Tensor {
    const t = this.tensor(name, [elements], 'aux', 'i32');
    this.aux.push({ tensor: t, compute });
    return t;
  }

  add(op: Op): void {
    this.ops.push(op);
  }
}

/** A layer maps a tensor to a tensor, adding its parameters and ops to the graph. */
export interface Layer {
  apply(g: Graph, x: Tensor): Tensor;
  /** The input a model built from this layer takes: float features (default) or int32 token ids. */
  readonly inputDtype?: 'f32' | 'i32';
}
