// Residual connection: out = x + y. The backward routes dout to both branches (each assigned or
// accumulated, as the memory plan decides). A residual followed by a LayerNorm (GPT-2's blocks) is better
// built as one fused op: LayerNorm.applyResidual (src/nn/layernorm.ts).
import { ShapeError, type Graph, type Op, type OpContext, type Tensor } from '../graph/graph.ts';
import { recordAdd, recordCopyGrad } from '../ops/add.ts';

export function residual(g: Graph, x: Tensor, y: Tensor, name: string): Tensor {
  if (x.shape.join() !== y.shape.join()) throw new ShapeError(`${name}: cannot add ${x} and ${y}`);
  const out = g.tensor(`${name}.out`, x.shape, 'activation');
  g.add(new AddOp(name, x, y, out));
  return out;
}

class AddOp implements Op {
  readonly inputs: Tensor[];
  readonly params: Tensor[] = [];
  readonly outputs: Tensor[];
  readonly saved: Tensor[] = [];

  constructor(
    readonly name: string,
    private readonly x: Tensor,
    private readonly y: Tensor,
    private readonly out: Tensor,
  ) {
    this.inputs = [x, y];
    this.outputs = [out];
  }

  temps(): number[] {
    return [];
  }

  forward(ctx: OpContext): Promise<void> {
    return recordAdd(ctx.rec, `${this.name} forward`, { x: ctx.value(this.x), y: ctx.value(this.y), out: ctx.value(this.out), n: this.out.size });
  }

  async backward(ctx: OpContext): Promise<void> {
    const dout = ctx.grad(this.out);
    if (!dout) return;
    for (const t of [this.x, this.y]) {
      const d = ctx.grad(t);
      if (d) await recordCopyGrad(ctx.rec, `${this.name} backward → ${t.name}`, { src: dout, dst: d, n: t.size, accumulate: ctx.accumulates(t) });
    }
  }
}
