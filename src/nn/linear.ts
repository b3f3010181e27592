// Linear layer: y = act(x·W + b), x [R, in] (R = rows: batch, or batch·time), W [in, out], b [out].
// W is stored [in, out] (as GPT-2's Conv1D), so the forward product needs no transpose.
// Forward: one matmul with bias and activation in the epilogue.
// Backward: dpre = dy·f'(·) (skipped without activation); dW += xᵀ·dpre; db += Σ_rows dpre; dx (=|+=) dpre·Wᵀ.
import { ShapeError, type Graph, type Layer, type Op, type OpContext, type Tensor } from '../graph/graph.ts';
import { recordMatmul, recordBiasGrad } from '../ops/matmul.ts';
import { recordActivationBackward, savesInput, type Activation } from '../ops/activation.ts';
import { constantInit, normalInit, uniformInit } from './init.ts';
import { loraLinear } from './lora.ts';

export interface LinearOptions {
  bias?: boolean;
  /** Initial weights N(0, weightStd²) and zero bias (GPT-2 style); default torch.nn.Linear's uniform init. */
  weightStd?: number;
  /** Activation fused into the matmul epilogue. */
  activation?: Activation;
  name?: string;
  /** A low-rank adapter beside the weight: y = act(x·W + b + (alpha/rank)·(x·A)·B); see lora.ts. */
  lora?: { rank: number; alpha: number };
}


export class Linear implements Layer {
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    readonly options: LinearOptions = {},
  ) {
    for (const [k, v] of [['inFeatures', inFeatures], ['outFeatures', outFeatures]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new ShapeError(`Linear: ${k} must be a positive integer, got ${v}`);
    }
  }

  /** The same layer with an activation fused in (used when a model lists Linear then an activation). */
  withActivation(act: Activation): Linear {
    return new Linear(this.inFeatures, this.outFeatures, { ...this.options, activation: act });
  }

  apply(g: Graph, x: Tensor): Tensor {
    const name = g.layerName('linear', this.options.name);
    const { inFeatures: K, outFeatures: N } = this;
    if (x.shape[x.shape.length - 1] !== K) {
      throw new ShapeError(`${name}: expects input [..., ${K}] but got ${x.name} [${x.shape.join(', ')}]`);
    }
    const rows = x.size / K;
    const std = this.options.weightStd;
    const W = g.param(`${name}.weight`, [K, N], std === undefined ? uniformInit(1 / Math.sqrt(K)) : normalInit(std));
    const b = this.options.bias === false ? null : g.param(`${name}.bias`, [N], std === undefined ? uniformInit(1 / Math.sqrt(K)) : constantInit(0));
    const act = this.options.activation ?? 'none';
    if (this.options.lora) return loraLinear(g, name, x, W, b, act, rows, K, N, this.options.lora);
    const y = g.tensor(`${name}.out`, [...x.shape.slice(0, -1), N], 'activation');
    const pre = savesInput(act) ? g.tensor(`${name}.pre`, y.shape, 'activation') : null;
    g.add(new LinearOp(name, x, W, b, y, pre, act, rows, K, N));
    return y;
  }
}

class LinearOp implements Op {
  readonly inputs: Tensor[];
  readonly params: Tensor[];
  readonly outputs: Tensor[];
  readonly saved: Tensor[];

  constructor(
    readonly name: string,
    private readonly x: Tensor,
    private readonly W: Tensor,
    private readonly b: Tensor | null,
    private readonly y: Tensor,
    private readonly pre: Tensor | null,
    private readonly act: Activation,
    private readonly M: number,
    private readonly K: number,
    private readonly N: number,
  ) {
    this.inputs = [x];
    this.params = b ? [W, b] : [W];
    this.outputs = pre ? [y, pre] : [y];
    // The backward of f needs its output (relu, tanh, sigmoid) or its input (gelu, silu).
    this.saved = act === 'none' ? [x] : pre ? [x, pre] : [x, y];
  }

  temps(phase: 'forward' | 'backward'): number[] {
    return phase === 'backward' && this.act !== 'none' ? [this.M * this.N] : []; // dpre
  }

  forward(ctx: OpContext): Promise<void> {
    const { x, W, b, y, pre } = this;
    return recordMatmul(ctx.rec, {
      label: `${this.name} forward`,
      A: ctx.value(x), B: ctx.operand(W), C: ctx.value(y), M: this.M, N: this.N, K: this.K,
      bias: b ? ctx.value(b) : undefined, act: this.act, pre: pre ? ctx.value(pre) : undefined,
    });
  }

  async backward(ctx: OpContext): Promise<void> {
    const { x, W, b, y, pre, M, N, K, name } = this;
    const dy = ctx.grad(y);
    if (!dy) return;
    let dpre = dy;
    if (this.act !== 'none') {
      dpre = ctx.temp(0);
      const saved = ctx.value(pre ?? y);
      await recordActivationBackward(ctx.rec, `${name} ${this.act} backward`, this.act, dy, saved, dpre, M * N, false);
    }
    const dW = ctx.grad(W);
    if (dW) {
      await recordMatmul(ctx.rec, { label: `${name} dW`, A: ctx.value(x), B: dpre, C: dW, M: K, N, K: M, transA: true, accumulate: true });
    }
    const db = b && ctx.grad(b);
    if (db) await recordBiasGrad(ctx.rec, `${name} db`, dpre, db, M, N);
    const dx = ctx.grad(x);
    if (dx) {
      await recordMatmul(ctx.rec, { label: `${name} dx`, A: dpre, B: ctx.operand(W), C: dx, M, N: K, K: N, transB: true, accumulate: ctx.accumulates(x) });
    }
  }
}
