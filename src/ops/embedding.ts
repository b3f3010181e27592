// Records the token + position embedding kernels (shaders/embedding.wgsl), and groups a batch's
// positions by token id on the host (embeddingBuckets) so that the backward needs no float atomics.
import { grid1d, type Recorder } from '../gpu/program.ts';
import { typeDefines, type View } from '../gpu/buffers.ts';

/**
 * Int32 elements to allocate for each of offsets, ids and positions so one set of buffers serves every
 * batch of B·T tokens: N + 1 (offsets has exactly N + 1 entries, ids ≤ N, positions N).
 */
export function embeddingBucketElements(B: number, T: number): number {
  return B * T + 1;
}

/**
 * The positions of `tokens` (N = B·T, flat b·T + t) grouped by token id, by a stable counting sort:
 * bucket u holds positions[offsets[u] … offsets[u+1]) (ascending), all with token ids[u] (ids ascending).
 * U = ids.length distinct tokens. offsets always has N + 1 entries: offsets[0…U] are the bucket starts
 * and the end (N), and offsets[u] = N for every u > U, the sentinel that makes buckets past U empty on
 * the GPU (see shaders/embedding.wgsl). Upload all three arrays, whole, every batch (ids may be
 * uploaded as its U entries only). Throws on a token outside 0…V−1.
 */
export function embeddingBuckets(tokens: Int32Array, V: number): { offsets: Int32Array; ids: Int32Array; positions: Int32Array } {
  const b = bucketArrays(V, tokens.length);
  const U = embeddingBucketsInto(tokens, 0, tokens.length, V, b);
  return { offsets: b.offsets, ids: b.ids.slice(0, U), positions: b.positions };
}

export interface BucketArrays {
  count: Int32Array;
  offsets: Int32Array;
  ids: Int32Array;
  positions: Int32Array;
}

/** Arrays for embeddingBucketsInto, allocated once for a vocabulary of V and up to N positions. */
export function bucketArrays(V: number, N: number): BucketArrays {
  return { count: new Int32Array(V + 1), offsets: new Int32Array(N + 1), ids: new Int32Array(N), positions: new Int32Array(N) };
}

/**
 * embeddingBuckets over tokens[start … start+N) into preallocated arrays (no allocation): offsets (N+1
 * entries, padded with N past the last bucket), ids (the first U entries), positions; returns U.
 */
export function embeddingBucketsInto(tokens: ArrayLike<number>, start: number, N: number, V: number, b: BucketArrays): number {
  const count = b.count;
  count.fill(0);
  for (let i = 0; i < N; i++) {
    const tok = tokens[start + i];
    if (!(tok >= 0 && tok < V)) throw new Error(`embedding: token ${tok} at position ${i} is outside 0…${V - 1}`);
    count[tok + 1]++;
  }
  b.offsets.fill(N, 0, N + 1);
  // count → exclusive prefix sums (start of each token's run in positions)
  for (let v = 0; v < V; v++) count[v + 1] += count[v];
  let u = 0;
  for (let v = 0; v < V; v++) {
    if (count[v + 1] > count[v]) {
      b.ids[u] = v;
      b.offsets[u] = count[v];
      u++;
    }
  }
  // count[v] now serves as the next free slot of token v's run.
  for (let i = 0; i < N; i++) b.positions[count[tokens[start + i]]++] = i;
  return u;
}

/**
 * out[b, t, :] = wte[tokens[b, t], :] + wpe[t, :]. With a token range [v0, v1) (a vocabulary chunk), wte holds
 * rows v0…v1−1 only and only positions whose token lies in the range are written; default: all of [0, 2³²).
 */
export function recordEmbeddingForward(
  rec: Recorder,
  label: string,
  a: { tokens: View; wte: View; wpe: View; out: View; B: number; T: number; C: number; v0?: number; v1?: number },
): Promise<void> {
  const n = a.B * a.T * a.C;
  const g = grid1d(n);
  return rec.dispatch({
    label,
    shader: 'embedding',
    entry: 'forward',
    bindings: ['read', 'read', 'read', 'write'],
    uniform: [
      ['u32', a.B],
      ['u32', a.T],
      ['u32', a.C],
      ['u32', g.stride],
      ['u32', a.v0 ?? 0],
      ['u32', a.v1 ?? 0xffffffff],
    ],
    defines: typeDefines({ ACT_T: a.out }),
    resources: [a.tokens, a.wte, a.wpe, a.out],
    workgroups: g.workgroups,
    f16: true,
    cost: { flops: n, bytes: 4 * (3 * n + a.B * a.T) },
  });
}

/**
 * dwte[ids[u], :] += Σ_bucket dout[pos, :]; dwpe[t, :] += Σ_b dout[b, t, :]. Buffers from embeddingBuckets.
 * With a token range [v0, v1), dwte holds rows v0…v1−1 and buckets of other ids do nothing; wpe: false skips dwpe
 * (the other chunks of a split vocabulary).
 */
export async function recordEmbeddingBackward(
  rec: Recorder,
  label: string,
  a: { dout: View; offsets: View; ids: View; positions: View; dwte: View; dwpe: View; B: number; T: number; C: number; v0?: number; v1?: number; wpe?: boolean },
): Promise<void> {
  const { B, T, C } = a;
  const N = B * T;
  if (a.offsets.size < 4 * (N + 1)) throw new Error(`${label}: offsets holds ${a.offsets.size / 4} entries, needs ${N + 1}`);
  const gp = grid1d(T * C);
  if (a.wpe !== false) await rec.dispatch({
    label: `${label} dwpe`,
    shader: 'embedding',
    entry: 'backward_wpe',
    bindings: ['read', 'write'],
    uniform: [
      ['u32', B],
      ['u32', T],
      ['u32', C],
      ['u32', gp.stride],
      ['u32', 0],
      ['u32', 0],
    ],
    defines: typeDefines({ ACT_T: a.dout }),
    resources: [a.dout, a.dwpe],
    workgroups: gp.workgroups,
    f16: true,
    cost: { flops: N * C, bytes: 4 * (N * C + 2 * T * C) },
  });
  await rec.dispatch({
    label: `${label} dwte`,
    shader: 'embedding',
    entry: 'backward_wte',
    bindings: ['read', 'read', 'read', 'read', 'write'],
    uniform: [
      ['u32', B],
      ['u32', T],
      ['u32', C],
      ['u32', 0],
      ['u32', a.v0 ?? 0],
      ['u32', a.v1 ?? 0xffffffff],
    ],
    defines: typeDefines({ ACT_T: a.dout }),
    resources: [a.dout, a.offsets, a.ids, a.positions, a.dwte],
    workgroups: [Math.min(N, 65535), Math.ceil(N / 65535), 1],
    f16: true,
    cost: { flops: N * C, bytes: 4 * (3 * N * C + 3 * N) },
  });
}
