// Matmul for CPU WebGPU drivers (lavapipe/llvmpipe): no workgroup memory, no barriers; the shared
// operand is passed between lanes with subgroupBroadcast. Same contract as matmul.wgsl:
//
//   C[b] (=|+=) act( alpha · op(A[b]) · op(B[b]) + bias )        b = 0 … batch-1 (workgroup_id.z)
//   op(A) is M×K: A stored [M,K], or [K,M] when TRANS_A;  op(B) is K×N: B stored [K,N], or [N,K] when TRANS_B.
//
// Why: a CPU driver runs the lanes of a subgroup as one SIMD vector, but a storage load whose address
// it cannot prove uniform (anything computed from ids or loop counters) becomes a per-lane loop of
// bounds-checked scalar loads, ~10–20 instructions per lane and component; workgroup-memory loads
// likewise, and a barrier switches coroutines. So the kernel minimises loads per FMA: each lane loads
// only its own rows of A plus 1/8 of the B tile, and gets the rest of the B tile by subgroupBroadcast
// (a register shuffle there).
//
// Tiling: a workgroup of WG invocations owns the 8-column strip n0 .. n0+7 of C and 2·WG rows; each
// invocation computes rows m and m+WG × the 8 columns (4 vec4 accumulators = 16 SIMD registers).
// K is walked 4 at a time. Per step a lane loads its own a(m, k0..k0+3) and a(m+WG, ·) and ONE vec4 of
// the 4×8 B tile (held once by lanes 0–7 of the subgroup):
//   B stored [K,N]: lane s holds row k0 + (s & 3), columns n0 + 4·((s >> 2) & 1) .. +3;
//   B stored [N,K] (TRANS_B): lane s holds column n0 + (s & 7), rows k0 .. k0+3;
// then for each of the 4 k, the 8-wide B row is broadcast to all lanes and 16 FMAs are done.
// Loads per lane per k: 2 (A) + 1 (B) scalars for 16 FMAs (the shared-memory kernel: ~8 for 16).
// VEC_A / VEC_B bind A / B as array<vec4f> (one vector load instead of four scalar ones); the
// recorder sets them only where the layout allows (A: not TRANS_A, K % 4 == 0; B: N % 4 == 0, or
// K % 4 == 0 with TRANS_B; strides % 4 == 0). VEC_C (N % 4 == 0, strideC % 4 == 0) binds C and `pre` as
// array<vec4<C_T>> and stores 4 columns at a time (store4 in lib/matmul_epilogue).
// Needs the `subgroups` feature, a subgroup size ≥ 8 and WG a multiple of it (all lanes active at
// every broadcast: nothing returns early; out-of-range rows and columns are clamped for loads, k ≥ K
// reads 0, stores outside M×N are skipped, so any M, N, K works).
// Epilogue (in order): × alpha (1 unless scaled, e.g. LoRA's alpha/rank); + bias[n] (HAS_BIAS); store the pre-activation to `pre` (STORE_PRE); act (ACT);
// += the old C (ACCUMULATE). Dispatch: (ceil(N/8), ceil(M/(2·WG)), batch).
enable subgroups;
// Element types (defines A_T, B_T, C_T: f32, or f16 under mixed precision; C_T also types `pre`): loads
// convert to f32, products accumulate in f32, stores round once (lib/half).
#if {{F16}}
enable f16;
#endif
#include "lib/activation"
#include "lib/half"

#include "lib/matmul_operands"

const WG: u32 = {{WG}}u;

// Accumulators: row m (c00: columns n0..n0+3, c01: n0+4..n0+7) and row m+WG (c10, c11).
var<private> c00: vec4f;
var<private> c01: vec4f;
var<private> c10: vec4f;
var<private> c11: vec4f;

fn step(s0: f32, s1: f32, lo: vec4f, hi: vec4f) {
  c00 = fma(vec4f(s0), lo, c00);
  c01 = fma(vec4f(s0), hi, c01);
  c10 = fma(vec4f(s1), lo, c10);
  c11 = fma(vec4f(s1), hi, c11);
}



