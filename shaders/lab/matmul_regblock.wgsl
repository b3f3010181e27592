// Lab v4 — register-blocked, no workgroup memory, scalar loads: each invocation computes one row m of
// an 8-column strip of C (8 scalar accumulators). Invocations of a workgroup take WG consecutive rows
// and share the strip, so B[k, n0..n0+7] has the same address in every lane (a broadcast on SIMD-across-
// lanes CPU drivers) and only A[m, k] differs per lane. No barriers. Edges: rows/columns clamped for
// loads, stores skipped. NN only. Dispatch (ceil(N/8), ceil(M/WG)).
struct Dims { M: u32, N: u32, K: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;

const WG: u32 = {{WG}}u;

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let N = dims.N;
  let K = dims.K;
  let m = wg.y * WG + lid.x;
  let n0 = wg.x * 8u;
  let mr = min(m, dims.M - 1u);
  let last = N - 1u;
  let j1 = min(n0 + 1u, last); let j2 = min(n0 + 2u, last); let j3 = min(n0 + 3u, last);
  let j4 = min(n0 + 4u, last); let j5 = min(n0 + 5u, last); let j6 = min(n0 + 6u, last); let j7 = min(n0 + 7u, last);
  var c0 = 0.0; var c1 = 0.0; var c2 = 0.0; var c3 = 0.0; var c4 = 0.0; var c5 = 0.0; var c6 = 0.0; var c7 = 0.0;
  for (var k = 0u; k < K; k++) {
    let a = A[mr * K + k];
    let r = k * N;
    c0 = fma(a, B[r + n0], c0); c1 = fma(a, B[r + j1], c1); c2 = fma(a, B[r + j2], c2); c3 = fma(a, B[r + j3], c3);
    c4 = fma(a, B[r + j4], c4); c5 = fma(a, B[r + j5], c5); c6 = fma(a, B[r + j6], c6); c7 = fma(a, B[r + j7], c7);
  }
  if (m >= dims.M) { return; }
  let o = m * N + n0;
  let w = N - n0;
  C[o] = c0;
  if (w > 1u) { C[o + 1u] = c1; } if (w > 2u) { C[o + 2u] = c2; } if (w > 3u) { C[o + 3u] = c3; }
  if (w > 4u) { C[o + 4u] = c4; } if (w > 5u) { C[o + 5u] = c5; } if (w > 6u) { C[o + 6u] = c6; } if (w > 7u) { C[o + 7u] = c7; }
}
