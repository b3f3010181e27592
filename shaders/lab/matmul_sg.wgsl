// Lab v7 — subgroup-shared operand, no workgroup memory, no barriers (CPU-driver kernel; needs the
// `subgroups` feature and a subgroup size ≥ 8, with all 8 lanes active).
// A workgroup of WG invocations owns one 8-column strip n0..n0+7 of C and WG·2 rows; each invocation
// computes 2 rows (m and m+WG) × 8 columns in 4 vec4 accumulators. K is walked 4 at a time: lane s of
// a subgroup loads ONE vec4 of B, row k0 + (s & 3), columns n0 + 4·(s >> 2) .. +3, so the subgroup
// holds the 4×8 B tile once, and every lane gets each B row by subgroupBroadcast (a register shuffle
// on CPU drivers) instead of loading it itself; each lane loads only its own A[m, k0..k0+3] (vec4).
// Loads per lane per k: 2 (A) + 1/4·4 (B) = 3 scalars for 16 FMAs (v5: 9 for 8).
// Needs K % 4 == 0 and N % 4 == 0 (vec4 bindings). NN only. Dispatch (ceil(N/8), ceil(M/(2·WG))).
enable subgroups;
struct Dims { M: u32, N: u32, K: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> A: array<vec4f>;
@group(0) @binding(2) var<storage, read> B: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> C: array<vec4f>;

const WG: u32 = {{WG}}u;

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u,
        @builtin(subgroup_invocation_id) sl: u32) {
  let N4 = dims.N / 4u;
  let K4 = dims.K / 4u;
  let m0 = wg.y * (2u * WG) + lid.x;
  let m1 = m0 + WG;
  let ra0 = min(m0, dims.M - 1u) * K4;
  let ra1 = min(m1, dims.M - 1u) * K4;
  let q = min(wg.x * 2u + (sl >> 2u), N4 - 1u);   // this lane's vec4 column of the B tile
  let kr = sl & 3u;                                // this lane's row of the B tile
  var c00 = vec4f(0.0); var c01 = vec4f(0.0); var c10 = vec4f(0.0); var c11 = vec4f(0.0);
  for (var k4 = 0u; k4 < K4; k4++) {
    let b = B[(k4 * 4u + kr) * N4 + q];
    let a0 = A[ra0 + k4];
    let a1 = A[ra1 + k4];
    var lo = subgroupBroadcast(b, 0u); var hi = subgroupBroadcast(b, 4u);
    c00 = fma(vec4f(a0.x), lo, c00); c01 = fma(vec4f(a0.x), hi, c01); c10 = fma(vec4f(a1.x), lo, c10); c11 = fma(vec4f(a1.x), hi, c11);
    lo = subgroupBroadcast(b, 1u); hi = subgroupBroadcast(b, 5u);
    c00 = fma(vec4f(a0.y), lo, c00); c01 = fma(vec4f(a0.y), hi, c01); c10 = fma(vec4f(a1.y), lo, c10); c11 = fma(vec4f(a1.y), hi, c11);
    lo = subgroupBroadcast(b, 2u); hi = subgroupBroadcast(b, 6u);
    c00 = fma(vec4f(a0.z), lo, c00); c01 = fma(vec4f(a0.z), hi, c01); c10 = fma(vec4f(a1.z), lo, c10); c11 = fma(vec4f(a1.z), hi, c11);
    lo = subgroupBroadcast(b, 3u); hi = subgroupBroadcast(b, 7u);
    c00 = fma(vec4f(a0.w), lo, c00); c01 = fma(vec4f(a0.w), hi, c01); c10 = fma(vec4f(a1.w), lo, c10); c11 = fma(vec4f(a1.w), hi, c11);
  }
  let q0 = wg.x * 2u;
  if (m0 < dims.M) {
    C[m0 * N4 + q0] = c00;
    if (q0 + 1u < N4) { C[m0 * N4 + q0 + 1u] = c01; }
  }
  if (m1 < dims.M) {
    C[m1 * N4 + q0] = c10;
    if (q0 + 1u < N4) { C[m1 * N4 + q0 + 1u] = c11; }
  }
}