// This lane's vec4 of the 4×8 B tile at (k0, n0); see the header for the two layouts.
fn lane_b(base: u32, k0: u32, n0: u32, s: u32) -> vec4f {
#if {{TRANS_B}}
  let n = n0 + (s & 7u);
#if {{VEC_B}}
  return vec4f(B[(base + min(n, dims.N - 1u) * dims.K + k0) / 4u]);
#else
  return vec4f(b_at(base, k0, n), b_at(base, k0 + 1u, n), b_at(base, k0 + 2u, n), b_at(base, k0 + 3u, n));
#endif
#else
  let k = k0 + (s & 3u);
  let n = n0 + 4u * ((s >> 2u) & 1u);
#if {{VEC_B}}
  let v = vec4f(B[(base + min(k, dims.K - 1u) * dims.N + min(n, dims.N - 4u)) / 4u]);
  return select(vec4f(0.0), v, k < dims.K);
#else
  return vec4f(b_at(base, k, n), b_at(base, k, n + 1u), b_at(base, k, n + 2u), b_at(base, k, n + 3u));
#endif
#endif
}

// TRANS_B layout: B row k = component k of lanes 0..7.
fn row_lo(v: f32) -> vec4f {
  return vec4f(subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u), subgroupBroadcast(v, 2u), subgroupBroadcast(v, 3u));
}
fn row_hi(v: f32) -> vec4f {
  return vec4f(subgroupBroadcast(v, 4u), subgroupBroadcast(v, 5u), subgroupBroadcast(v, 6u), subgroupBroadcast(v, 7u));
}

#include "lib/matmul_epilogue"

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u,
        @builtin(subgroup_invocation_id) s: u32) {
  let b = wg.z;
  let baseA = b * dims.strideA;
  let baseB = b * dims.strideB;
  let n0 = wg.x * 8u;
  let m0 = wg.y * (2u * WG) + lid.x;
  let m1 = m0 + WG;
  let mr0 = min(m0, dims.M - 1u);
  let mr1 = min(m1, dims.M - 1u);
  c00 = vec4f(0.0); c01 = vec4f(0.0); c10 = vec4f(0.0); c11 = vec4f(0.0);
  for (var k0 = 0u; k0 < dims.K; k0 += 4u) {
    let a0 = own_a(baseA, mr0, k0);
    let a1 = own_a(baseA, mr1, k0);
    let t = lane_b(baseB, k0, n0, s);
#if {{TRANS_B}}
    step(a0.x, a1.x, row_lo(t.x), row_hi(t.x));
    step(a0.y, a1.y, row_lo(t.y), row_hi(t.y));
    step(a0.z, a1.z, row_lo(t.z), row_hi(t.z));
    step(a0.w, a1.w, row_lo(t.w), row_hi(t.w));
#else
    step(a0.x, a1.x, subgroupBroadcast(t, 0u), subgroupBroadcast(t, 4u));
    step(a0.y, a1.y, subgroupBroadcast(t, 1u), subgroupBroadcast(t, 5u));
    step(a0.z, a1.z, subgroupBroadcast(t, 2u), subgroupBroadcast(t, 6u));
    step(a0.w, a1.w, subgroupBroadcast(t, 3u), subgroupBroadcast(t, 7u));
#endif
  }
#if {{VEC_C}}
  store4(b, m0, n0, c00); store4(b, m0, n0 + 4u, c01);
  store4(b, m1, n0, c10); store4(b, m1, n0 + 4u, c11);
#else
  store(b, m0, n0, c00.x); store(b, m0, n0 + 1u, c00.y); store(b, m0, n0 + 2u, c00.z); store(b, m0, n0 + 3u, c00.w);
  store(b, m0, n0 + 4u, c01.x); store(b, m0, n0 + 5u, c01.y); store(b, m0, n0 + 6u, c01.z); store(b, m0, n0 + 7u, c01.w);
  store(b, m1, n0, c10.x); store(b, m1, n0 + 1u, c10.y); store(b, m1, n0 + 2u, c10.z); store(b, m1, n0 + 3u, c10.w);
  store(b, m1, n0 + 4u, c11.x); store(b, m1, n0 + 5u, c11.y); store(b, m1, n0 + 6u, c11.z); store(b, m1, n0 + 7u, c11.w);
#endif
}
