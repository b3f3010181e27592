// Register-blocked matmul for CPU WebGPU drivers whose subgroups are too narrow for matmul_sg.wgsl
// (SwiftShader: 4 lanes): no workgroup memory, no barriers, no subgroup operations. Same contract as
// matmul.wgsl:
//
//   C[b] (=|+=) act( alpha · op(A[b]) · op(B[b]) + bias )        b = 0 … batch-1 (workgroup_id.z)
//   op(A) is M×K: A stored [M,K], or [K,M] when TRANS_A;  op(B) is K×N: B stored [K,N], or [N,K] when TRANS_B.
//
// Why: on a CPU driver a barrier switches coroutines and every workgroup-memory access is a per-lane
// scalar loop, so the shared-memory tiles of matmul.wgsl cost more than they save. Here each invocation
// reads its operands straight from storage and keeps a TM×TN block of C in registers.
//
// Tiling: a workgroup of WG invocations owns the TN-column strip n0 .. n0+TN-1 of C (TN = 4 or 8) and
// TM·WG rows (TM = 1, 2 or 4); invocation i computes rows m0+i, m0+i+WG, … (TM of them) × the TN columns,
// in TM·TN/4 vec4 accumulators (c<row><half>: half 0 = columns n0..n0+3, half 1 = n0+4..n0+7).
// K is walked 4 at a time. Per step an invocation loads its own a(m, k0..k0+3) for each of its rows and
// the 4×TN tile of op(B) at (k0, n0). The B tile's addresses depend only on the workgroup and k, so they
// are the same in every lane (one load and a broadcast on SIMD-across-lanes drivers); only A differs
// per lane. Loads per k: TM (A) + TN (B, uniform) scalars for TM·TN FMAs.
// VEC_A / VEC_B bind A / B as array<vec4<T>> (one vector load instead of four scalar ones); the recorder
// sets them only where the layout allows (A: not TRANS_A, K % 4 == 0; B: N % 4 == 0, or K % 4 == 0 with
// TRANS_B; strides % 4 == 0). VEC_C (N % 4 == 0, strideC % 4 == 0) binds C and `pre` as
// array<vec4<C_T>> and stores 4 columns at a time (store4 in lib/matmul_epilogue).
// Edges: rows and columns out of range are clamped for loads, k ≥ K reads 0, stores outside M×N are
// skipped, so any M, N, K works.
// Epilogue (in order): × alpha; + bias[n] (HAS_BIAS); store the pre-activation to `pre` (STORE_PRE); act (ACT);
// += the old C (ACCUMULATE). Dispatch: (ceil(N/TN), ceil(M/(TM·WG)), batch).
// Element types (defines A_T, B_T, C_T: f32, or f16 under mixed precision; C_T also types `pre`): loads
// convert to f32, products accumulate in f32, stores round once (lib/half).
#if {{F16}}
enable f16;
#endif
#include "lib/activation"
#include "lib/half"

#include "lib/matmul_operands"

const WG: u32 = {{WG}}u;
const TM: u32 = {{TM}}u;
const TN: u32 = {{TN}}u;

// Accumulators: row r of this invocation's block, half h (see the header). Those the shape does not use stay 0.
var<private> c00: vec4f;
var<private> c01: vec4f;
var<private> c10: vec4f;
var<private> c11: vec4f;
var<private> c20: vec4f;
var<private> c21: vec4f;
var<private> c30: vec4f;
var<private> c31: vec4f;

// One k: s holds a(row r, k) in component r; lo / hi are b(k, n0 .. n0+3) / b(k, n0+4 .. n0+7).
fn step(s: vec4f, lo: vec4f, hi: vec4f) {
  c00 = fma(vec4f(s.x), lo, c00);
#if {{TN8}}
  c01 = fma(vec4f(s.x), hi, c01);
#endif
#if {{TM2}}
  c10 = fma(vec4f(s.y), lo, c10);
#if {{TN8}}
  c11 = fma(vec4f(s.y), hi, c11);
#endif
#endif
#if {{TM4}}
  c20 = fma(vec4f(s.z), lo, c20);
  c30 = fma(vec4f(s.w), lo, c30);
#if {{TN8}}
  c21 = fma(vec4f(s.z), hi, c21);
  c31 = fma(vec4f(s.w), hi, c31);
#endif
#endif
}



// B stored [K,N]: b(k, n .. n+3), n % 4 == 0.
fn b_row(base: u32, k: u32, n: u32) -> vec4f {
#if {{VEC_B}}
  let v = vec4f(B[(base + min(k, dims.K - 1u) * dims.N + min(n, dims.N - 4u)) / 4u]);
  return select(vec4f(0.0), v, k < dims.K);
#else
  return vec4f(b_at(base, k, n), b_at(base, k, n + 1u), b_at(base, k, n + 2u), b_at(base, k, n + 3u));
#endif
}

