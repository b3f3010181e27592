// Causal multi-head self-attention on the fused q,k,v projection (GPT-2 layout):
//   qkv [B, T, 3C] → out [B, T, C], heads of size HS = C / NH, scale 1/√HS, key j ≤ query t.
// The forward saves the log-sum-exp of each query row (lse [B, NH, T]); the backward recomputes the
// scores from q, k and lse, so no T×T matrix is ever stored (memory O(B·NH·T) beyond q, k, v and out).
import { ShapeError, type Graph, type Op, type OpContext, type Tensor } from '../graph/graph.ts';
import { recordAttentionForward, recordAttentionBackward, attentionScratchElements } from '../ops/attention.ts';

export function causalSelfAttention(g: Graph, qkv: Tensor, NH: number, name: string): Tensor {
  const [B, T, C3] = qkv.shape;
  if (qkv.shape.length !== 3 || C3 % 3 !== 0) throw new ShapeError(`${name}: expects qkv [B, T, 3C] but got ${qkv}`);
  const C = C3 / 3;
  if (C % NH !== 0) throw new ShapeError(`${name}: ${C} channels do not split into ${NH} heads`);
  const out = g.tensor(`${name}.out`, [B, T, C], 'activation');
  const lse = g.tensor(`${name}.lse`, [B, NH, T], 'activation', 'f32');
  g.add(new AttentionOp(name, qkv, out, lse, B, T, C, NH));
  return out;
}

class AttentionOp implements Op {
  readonly inputs: Tensor[];
  readonly params: Tensor[] = [];
  readonly outputs: Tensor[];
  readonly saved: Tensor[];

  constructor(
    readonly name: string,
    private readonly qkv: Tensor,
    private readonly out: Tensor,
    private readonly lse: Tensor,
    private readonly B: number,
    private readonly T: number,
    private readonly C: number,
    private readonly NH: number,
  ) {
    this.inputs = [qkv];
    this.outputs = [out, lse];
    this.saved = [qkv, out, lse];
  }

  temps(phase: 'forward' | 'backward'): number[] {
    return phase === 'backward' ? [attentionScratchElements(this.B, this.T, this.NH)] : [];
  }

  forward(ctx: OpContext): Promise<void> {
    const { B, T, C, NH } = this;
    return recordAttentionForward(ctx.rec, `${this.name} forward`, { qkv: ctx.value(this.qkv), out: ctx.value(this.out), lse: ctx.value(this.lse), B, T, C, NH });
  }

  async backward(ctx: OpContext): Promise<void> {
    const dout = ctx.grad(this.out);
    const dqkv = ctx.grad(this.qkv);
    if (!dout || !dqkv) return;
    const { B, T, C, NH } = this;
    await recordAttentionBackward(ctx.rec, `${this.name} backward`, {
      dout, qkv: ctx.value(this.qkv), out: ctx.value(this.out), lse: ctx.value(this.lse), dqkv, scratch: ctx.temp(0),
      B, T, C, NH, accumulate: ctx.accumulates(this.qkv),
    });
  }
}
