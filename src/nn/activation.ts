// Elementwise activation layers: ReLU, GELU (tanh approximation), SiLU, Tanh, Sigmoid.
// Forward y = f(x); backward dx (=|+=) dy·f'(·), from the saved output (relu, tanh, sigmoid) or input (gelu, silu).
// Placed right after a Linear in a Sequential, an activation is fused into that Linear's matmul instead.
import type { Graph, Layer, Op, OpContext, Tensor } from '../graph/graph.ts';
import { recordActivationForward, recordActivationBackward, savesInput, type Activation } from '../ops/activation.ts';

export class ActivationLayer implements Layer {
  constructor(
    readonly kind: Exclude<Activation, 'none'>,
    readonly name?: string,
  ) {}

  apply(g: Graph, x: Tensor): Tensor {
    const name = g.layerName(this.kind, this.name);
    const y = g.tensor(`${name}.out`, x.shape, 'activation');
    g.add(new ActivationOp(name, this.kind, x, y));
    return y;
  }
}

export class ReLU extends ActivationLayer {
  constructor(name?: string) {
    super('relu', name);
  }
}
export class GELU extends ActivationLayer {
  constructor(name?: string) {
    super('gelu', name);
  }
}
export class SiLU extends ActivationLayer {
  constructor(name?: string) {
    super('silu', name);
  }
}
export class Tanh extends ActivationLayer {
  constructor(name?: string) {
    super('tanh', name);
  }
}
export class Sigmoid extends ActivationLayer {
  constructor(name?: string) {
    super('sigmoid', name);
  }
}

class ActivationOp implements Op {
  readonly inputs: Tensor[];
  readonly params: Tensor[] = [];
  readonly outputs: Tensor[];
  readonly saved: Tensor[];
  temps(): number[] {
    return [];
  }

  constructor(
    readonly name: string,
    private readonly act: Activation,
    private readonly x: Tensor,
    private readonly y: Tensor,
  ) {
    this.inputs = [x];
    this.outputs = [y];
    this.saved = [savesInput(act) ? x : y];
  }

  forward(ctx: OpContext): Promise<void> {
    return recordActivationForward(ctx.rec, `${this.name} forward`, this.act, ctx.value(this.x), ctx.value(this.y), this.x.size);
  }

  async backward(ctx: OpContext): Promise<void> {
    const dy = ctx.grad(this.y);
    const dx = ctx.grad(this.x);
    if (!dy || !dx) return;
    const saved = ctx.value(this.saved[0]);
    await recordActivationBackward(ctx.rec, `${this.name} backward`, this.act, dy, saved, dx, this.x.size, ctx.accumulates(this.x));
  }
}
