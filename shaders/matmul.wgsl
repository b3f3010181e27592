// Tiled, register-blocked matrix product with a fused epilogue, for the forward pass and both backward products.
//
//   C[b] (=|+=) act( alpha · op(A[b]) · op(B[b]) + bias )        b = 0 … batch-1 (workgroup_id.z)
//
//   op(A) is M×K: A stored [M,K] row-major, or [K,M] when TRANS_A (so Aᵀ·dC needs no transpose kernel)
//   op(B) is K×N: B stored [K,N] row-major, or [N,K] when TRANS_B (so dC·Bᵀ likewise)
//   Linear layer, x [B,in], W [in,out]:  y = x·W + b   |  dx = dy·Wᵀ (TRANS_B)  |  dW += xᵀ·dy (TRANS_A, ACCUMULATE)
//
// Tiling: a workgroup of (BN/TN)×(BM/TM) threads computes a BM×BN tile of C, walking K in steps of BK
// through workgroup memory; each thread holds a TM×TN block of accumulators in registers, rows
// strided by BM/TM and columns by BN/TN so that neighbouring threads read neighbouring words.
// Edges: loads outside M, N or K read 0 and stores outside M×N are skipped, so any shape works.
// Epilogue (in order): × alpha (1 unless scaled, e.g. LoRA's alpha/rank); + bias[n] (HAS_BIAS); store the pre-activation to `pre` (STORE_PRE, needed by
// the backward of gelu/silu); act (ACT); += the old C (ACCUMULATE, for parameter gradients).
// Dispatch: (ceil(N/BN), ceil(M/BM), batch).
// Element types (defines A_T, B_T, C_T: f32, or f16 under mixed precision; C_T also types `pre`): loads
// convert to f32, products accumulate in f32, stores round once (lib/half).
#if {{F16}}
enable f16;
#endif
#include "lib/activation"
#include "lib/half"

struct Dims { M: u32, N: u32, K: u32, strideA: u32, strideB: u32, strideC: u32, alpha: f32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> A: array<{{A_T}}>;
@group(0) @binding(2) var<storage, read> B: array<{{B_T}}>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> C: array<{{C_T}}>;
@group(0) @binding(5) var<storage, read_write> pre: array<{{C_T}}>;

#include "lib/matmul_epilogue"

const BM: u32 = {{BM}}u;
const BN: u32 = {{BN}}u;
const BK: u32 = {{BK}}u;
const TM: u32 = {{TM}}u;
const TN: u32 = {{TN}}u;
const WX: u32 = BN / TN;   // threads along n
const WY: u32 = BM / TM;   // threads along m
const THREADS: u32 = WX * WY;

var<workgroup> As: array<f32, BK * BM>;   // As[k*BM + m]
var<workgroup> Bs: array<f32, BK * BN>;   // Bs[k*BN + n]

fn load_a(b: u32, m: u32, k: u32) -> f32 {
  if (m >= dims.M || k >= dims.K) { return 0.0; }
#if {{TRANS_A}}
  return f32(A[b * dims.strideA + k * dims.M + m]);
#else
  return f32(A[b * dims.strideA + m * dims.K + k]);
#endif
}

fn load_b(b: u32, k: u32, n: u32) -> f32 {
  if (k >= dims.K || n >= dims.N) { return 0.0; }
#if {{TRANS_B}}
  return f32(B[b * dims.strideB + n * dims.K + k]);
#else
  return f32(B[b * dims.strideB + k * dims.N + n]);
#endif
}

@compute @workgroup_size(WX, WY, 1)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let b = wg.z;
  let m0 = wg.y * BM;
  let n0 = wg.x * BN;
  let tid = lid.y * WX + lid.x;
  var acc: array<f32, TM * TN>;
  var a: array<f32, TM>;
  var w: array<f32, TN>;

  for (var k0 = 0u; k0 < dims.K; k0 += BK) {
    // Cooperative loads; the index order follows the stored layout so that neighbouring threads read neighbouring words.
    for (var i = tid; i < BM * BK; i += THREADS) {
#if {{TRANS_A}}
      let kk = i / BM; let mm = i % BM;
#else
      let mm = i / BK; let kk = i % BK;
#endif
      As[kk * BM + mm] = load_a(b, m0 + mm, k0 + kk);
    }
    for (var i = tid; i < BN * BK; i += THREADS) {
#if {{TRANS_B}}
      let nn = i / BK; let kk = i % BK;
#else
      let kk = i / BN; let nn = i % BN;
#endif
      Bs[kk * BN + nn] = load_b(b, k0 + kk, n0 + nn);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      for (var i = 0u; i < TM; i++) { a[i] = As[kk * BM + lid.y + i * WY]; }
      for (var j = 0u; j < TN; j++) { w[j] = Bs[kk * BN + lid.x + j * WX]; }
      for (var i = 0u; i < TM; i++) {
        for (var j = 0u; j < TN; j++) { acc[i * TN + j] = fma(a[i], w[j], acc[i * TN + j]); }
      }
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < TM; i++) {
    for (var j = 0u; j < TN; j++) { store(b, m0 + lid.y + i * WY, n0 + lid.x + j * WX, acc[i * TN + j]); }
  }
}
