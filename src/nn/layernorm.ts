// LayerNorm over the last axis: out = (x − mean)·rstd·weight + bias, x [R, C], weight and bias [C]
// (GPT-2: biased variance, eps from the config). Forward saves mean and rstd [R] for the backward.
import { ShapeError, type Graph, type Layer, type Op, type OpContext, type Tensor } from '../graph/graph.ts';
import { recordLayerNormForward, recordLayerNormBackward } from '../ops/layernorm.ts';
import { constantInit } from './init.ts';

export class LayerNorm implements Layer {
  constructor(
    readonly C: number,
    readonly options: { eps?: number; name?: string } = {},
  ) {}

  apply(g: Graph, x: Tensor): Tensor {
    const name = g.layerName('layernorm', this.options.name);
    const C = this.C;
    if (x.shape[x.shape.length - 1] !== C) throw new ShapeError(`${name}: expects input [..., ${C}] but got ${x}`);
    const R = x.size / C;
    const weight = g.param(`${name}.weight`, [C], constantInit(1));
    const bias = g.param(`${name}.bias`, [C], constantInit(0));
    const out = g.tensor(`${name}.out`, x.shape, 'activation');
    const mean = g.tensor(`${name}.mean`, [R], 'activation');
    const rstd = g.tensor(`${name}.rstd`, [R], 'activation');
    g.add(new LayerNormOp(name, x, weight, bias, out, mean, rstd, R, C, this.options.eps ?? 1e-5));
    return out;
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
