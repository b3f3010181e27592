// LayerNorm over the last axis: out = (x − mean)·rstd·weight + bias, x [R, C], weight and bias [C]
// (GPT-2: biased variance, eps from the config). Forward saves mean and rstd [R] for the backward.
// applyResidual fuses the residual add before a LayerNorm (GPT-2's pre-LN blocks): s = x + y is kept as the
// residual stream and normalised in the same pass; the backward routes LayerNorm's input gradient plus the
// gradient s gets from its other consumers to x and y in one pass.
import { ShapeError, type Graph, type Layer, type Op, type OpContext, type Tensor } from '../graph/graph.ts';
import { recordLayerNormForward, recordLayerNormBackward } from '../ops/layernorm.ts';
import { recordCopyGrad } from '../ops/add.ts';
import { constantInit } from './init.ts';

export class LayerNorm implements Layer {
  constructor(
    readonly C: number,
    readonly options: { eps?: number; name?: string } = {},
  ) {}

  apply(g: Graph, x: Tensor): Tensor {
    const t = this.tensors(g, x);
    g.add(new LayerNormOp(t.name, x, t.weight, t.bias, t.out, t.mean, t.rstd, t.R, this.C, this.options.eps ?? 1e-5));
    return t.out;
  }

  /**
   * sum = x + y (the residual connection `residual` names: its output is `${residual}.out`), and the LayerNorm
   * of sum, as one op: { sum, out }.
   */
  applyResidual(g: Graph, x: Tensor, y: Tensor, residual: string): { sum: Tensor; out: Tensor } {
    if (x.shape.join() !== y.shape.join()) throw new ShapeError(`${residual}: cannot add ${x} and ${y}`);
    if (x === y) throw new ShapeError(`${residual}: a residual that adds ${x} to itself cannot be fused with a LayerNorm`);
    const sum = g.tensor(`${residual}.out`, x.shape, 'activation');
    const t = this.tensors(g, sum);
    g.add(new ResidualLayerNormOp(`${residual} + ${t.name}`, x, y, sum, t.weight, t.bias, t.out, t.mean, t.rstd, t.R, this.C, this.options.eps ?? 1e-5));
    return { sum, out: t.out };
  }

  /** The layer's parameters and outputs for input x [..., C]. */
  private tensors(g: Graph, x: Tensor) {
    const name = g.layerName('layernorm', this.options.name);
    const C = this.C;
    if (x.shape[x.shape.length - 1] !== C) throw new ShapeError(`${name}: expects input [..., ${C}] but got ${x}`);
    const R = x.size / C;
    const weight = g.param(`${name}.weight`, [C], constantInit(1));
    const bias = g.param(`${name}.bias`, [C], constantInit(0));
    const out = g.tensor(`${name}.out`, x.shape, 'activation');
    const mean = g.tensor(`${name}.mean`, [R], 'activation', 'f32');
    const rstd = g.tensor(`${name}.rstd`, [R], 'activation', 'f32');
    return { name, R, weight, bias, out, mean, rstd };
  }
}

class LayerNormOp implements Op {
  readonly inputs: Tensor[];
  readonly params: Tensor[];
  readonly outputs: Tensor[];
  readonly saved: Tensor[];

  constructor(
    readonly name: string,
    private readonly x: Tensor,
    private readonly weight: Tensor,
    private readonly bias: Tensor,
    private readonly out: Tensor,
    private readonly mean: Tensor,
    private readonly rstd: Tensor,
    private readonly R: number,
    private readonly C: number,
    private readonly eps: number,
  ) {
    this.inputs = [x];
    this.params = [weight, bias];
    this.outputs = [out, mean, rstd];
    this.saved = [x, mean, rstd];
  }

  temps(phase: 'forward' | 'backward'): number[] {
    // Where the weight and bias gradients go when those parameters are frozen (e.g. LoRA fine-tuning).
    // (and the input gradient when the input needs none, e.g. right after frozen embeddings).
    return phase === 'backward' ? [this.C, this.C, this.R * this.C] : [];
  }

