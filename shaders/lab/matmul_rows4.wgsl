// Lab v5 — vec4, no workgroup memory: A and B bound as array<vec4f> (needs K % 4 == 0 and N % 4 == 0).
// Each invocation computes TM=1 row × TN columns of C (TN = 8 or 16: 2 or 4 vec4 accumulators).
// The WG invocations of a workgroup take WG consecutive rows and share one column strip, so the B
// loads B[k, n0 .. n0+TN) are lane-uniform (one 16-byte load + broadcasts on CPU drivers) and
// each lane reads only its own A[m, k..k+3] as one vec4 per 4 k-steps. No barriers.
// Edges: row and vec4-column indices clamped for loads, stores skipped. NN only.
// Dispatch (ceil(N/TN), ceil(M/WG)).
struct Dims { M: u32, N: u32, K: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> A: array<vec4f>;
@group(0) @binding(2) var<storage, read> B: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> C: array<vec4f>;

const WG: u32 = {{WG}}u;
const TN: u32 = {{TN}}u;

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let N4 = dims.N / 4u;
  let K4 = dims.K / 4u;
  let m = wg.y * WG + lid.x;
  let mr = min(m, dims.M - 1u);
  let q0 = wg.x * (TN / 4u);
  let q1 = min(q0 + 1u, N4 - 1u);
  var c0 = vec4f(0.0); var c1 = vec4f(0.0);
#if {{TN16}}
  let q2 = min(q0 + 2u, N4 - 1u); let q3 = min(q0 + 3u, N4 - 1u);
  var c2 = vec4f(0.0); var c3 = vec4f(0.0);
#endif
  let arow = mr * K4;
  var r = 0u;
  for (var k4 = 0u; k4 < K4; k4++) {
    let a = A[arow + k4];
    for (var kk = 0u; kk < 4u; kk++) {
      let s = vec4f(a[kk]);
      c0 = fma(s, B[r + q0], c0); c1 = fma(s, B[r + q1], c1);
#if {{TN16}}
      c2 = fma(s, B[r + q2], c2); c3 = fma(s, B[r + q3], c3);
#endif
      r += N4;
    }
  }
  if (m >= dims.M) { return; }
  let o = m * N4;
  C[o + q0] = c0;
  if (q0 + 1u < N4) { C[o + q0 + 1u] = c1; }
#if {{TN16}}
  if (q0 + 2u < N4) { C[o + q0 + 2u] = c2; }
  if (q0 + 3u < N4) { C[o + q0 + 3u] = c3; }
#endif
}
