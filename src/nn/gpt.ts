// GPT-2, exactly as Hugging Face's GPT2LMHeadModel (no dropout): token + position embedding, n_layer
// pre-LayerNorm blocks, a final LayerNorm, and the output head tied to the token embedding.
//   x = x + attn(ln_1(x));  x = x + mlp(ln_2(x))          attn: c_attn → causal attention → c_proj
//                                                          mlp:  c_fc with gelu_new → c_proj
// Parameter names are Hugging Face's without the `transformer.` prefix (wte.weight, h.0.attn.c_attn.weight, …);
// Conv1D weights are stored (in, out) as there, which is also how Linear stores them.
import { ShapeError, type Graph, type Layer, type Op, type OpContext, type Tensor } from '../graph/graph.ts';
import { recordMatmul } from '../ops/matmul.ts';
import { Linear } from './linear.ts';
import { LayerNorm } from './layernorm.ts';
import { causalSelfAttention } from './attention.ts';
import { residual } from './residual.ts';
import { tokenPositionEmbedding } from './embedding.ts';
import { normalInit } from './init.ts';

export interface GPTConfig {
  vocab_size: number;
  n_positions: number;
  n_embd: number;
  n_layer: number;
  n_head: number;
  layer_norm_epsilon: number;
}

/** Low-rank adapters on the chosen projections (c_proj means both attn.c_proj and mlp.c_proj). */
export interface LoraOptions {
  rank: number;
  alpha: number;
  targets: ('c_attn' | 'c_proj' | 'c_fc')[];
}

export function checkGPTConfig(c: GPTConfig): void {
  for (const k of ['vocab_size', 'n_positions', 'n_embd', 'n_layer', 'n_head'] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1) throw new ShapeError(`GPT config: ${k} must be a positive integer, got ${c[k]}`);
  }
  if (c.n_embd % c.n_head !== 0) throw new ShapeError(`GPT config: n_embd ${c.n_embd} is not divisible by n_head ${c.n_head}`);
  if (!(c.layer_norm_epsilon > 0)) throw new ShapeError(`GPT config: layer_norm_epsilon must be > 0, got ${c.layer_norm_epsilon}`);
}

export class GPT implements Layer {
  readonly inputDtype = 'i32' as const;

  constructor(
    readonly config: GPTConfig,
    readonly lora?: LoraOptions,
  ) {
    checkGPTConfig(config);
  }

  /** tokens [B, T] int32 → logits [B, T, vocab_size]. */
  apply(g: Graph, tokens: Tensor): Tensor {
    const { vocab_size: V, n_positions, n_embd: C, n_layer: L, n_head: NH, layer_norm_epsilon: eps } = this.config;
    const std = 0.02;
    const projStd = std / Math.sqrt(2 * L); // GPT-2 scales the residual projections at init
    const { out, params } = tokenPositionEmbedding(g, tokens, { V, maxT: n_positions, C, init: normalInit(std) });
    let x = out;
    const ln = (t: Tensor, name: string) => new LayerNorm(C, { eps, name }).apply(g, t);
    const lora = this.lora;
    const adapted = (name: string) => (lora?.targets.some((t) => name.endsWith(`.${t}`)) ? lora : undefined);
    const linear = (t: Tensor, inF: number, outF: number, name: string, o: { gelu?: boolean; proj?: boolean } = {}) =>
      new Linear(inF, outF, { name, weightStd: o.proj ? projStd : std, activation: o.gelu ? 'gelu' : 'none', lora: adapted(name) }).apply(g, t);
    for (let i = 0; i < L; i++) {
      const h = `h.${i}`;
      const attn = (t: Tensor) => linear(causalSelfAttention(g, linear(t, C, 3 * C, `${h}.attn.c_attn`), NH, `${h}.attn`), C, C, `${h}.attn.c_proj`, { proj: true });
      const mlp = (t: Tensor) => linear(linear(t, C, 4 * C, `${h}.mlp.c_fc`, { gelu: true }), 4 * C, C, `${h}.mlp.c_proj`, { proj: true });
      x = residual(g, x, attn(ln(x, `${h}.ln_1`)), `${h}.residual_1`);
      x = residual(g, x, mlp(ln(x, `${h}.ln_2`)), `${h}.residual_2`);
    }
    return tiedHead(g, ln(x, 'ln_f'), params.wte);
  }
}

/** logits = x · wteᵀ, x [B, T, C], wte [V, C] (the token embedding, shared). */
function tiedHead(g: Graph, x: Tensor, wte: Tensor): Tensor {
  const [V, C] = wte.shape;
  const logits = g.tensor('lm_head.out', [...x.shape.slice(0, -1), V], 'activation');
  g.add(new TiedHeadOp(x, wte, logits, x.size / C, C, V));
  return logits;
}

class TiedHeadOp implements Op {
  readonly name = 'lm_head';
  readonly inputs: Tensor[];
  readonly params: Tensor[];
  readonly outputs: Tensor[];
  readonly saved: Tensor[];

  constructor(
    private readonly x: Tensor,
    private readonly wte: Tensor,
    private readonly logits: Tensor,
    private readonly R: number,
    private readonly C: number,
    private readonly V: number,
  ) {
    this.inputs = [x];
    this.params = [wte];
    this.outputs = [logits];
    this.saved = [x];
  }

  temps(): number[] {
    return [];
  }

  forward(ctx: OpContext): Promise<void> {
    const { R, C, V } = this;
    return recordMatmul(ctx.rec, { label: 'lm_head forward', A: ctx.value(this.x), B: ctx.value(this.wte), C: ctx.value(this.logits), M: R, N: V, K: C, transB: true });
  }

  async backward(ctx: OpContext): Promise<void> {
    const dlogits = ctx.grad(this.logits);
    if (!dlogits) return;
    const { R, C, V } = this;
    const dwte = ctx.grad(this.wte);
    if (dwte) await recordMatmul(ctx.rec, { label: 'lm_head dwte', A: dlogits, B: ctx.value(this.x), C: dwte, M: V, N: C, K: R, transA: true, accumulate: true });
    const dx = ctx.grad(this.x);
    if (dx) await recordMatmul(ctx.rec, { label: 'lm_head dx', A: dlogits, B: ctx.value(this.wte), C: dx, M: R, N: C, K: V, accumulate: ctx.accumulates(this.x) });
  }
}
