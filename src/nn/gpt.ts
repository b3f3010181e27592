// GPT-2, exactly as Hugging Face's GPT2LMHeadModel (no dropout): token + position embedding, n_layer
// pre-LayerNorm blocks, a final LayerNorm, and the output head tied to the token embedding.
//   x = x + attn(ln_1(x));  x = x + mlp(ln_2(x))          attn: c_attn → causal attention → c_proj
//                                                          mlp:  c_fc with gelu_new → c_proj
// Each residual add runs fused with the LayerNorm that follows it (LayerNorm.applyResidual).
// Parameter names are Hugging Face's without the `transformer.` prefix (wte.weight, h.0.attn.c_attn.weight, …);
// Conv1D weights are stored (in, out) as there, which is also how Linear stores them.
import { ShapeError, type Graph, type Layer, type Op, type OpContext, type Tensor } from '../graph/graph.ts';
import { recordMatmul } from '../ops/matmul.ts';
import { Linear } from './linear.ts';
import { LayerNorm } from './layernorm.ts';
import { causalSelfAttention } from './attention.ts';
import { tokenPositionEmbedding } from './embedding.ts';
import { normalInit } from './init.ts';
import { vocabChunk, vocabRanges } from './vocab.ts';
import type { View } from '../gpu/buffers.ts';

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

export interface GPTOptions {
  /**
   * The largest storage binding to plan for (default: the device's maxStorageBufferBindingSize, which the
   * trainer gives the graph). When wte or the logits exceed it, they are split by vocabulary chunk.
   */
  maxBindingBytes?: number;
}

export class GPT implements Layer {
  readonly inputDtype = 'i32' as const;

  constructor(
    readonly config: GPTConfig,
    readonly lora?: LoraOptions,
    readonly options: GPTOptions = {},
  ) {
    checkGPTConfig(config);
  }

  /** tokens [B, T] int32 → logits [B, T, vocab_size]. */
  apply(g: Graph, tokens: Tensor): Tensor {
    const { vocab_size: V, n_positions, n_embd: C, n_layer: L, n_head: NH, layer_norm_epsilon: eps } = this.config;
    const std = 0.02;
    const projStd = std / Math.sqrt(2 * L); // GPT-2 scales the residual projections at init
    const limit = Math.min(this.options.maxBindingBytes ?? Infinity, g.maxBindingBytes ?? Infinity);
    // Vocabulary chunks (0: none): the embedding splits only when wte does not fit, the head also when the logits do not.
    // Chunks start at multiples of 64 rows (128 under mixed precision, so that the f16 copy's offsets align too).
    const rowAlign = g.activationDtype === 'f16' ? 128 : 64;
    const embedChunk = vocabChunk(V, C, 0, limit, rowAlign);
    const headChunk = vocabChunk(V, C, tokens.size, limit, rowAlign);
    const { out, params } = tokenPositionEmbedding(g, tokens, { V, maxT: n_positions, C, init: normalInit(std), chunk: embedChunk });
    if (embedChunk) g.params.find((p) => p.tensor === params.wte)!.bindElements = Math.max(embedChunk, headChunk) * C;
    const ln = (name: string) => new LayerNorm(C, { eps, name });
    const lora = this.lora;
    const adapted = (name: string) => (lora?.targets.some((t) => name.endsWith(`.${t}`)) ? lora : undefined);
    const linear = (t: Tensor, inF: number, outF: number, name: string, o: { gelu?: boolean; proj?: boolean } = {}) =>
      new Linear(inF, outF, { name, weightStd: o.proj ? projStd : std, activation: o.gelu ? 'gelu' : 'none', lora: adapted(name) }).apply(g, t);
    // Each residual is fused with the LayerNorm that reads it (the next block's ln_1, or ln_f after the last):
    // x is the residual stream, n its LayerNorm; the layer structure and parameters are GPT-2's unchanged.
    let x = out;
    let n = ln('h.0.ln_1').apply(g, x);
    for (let i = 0; i < L; i++) {
      const h = `h.${i}`;
      const attn = (t: Tensor) => linear(causalSelfAttention(g, linear(t, C, 3 * C, `${h}.attn.c_attn`), NH, `${h}.attn`), C, C, `${h}.attn.c_proj`, { proj: true });
      const mlp = (t: Tensor) => linear(linear(t, C, 4 * C, `${h}.mlp.c_fc`, { gelu: true }), 4 * C, C, `${h}.mlp.c_proj`, { proj: true });
      ({ sum: x, out: n } = ln(`${h}.ln_2`).applyResidual(g, x, attn(n), `${h}.residual_1`));
      ({ sum: x, out: n } = ln(i + 1 < L ? `h.${i + 1}.ln_1` : 'ln_f').applyResidual(g, x, mlp(n), `${h}.residual_2`));
    }
    return tiedHead(g, n, params.wte, headChunk);
  }
}

