// Token + position embedding (GPT-2), forward and a deterministic backward without float atomics.
//   forward:       out[b,t,c] = wte[tokens[b,t], c] + wpe[t, c]
//   backward_wpe:  dwpe[t,c] += Σ_{b = 0…B−1} dout[b,t,c]                       (b in increasing order)
//   backward_wte:  dwte[ids[u], c] += Σ_{p = offsets[u] … offsets[u+1]−1} dout[positions[p], c]   (p increasing)
// Layouts: tokens [B, T] i32 (checked on the host to lie in 0…V−1); wte, dwte [V, C]; wpe, dwpe [maxT, C]
// (rows 0…T−1 used); out, dout [B, T, C]; N = B·T. dwte and dwpe always accumulate.
// Buckets (llm.c's encoder_backward, the grouping done on the host by embeddingBuckets in src/ops/embedding.ts):
// the N positions sorted by token id (stable): positions [N] i32 (flat b·T + t); ids [U] i32 the U distinct
// token ids, ascending; offsets [N+1] i32, bucket u = positions[offsets[u] … offsets[u+1]). The number of
// buckets U changes per batch but the recorded dispatch cannot, so it is sized for the worst case (N
// buckets) and U reaches the GPU through the SENTINEL PADDING of offsets: offsets always has N+1 entries,
// offsets[u] = N for every u ≥ U, so a bucket past U is empty (offsets[u] = offsets[u+1]) and its
// workgroup exits before reading ids[u] (whose slot may hold a stale id from an earlier batch). Every id
// has exactly one bucket, so no two workgroups write the same row of dwte: no atomics, no races, and
// each row's sum has a fixed order. (A count in a leading word would need a second convention for
// where bucket 0 starts; padding keeps offsets a plain CSR array that is fully rewritten every batch.)
// Dispatch: forward, backward_wpe: ceil(n / 256) workgroups of 256 (n = N·C, resp. T·C), folded into y
// past 65535 (params.stride); backward_wte: one workgroup of 64 threads per bucket slot,
// (min(N, 65535), ceil(N / 65535), 1), threads striding over the C columns.
// Vocabulary chunks: [v0, v1) is the token range of this dispatch (all tokens: 0, 2³²−1), and wte / dwte hold
// rows v0…v1−1 only (a model whose wte exceeds one binding runs forward and backward_wte once per chunk):
// forward writes only positions whose token is in the range (each position by exactly one chunk), and
// backward_wte buckets of ids outside it do nothing.
// Mixed precision: out and dout have element type ACT_T (f16 there); the tables and their gradients are f32.
#if {{F16}}
enable f16;
#endif
#include "lib/half"
struct Params { B: u32, T: u32, C: u32, stride: u32, v0: u32, v1: u32 }
@group(0) @binding(0) var<uniform> params: Params;

// ---- forward: bindings tokens, wte, wpe (read); out (write) ----
@group(0) @binding(1) var<storage, read> f_tokens: array<i32>;
@group(0) @binding(2) var<storage, read> f_wte: array<f32>;
@group(0) @binding(3) var<storage, read> f_wpe: array<f32>;
@group(0) @binding(4) var<storage, read_write> f_out: array<{{ACT_T}}>;

@compute @workgroup_size(256)
fn forward(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.y * params.stride + gid.x;
  let C = params.C;
  if (i >= params.B * params.T * C) { return; }
  let row = i / C;
  let c = i % C;
  let t = row % params.T;
  let tok = u32(f_tokens[row]);
  if (tok < params.v0 || tok >= params.v1) { return; }
  f_out[i] = to_{{ACT_T}}(f_wte[(tok - params.v0) * C + c] + f_wpe[t * C + c]);
}

// ---- backward_wpe: bindings dout (read); dwpe (write) ----
@group(0) @binding(1) var<storage, read> p_dout: array<{{ACT_T}}>;
@group(0) @binding(2) var<storage, read_write> p_dwpe: array<f32>;

@compute @workgroup_size(256)
fn backward_wpe(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.y * params.stride + gid.x;   // t·C + c
  let TC = params.T * params.C;
  if (i >= TC) { return; }
  var s = 0.0;
  for (var b = 0u; b < params.B; b++) { s += f32(p_dout[b * TC + i]); }
  p_dwpe[i] += s;
}

// ---- backward_wte: bindings dout, offsets, ids, positions (read); dwte (write) ----
@group(0) @binding(1) var<storage, read> w_dout: array<{{ACT_T}}>;
@group(0) @binding(2) var<storage, read> w_offsets: array<i32>;
@group(0) @binding(3) var<storage, read> w_ids: array<i32>;
@group(0) @binding(4) var<storage, read> w_positions: array<i32>;
@group(0) @binding(5) var<storage, read_write> w_dwte: array<f32>;

const WT: u32 = 64u;

@compute @workgroup_size(WT)
fn backward_wte(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let u = wg.y * 65535u + wg.x;
  if (u >= params.B * params.T) { return; }
  let start = u32(w_offsets[u]);
  let end = u32(w_offsets[u + 1u]);
  if (start >= end) { return; }   // an empty bucket: u ≥ U (sentinel padding)
  let C = params.C;
  let id = u32(w_ids[u]);
  if (id < params.v0 || id >= params.v1) { return; }
  let row = (id - params.v0) * C;
  for (var c = lid.x; c < C; c += WT) {
    var s = 0.0;
    for (var p = start; p < end; p++) { s += f32(w_dout[u32(w_positions[p]) * C + c]); }
    w_dwte[row + c] += s;
  }
}
