// Lab v9 — as v7 (subgroup-shared B, no workgroup memory, no barriers) with a wider strip:
// each invocation computes 2 rows (m, m+WG) × 16 columns in 8 vec4 accumulators (32 registers per
// 8 lanes). K is walked 4 at a time; lane s of a subgroup loads 2 vec4 of B, row k0 + (s & 3),
// columns n0 + 8·(s >> 2) .. +7, so the subgroup holds the 4×16 B tile once and each B row reaches
// every lane by subgroupBroadcast. Loads per lane per k: 2 (A) + 2 (B) scalars for 32 FMAs.
// Needs K % 4 == 0, N % 4 == 0, subgroup size ≥ 8. NN only. Dispatch (ceil(N/16), ceil(M/(2·WG))).
enable subgroups;
struct Dims { M: u32, N: u32, K: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> A: array<vec4f>;
@group(0) @binding(2) var<storage, read> B: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> C: array<vec4f>;

const WG: u32 = {{WG}}u;

var<private> c0: array<vec4f, 4>;   // row m,    columns n0 + 4j .. +3
var<private> c1: array<vec4f, 4>;   // row m+WG

// One k step: the two A values of this lane's rows times the 16-wide B row.
fn step(s0: f32, s1: f32, b0: vec4f, b1: vec4f, b2: vec4f, b3: vec4f) {
  c0[0] = fma(vec4f(s0), b0, c0[0]); c0[1] = fma(vec4f(s0), b1, c0[1]); c0[2] = fma(vec4f(s0), b2, c0[2]); c0[3] = fma(vec4f(s0), b3, c0[3]);
  c1[0] = fma(vec4f(s1), b0, c1[0]); c1[1] = fma(vec4f(s1), b1, c1[1]); c1[2] = fma(vec4f(s1), b2, c1[2]); c1[3] = fma(vec4f(s1), b3, c1[3]);
}

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u,
        @builtin(subgroup_invocation_id) sl: u32) {
  let N4 = dims.N / 4u;
  let K4 = dims.K / 4u;
  let m0 = wg.y * (2u * WG) + lid.x;
  let m1 = m0 + WG;
  let ra0 = min(m0, dims.M - 1u) * K4;
  let ra1 = min(m1, dims.M - 1u) * K4;
  let qa = min(wg.x * 4u + 2u * (sl >> 2u), N4 - 1u);
  let qb = min(wg.x * 4u + 2u * (sl >> 2u) + 1u, N4 - 1u);
  let kr = sl & 3u;
  for (var k4 = 0u; k4 < K4; k4++) {
    let r = (k4 * 4u + kr) * N4;
    let x = B[r + qa];
    let y = B[r + qb];
    let a0 = A[ra0 + k4];
    let a1 = A[ra1 + k4];
    step(a0.x, a1.x, subgroupBroadcast(x, 0u), subgroupBroadcast(y, 0u), subgroupBroadcast(x, 4u), subgroupBroadcast(y, 4u));
    step(a0.y, a1.y, subgroupBroadcast(x, 1u), subgroupBroadcast(y, 1u), subgroupBroadcast(x, 5u), subgroupBroadcast(y, 5u));
    step(a0.z, a1.z, subgroupBroadcast(x, 2u), subgroupBroadcast(y, 2u), subgroupBroadcast(x, 6u), subgroupBroadcast(y, 6u));
    step(a0.w, a1.w, subgroupBroadcast(x, 3u), subgroupBroadcast(y, 3u), subgroupBroadcast(x, 7u), subgroupBroadcast(y, 7u));
  }
  let q0 = wg.x * 4u;
  for (var j = 0u; j < 4u; j++) {
    if (q0 + j < N4) {
      if (m0 < dims.M) { C[m0 * N4 + q0 + j] = c0[j]; }
      if (m1 < dims.M) { C[m1 * N4 + q0 + j] = c1[j]; }
    }
  }
}