/**
 * logits = x · wteᵀ, x [B, T, C], wte [V, C] (the token embedding, shared). With a vocabulary chunk Vc > 0
 * the logits are the parts lm_head.out.<c> [R, Vc_c] of a whole that is never allocated (graph.parts).
 */
function tiedHead(g: Graph, x: Tensor, wte: Tensor, Vc: number): Tensor {
  const [V, C] = wte.shape;
  const R = x.size / C;
  const logits = g.tensor('lm_head.out', [...x.shape.slice(0, -1), V], 'activation');
  if (!Vc) {
    g.add(new TiedHeadOp(x, wte, logits, R, C, V));
    return logits;
  }
  const parts = vocabRanges(V, Vc).map(([v0, v1], c) => g.tensor(`lm_head.out.${c}`, [R, v1 - v0], 'activation'));
  g.parts.set(logits, parts);
  g.add(new ChunkedTiedHeadOp(x, wte, parts, R, C, V, Vc));
  return logits;
}

/** Elements [start, start + count) of a view. */
/** Elements start … start+count−1 of a view (f16 views: 2 bytes an element, the size rounded to whole words). */
function sub(v: View, start: number, count: number): View {
  if (v.dtype === 'f16') return { buffer: v.buffer, offset: v.offset + start * 2, size: Math.ceil(count / 2) * 4, dtype: 'f16' };
  return { buffer: v.buffer, offset: v.offset + start * 4, size: count * 4 };
}

/** The tied head per vocabulary chunk: logits_c = x · wte[v0:v1]ᵀ; dwte[v0:v1] += dlogits_cᵀ · x; dx = Σ_c dlogits_c · wte[v0:v1]. */
class ChunkedTiedHeadOp implements Op {
  readonly name = 'lm_head';
  readonly inputs: Tensor[];
  readonly params: Tensor[];
  readonly outputs: Tensor[];
  readonly saved: Tensor[];
  private readonly ranges: [number, number][];

  constructor(
    private readonly x: Tensor,
    private readonly wte: Tensor,
    private readonly parts: Tensor[],
    private readonly R: number,
    private readonly C: number,
    V: number,
    Vc: number,
  ) {
    this.inputs = [x];
    this.params = [wte];
    this.outputs = parts;
    this.saved = [x];
    this.ranges = vocabRanges(V, Vc);
  }

  temps(): number[] {
    return [];
  }

  async forward(ctx: OpContext): Promise<void> {
    const { R, C } = this;
    const wte = ctx.operand(this.wte);
    for (const [c, [v0, v1]] of this.ranges.entries()) {
      await recordMatmul(ctx.rec, { label: `lm_head forward ${c}`, A: ctx.value(this.x), B: sub(wte, v0 * C, (v1 - v0) * C), C: ctx.value(this.parts[c]), M: R, N: v1 - v0, K: C, transB: true });
    }
  }

  async backward(ctx: OpContext): Promise<void> {
    const { R, C } = this;
    const dwte = ctx.grad(this.wte);
    const dx = ctx.grad(this.x);
    const wte = ctx.operand(this.wte);
    let first = true;
    for (const [c, [v0, v1]] of this.ranges.entries()) {
      const dlogits = ctx.grad(this.parts[c]);
      if (!dlogits) continue;
      const n = v1 - v0;
      if (dwte) await recordMatmul(ctx.rec, { label: `lm_head dwte ${c}`, A: dlogits, B: ctx.value(this.x), C: sub(dwte, v0 * C, n * C), M: n, N: C, K: R, transA: true, accumulate: true });
      if (dx) await recordMatmul(ctx.rec, { label: `lm_head dx ${c}`, A: dlogits, B: sub(wte, v0 * C, n * C), C: dx, M: R, N: C, K: n, accumulate: !first || ctx.accumulates(this.x) });
      first = false;
    }
  }
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
    return recordMatmul(ctx.rec, { label: 'lm_head forward', A: ctx.value(this.x), B: ctx.operand(this.wte), C: ctx.value(this.logits), M: R, N: V, K: C, transB: true });
  }

  async backward(ctx: OpContext): Promise<void> {
    const dlogits = ctx.grad(this.logits);
    if (!dlogits) return;
    const { R, C, V } = this;
    const dwte = ctx.grad(this.wte);
    if (dwte) await recordMatmul(ctx.rec, { label: 'lm_head dwte', A: dlogits, B: ctx.value(this.x), C: dwte, M: V, N: C, K: R, transA: true, accumulate: true });
    const dx = ctx.grad(this.x);
    if (dx) await recordMatmul(ctx.rec, { label: 'lm_head dx', A: dlogits, B: ctx.operand(this.wte), C: dx, M: R, N: C, K: V, accumulate: ctx.accumulates(this.x) });
  }
}
