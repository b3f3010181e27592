// Token + position embedding: out[b, t, :] = wte[tokens[b, t], :] + wpe[t, :].
// tokens [B, T] int32 (the model input), wte [V, C], wpe [maxT, C]. The backward is deterministic without
// float atomics: the host groups the batch's positions by token id (aux tensors uploaded with the batch),
// and one pass per distinct token sums its rows in a fixed order.
import { ShapeError, type Graph, type Op, type OpContext, type Tensor } from '../graph/graph.ts';
import { recordEmbeddingForward, recordEmbeddingBackward, bucketArrays, embeddingBucketsInto, embeddingBucketElements } from '../ops/embedding.ts';
import type { Init } from './init.ts';
import { vocabRanges } from './vocab.ts';
import type { View } from '../gpu/buffers.ts';

export interface EmbeddingParams {
  wte: Tensor;
  wpe: Tensor;
}

export function tokenPositionEmbedding(
  g: Graph,
  tokens: Tensor,
  o: { V: number; maxT: number; C: number; init: Init; name?: { wte: string; wpe: string }; chunk?: number },
): { out: Tensor; params: EmbeddingParams } {
  if (tokens.dtype !== 'i32' || tokens.shape.length !== 2) throw new ShapeError(`embedding: expects int32 tokens [B, T] but got ${tokens}`);
  const [B, T] = tokens.shape;
  if (T > o.maxT) throw new ShapeError(`embedding: sequence length ${T} exceeds n_positions = ${o.maxT}`);
  const wte = g.param(o.name?.wte ?? 'wte.weight', [o.V, o.C], o.init);
  const wpe = g.param(o.name?.wpe ?? 'wpe.weight', [o.maxT, o.C], o.init);
  const out = g.tensor('embedding.out', [B, T, o.C], 'activation');
  const n = embeddingBucketElements(B, T);
  // Computed once per micro-batch (by stamp) into arrays allocated here, shared by the three aux tensors.
  const arrays = bucketArrays(o.V, B * T);
  let stamp = -1;
  const buckets = (x: ArrayLike<number>, start: number, length: number, s: number) => {
    if (s !== stamp) {
      embeddingBucketsInto(x, start, length, o.V, arrays);
      stamp = s;
    }
    return arrays;
  };
  const offsets = g.auxTensor('embedding.bucket_offsets', n, (x, st, len, s) => buckets(x, st, len, s).offsets);
  const ids = g.auxTensor('embedding.bucket_ids', n, (x, st, len, s) => buckets(x, st, len, s).ids);
  const positions = g.auxTensor('embedding.bucket_positions', n, (x, st, len, s) => buckets(x, st, len, s).positions);
  g.inputChecks.push((x) => {
    for (let i = 0; i < x.length; i++) {
      if (!(x[i] >= 0 && x[i] < o.V)) return `token id ${x[i]} at position ${i} is out of range [0, ${o.V}) (vocab_size)`;
    }
    return null;
  });
  // chunk > 0: wte is bound (and its gradient written) one vocabulary range [v0, v1) at a time.
  const ranges: [number, number][] = o.chunk ? vocabRanges(o.V, o.chunk) : [[0, o.V]];
  g.add(new EmbeddingOp(tokens, wte, wpe, out, offsets, ids, positions, B, T, o.C, ranges));
  return { out, params: { wte, wpe } };
}

class EmbeddingOp implements Op {
  readonly name = 'embedding';
  readonly inputs: Tensor[];
  readonly params: Tensor[];
  readonly outputs: Tensor[];
  readonly saved: Tensor[] = [];

  constructor(
    private readonly tokens: Tensor,
    private readonly wte: Tensor,
    private readonly wpe: Tensor,
    private readonly out: Tensor,
    private readonly offsets: Tensor,
    private readonly ids: Tensor,
    private readonly positions: Tensor,
    private readonly B: number,
    private readonly T: number,
    private readonly C: number,
    private readonly ranges: [number, number][],
  ) {
    this.inputs = [tokens];
    this.params = [wte, wpe];
    this.outputs = [out];
  }

  temps(): number[] {
    return [];
  }

  async forward(ctx: OpContext): Promise<void> {
    const { B, T, C } = this;
    const wte = ctx.value(this.wte);
    const chunked = this.ranges.length > 1;
    for (const [c, [v0, v1]] of this.ranges.entries()) {
      await recordEmbeddingForward(ctx.rec, chunked ? `embedding forward ${c}` : 'embedding forward', {
        tokens: ctx.value(this.tokens), wte: rows(wte, v0, v1, C), wpe: ctx.value(this.wpe), out: ctx.value(this.out), B, T, C, v0, v1,
      });
    }
  }

  async backward(ctx: OpContext): Promise<void> {
    const dout = ctx.grad(this.out);
    const dwte = ctx.grad(this.wte);
    const dwpe = ctx.grad(this.wpe);
    if (!dout) return;
    if (!dwte || !dwpe) {
      if (dwte || dwpe) throw new Error('embedding: freezing only one of wte and wpe is not supported');
      return;
    }
    const { B, T, C } = this;
    const chunked = this.ranges.length > 1;
    for (const [c, [v0, v1]] of this.ranges.entries()) {
      await recordEmbeddingBackward(ctx.rec, chunked ? `embedding backward ${c}` : 'embedding backward', {
        dout, offsets: ctx.value(this.offsets), ids: ctx.value(this.ids), positions: ctx.value(this.positions), dwte: rows(dwte, v0, v1, C), dwpe, B, T, C, v0, v1,
        wpe: c === 0,
      });
    }
  }
}

/** Rows [v0, v1) of a [V, C] view (the whole view when that is all of it). */
function rows(v: View, v0: number, v1: number, C: number): View {
  return { buffer: v.buffer, offset: v.offset + v0 * C * 4, size: (v1 - v0) * C * 4 };
}