// B stored [N,K] (TRANS_B): b(k0 .. k0+3, n), one column of the tile.
fn b_col(base: u32, k0: u32, n: u32) -> vec4f {
#if {{VEC_B}}
  return vec4f(B[(base + min(n, dims.N - 1u) * dims.K + k0) / 4u]);
#else
  return vec4f(b_at(base, k0, n), b_at(base, k0 + 1u, n), b_at(base, k0 + 2u, n), b_at(base, k0 + 3u, n));
#endif
}

#include "lib/matmul_epilogue"

// Outputs (m, n .. n+3) from the accumulator v.
fn store_quad(b: u32, m: u32, n: u32, v: vec4f) {
#if {{VEC_C}}
  store4(b, m, n, v);
#else
  store(b, m, n, v.x); store(b, m, n + 1u, v.y); store(b, m, n + 2u, v.z); store(b, m, n + 3u, v.w);
#endif
}

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let b = wg.z;
  let baseA = b * dims.strideA;
  let baseB = b * dims.strideB;
  let n0 = wg.x * TN;
  let m0 = wg.y * (TM * WG) + lid.x;
  let last = dims.M - 1u;
  let mr0 = min(m0, last);
  let mr1 = min(m0 + WG, last);
  let mr2 = min(m0 + 2u * WG, last);
  let mr3 = min(m0 + 3u * WG, last);
  c00 = vec4f(0.0); c01 = vec4f(0.0); c10 = vec4f(0.0); c11 = vec4f(0.0);
  c20 = vec4f(0.0); c21 = vec4f(0.0); c30 = vec4f(0.0); c31 = vec4f(0.0);
  var a1 = vec4f(0.0);
  var a2 = vec4f(0.0);
  var a3 = vec4f(0.0);
  var hi0 = vec4f(0.0);
  var hi1 = vec4f(0.0);
  var hi2 = vec4f(0.0);
  var hi3 = vec4f(0.0);
  for (var k0 = 0u; k0 < dims.K; k0 += 4u) {
    let a0 = own_a(baseA, mr0, k0);
#if {{TM2}}
    a1 = own_a(baseA, mr1, k0);
#endif
#if {{TM4}}
    a2 = own_a(baseA, mr2, k0);
    a3 = own_a(baseA, mr3, k0);
#endif
#if {{TRANS_B}}
    // Columns n0 .. n0+TN-1 of the tile, each over k0 .. k0+3; rows of the tile are their components.
    let t0 = b_col(baseB, k0, n0); let t1 = b_col(baseB, k0, n0 + 1u);
    let t2 = b_col(baseB, k0, n0 + 2u); let t3 = b_col(baseB, k0, n0 + 3u);
    let lo0 = vec4f(t0.x, t1.x, t2.x, t3.x); let lo1 = vec4f(t0.y, t1.y, t2.y, t3.y);
    let lo2 = vec4f(t0.z, t1.z, t2.z, t3.z); let lo3 = vec4f(t0.w, t1.w, t2.w, t3.w);
#if {{TN8}}
    let t4 = b_col(baseB, k0, n0 + 4u); let t5 = b_col(baseB, k0, n0 + 5u);
    let t6 = b_col(baseB, k0, n0 + 6u); let t7 = b_col(baseB, k0, n0 + 7u);
    hi0 = vec4f(t4.x, t5.x, t6.x, t7.x); hi1 = vec4f(t4.y, t5.y, t6.y, t7.y);
    hi2 = vec4f(t4.z, t5.z, t6.z, t7.z); hi3 = vec4f(t4.w, t5.w, t6.w, t7.w);
#endif
#else
    let lo0 = b_row(baseB, k0, n0); let lo1 = b_row(baseB, k0 + 1u, n0);
    let lo2 = b_row(baseB, k0 + 2u, n0); let lo3 = b_row(baseB, k0 + 3u, n0);
#if {{TN8}}
    hi0 = b_row(baseB, k0, n0 + 4u); hi1 = b_row(baseB, k0 + 1u, n0 + 4u);
    hi2 = b_row(baseB, k0 + 2u, n0 + 4u); hi3 = b_row(baseB, k0 + 3u, n0 + 4u);
#endif
#endif
    step(vec4f(a0.x, a1.x, a2.x, a3.x), lo0, hi0);
    step(vec4f(a0.y, a1.y, a2.y, a3.y), lo1, hi1);
    step(vec4f(a0.z, a1.z, a2.z, a3.z), lo2, hi2);
    step(vec4f(a0.w, a1.w, a2.w, a3.w), lo3, hi3);
  }
  store_quad(b, m0, n0, c00);
#if {{TN8}}
  store_quad(b, m0, n0 + 4u, c01);
#endif
#if {{TM2}}
  store_quad(b, m0 + WG, n0, c10);
#if {{TN8}}
  store_quad(b, m0 + WG, n0 + 4u, c11);
#endif
#endif
#if {{TM4}}
  store_quad(b, m0 + 2u * WG, n0, c20);
  store_quad(b, m0 + 3u * WG, n0, c30);
#if {{TN8}}
  store_quad(b, m0 + 2u * WG, n0 + 4u, c21);
  store_quad(b, m0 + 3u * WG, n0 + 4u, c31);
#endif
#endif
}