  forward(ctx: OpContext): Promise<void> {
    return recordLayerNormForward(ctx.rec, `${this.name} forward`, {
      inp: ctx.value(this.x), weight: ctx.value(this.weight), bias: ctx.value(this.bias), out: ctx.value(this.out),
      mean: ctx.value(this.mean), rstd: ctx.value(this.rstd), R: this.R, C: this.C, eps: this.eps,
    });
  }

  async backward(ctx: OpContext): Promise<void> {
    const dout = ctx.grad(this.out);
    if (!dout) return;
    const dinp = ctx.grad(this.x) ?? ctx.temp(2);
    const dweight = ctx.grad(this.weight) ?? ctx.temp(0);
    const dbias = ctx.grad(this.bias) ?? ctx.temp(1);
    await recordLayerNormBackward(ctx.rec, `${this.name} backward`, {
      dout, inp: ctx.value(this.x), weight: ctx.value(this.weight), mean: ctx.value(this.mean), rstd: ctx.value(this.rstd),
      dinp, dweight, dbias, R: this.R, C: this.C, accumulate: ctx.grad(this.x) !== null && ctx.accumulates(this.x),
    });
  }
}

/** sum = x + y; out = LayerNorm(sum). Backward: ds = dinp + (sum's gradient from its other consumers) → dx, dy. */
class ResidualLayerNormOp implements Op {
  readonly inputs: Tensor[];
  readonly params: Tensor[];
  readonly outputs: Tensor[];
  readonly saved: Tensor[];

  constructor(
    readonly name: string,
    private readonly x: Tensor,
    private readonly y: Tensor,
    private readonly sum: Tensor,
    private readonly weight: Tensor,
    private readonly bias: Tensor,
    private readonly out: Tensor,
    private readonly mean: Tensor,
    private readonly rstd: Tensor,
    private readonly R: number,
    private readonly C: number,
    private readonly eps: number,
  ) {
    this.inputs = [x, y];
    this.params = [weight, bias];
    this.outputs = [out, sum, mean, rstd];
    this.saved = [sum, mean, rstd];
  }

  temps(phase: 'forward' | 'backward'): number[] {
    // Where the weight and bias gradients go when those parameters are frozen (e.g. LoRA fine-tuning).
    return phase === 'backward' ? [this.C, this.C] : [];
  }

  forward(ctx: OpContext): Promise<void> {
    return recordLayerNormForward(ctx.rec, `${this.name} forward`, {
      inp: ctx.value(this.x), residual: { y: ctx.value(this.y), sum: ctx.value(this.sum) },
      weight: ctx.value(this.weight), bias: ctx.value(this.bias), out: ctx.value(this.out),
      mean: ctx.value(this.mean), rstd: ctx.value(this.rstd), R: this.R, C: this.C, eps: this.eps,
    });
  }

  async backward(ctx: OpContext): Promise<void> {
    const dout = ctx.grad(this.out);
    const dsum = ctx.grad(this.sum);
    const dx = ctx.grad(this.x);
    const dy = ctx.grad(this.y);
    if (!dout) {
      // Only the sum's other consumers send a gradient: route it as a plain residual does.
      if (!dsum) return;
      for (const [t, d] of [[this.x, dx], [this.y, dy]] as const) {
        if (d) await recordCopyGrad(ctx.rec, `${this.name} backward → ${t.name}`, { src: dsum, dst: d, n: t.size, accumulate: ctx.accumulates(t) });
      }
      return;
    }
    await recordLayerNormBackward(ctx.rec, `${this.name} backward`, {
      dout, inp: ctx.value(this.sum), weight: ctx.value(this.weight), mean: ctx.value(this.mean), rstd: ctx.value(this.rstd),
      dweight: ctx.grad(this.weight) ?? ctx.temp(0), dbias: ctx.grad(this.bias) ?? ctx.temp(1), R: this.R, C: this.C,
      residual: { dsum, dx, accumulateX: dx !== null && ctx.accumulates(this.x), dy, accumulateY: dy !== null && ctx.accumulates(this.y) },
    });
  }
}
