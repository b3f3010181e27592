// Losses, fused forward + backward: each writes the per-row losses, its input's gradient, and adds the
// micro-batch's mean into the step's loss scalar.
//   cross-entropy: logits [R, V], labels [R] int32 in [0, V)   loss = mean_r (logsumexp(l_r) − l_r[y_r])
//   mse:           pred [R, D], target [R, D]                   loss = mean over all R·D of (pred − target)²
import { ShapeError, type Graph, type Op, type OpContext, type Tensor } from '../graph/graph.ts';
import type { View } from '../gpu/buffers.ts';
import { recordCrossEntropy, recordCrossEntropyChunked, recordMse, recordScaledSum } from '../ops/loss.ts';

export type LossKind = 'cross-entropy' | 'mse';

/** Adds the loss op for `pred`; returns the labels/target tensor the batch fills. */
export function addLoss(g: Graph, kind: LossKind, pred: Tensor): Tensor {
  const D = pred.shape[pred.shape.length - 1];
  const R = pred.size / D;
  const parts = g.parts.get(pred);
  if (parts && kind !== 'cross-entropy') throw new ShapeError(`${kind}: ${pred} is split by vocabulary chunk; only cross-entropy reads it`);
  if (kind === 'cross-entropy') {
    const labels = g.tensor('labels', pred.shape.slice(0, -1).length ? pred.shape.slice(0, -1) : [1], 'labels', 'i32');
    if (parts) {
      g.add(new ChunkedCrossEntropyOp(parts, labels, g.tensor('cross-entropy.losses', [R], 'activation', 'f32'), R, D));
      return labels;
    }
    g.add(new LossOp('cross-entropy', kind, pred, labels, g.tensor('cross-entropy.losses', [R], 'activation', 'f32'), R, D));
    return labels;
  }
  if (kind === 'mse') {
    const target = g.tensor('target', pred.shape, 'labels', 'f32');
    g.add(new LossOp('mse', kind, pred, target, g.tensor('mse.losses', [R], 'activation', 'f32'), R, D));
    return target;
  }
  throw new ShapeError(`unknown loss '${kind as string}' (cross-entropy, mse)`);
}

class LossOp implements Op {
  readonly inputs: Tensor[];
  readonly params: Tensor[] = [];
  readonly outputs: Tensor[];
  readonly saved: Tensor[] = [];
  readonly gradInForward = true;

  constructor(
    readonly name: string,
    private readonly kind: LossKind,
    private readonly pred: Tensor,
    private readonly labels: Tensor,
    private readonly losses: Tensor,
    private readonly R: number,
    private readonly D: number,
  ) {
    this.inputs = [pred, labels];
    this.outputs = [losses];
  }

  temps(phase: 'forward' | 'backward', training: boolean): number[] {
    return phase === 'forward' && !training ? [this.pred.size] : []; // inference: where the unused gradient goes
  }

  async forward(ctx: OpContext): Promise<void> {
    const { R, D, name } = this;
    // Without a gradient buffer (inference), the gradient goes to a scratch buffer nobody reads.
    const grad = ctx.grad(this.pred);
    const dpred = grad ?? ctx.temp(0);
    const lossScale = grad ? ctx.lossScale : null;
    const losses = ctx.value(this.losses);
    const perRow = this.kind === 'mse' ? 1 / (R * D) : 1 / R;
    const gradScale = perRow / ctx.microBatches;
    if (this.kind === 'cross-entropy') {
      await recordCrossEntropy(ctx.rec, `${name} forward+backward`, {
        logits: ctx.value(this.pred), labels: ctx.value(this.labels), losses, dlogits: dpred, R, V: D, gradScale, lossScale,
      });
    } else {
      await recordMse(ctx.rec, `${name} forward+backward`, {
        pred: ctx.value(this.pred), target: ctx.value(this.labels), losses, dpred, R, D, gradScale, lossScale,
      });
    }
    await recordScaledSum(ctx.rec, `${name} mean`, losses, ctx.lossScalar, R, gradScale);
  }

  async backward(): Promise<void> {
    // The gradient was written by the fused forward kernel.
  }
}

/** Cross-entropy over logits split into vocabulary chunks (parts [R, Vc_c], all of Vc but the last). */
class ChunkedCrossEntropyOp implements Op {
  readonly name = 'cross-entropy';
  readonly inputs: Tensor[];
  readonly params: Tensor[] = [];
  readonly outputs: Tensor[];
  readonly saved: Tensor[] = [];
  readonly gradInForward = true;

  constructor(
    private readonly parts: Tensor[],
    private readonly labels: Tensor,
    private readonly losses: Tensor,
    private readonly R: number,
    private readonly V: number,
  ) {
    this.inputs = [...parts, labels];
    this.outputs = [losses];
  }

  temps(phase: 'forward' | 'backward'): number[] {
    return phase === 'forward' ? [this.parts.length * this.R * 3, this.R * 2] : [];
  }

  async forward(ctx: OpContext): Promise<void> {
    const { R, V, name } = this;
    const losses = ctx.value(this.losses);
    const gradScale = 1 / R / ctx.microBatches;
    const grads = this.parts.map((p) => ctx.grad(p));
    await recordCrossEntropyChunked(ctx.rec, `${name} forward+backward`, {
      logits: this.parts.map((p) => ctx.value(p)), labels: ctx.value(this.labels), losses,
      dlogits: grads.every((g) => g) ? (grads as View[]) : null,
      stats: ctx.temp(0), rows: ctx.temp(1), R, V, Vc: this.parts[0].shape[1], gradScale, lossScale: ctx.lossScale,
    });
    await recordScaledSum(ctx.rec, `${name} mean`, losses, ctx.lossScalar, R, gradScale);
  }

  async backward(): Promise<void> {
    // The gradient was written by the fused forward pass.
  }
}
