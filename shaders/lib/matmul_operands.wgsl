// The bindings and operand loads shared by matmul_sg.wgsl and matmul_rb.wgsl (same contract as matmul.wgsl):
// dims; A and B with element types A_T and B_T, as arrays of vec4s where VEC_A / VEC_B; bias; C and `pre` of
// type C_T, as vec4s where VEC_C. The loads give one value of op(A) or op(B), or an invocation's four
// consecutive k of a row of op(A). Out-of-range k read 0; rows and columns are clamped into range (a clamped
// one only feeds outputs that are not stored).
struct Dims { M: u32, N: u32, K: u32, strideA: u32, strideB: u32, strideC: u32, alpha: f32 }
@group(0) @binding(0) var<uniform> dims: Dims;
#if {{VEC_A}}
@group(0) @binding(1) var<storage, read> A: array<vec4<{{A_T}}>>;
#else
@group(0) @binding(1) var<storage, read> A: array<{{A_T}}>;
#endif
#if {{VEC_B}}
@group(0) @binding(2) var<storage, read> B: array<vec4<{{B_T}}>>;
#else
@group(0) @binding(2) var<storage, read> B: array<{{B_T}}>;
#endif
@group(0) @binding(3) var<storage, read> bias: array<f32>;
#if {{VEC_C}}
@group(0) @binding(4) var<storage, read_write> C: array<vec4<{{C_T}}>>;
@group(0) @binding(5) var<storage, read_write> pre: array<vec4<{{C_T}}>>;
#else
@group(0) @binding(4) var<storage, read_write> C: array<{{C_T}}>;
@group(0) @binding(5) var<storage, read_write> pre: array<{{C_T}}>;
#endif

// a(m, k) of op(A), 0 for k ≥ K (m is already clamped into range).
fn a_at(base: u32, m: u32, k: u32) -> f32 {
#if {{VEC_A}}
  return 0.0;
#else
  let kc = min(k, dims.K - 1u);
#if {{TRANS_A}}
  let v = f32(A[base + kc * dims.M + m]);
#else
  let v = f32(A[base + m * dims.K + kc]);
#endif
  return select(0.0, v, k < dims.K);
#endif
}

// This invocation's a(m, k0 .. k0+3).
fn own_a(base: u32, m: u32, k0: u32) -> vec4f {
#if {{VEC_A}}
  return vec4f(A[(base + m * dims.K + k0) / 4u]);
#else
  return vec4f(a_at(base, m, k0), a_at(base, m, k0 + 1u), a_at(base, m, k0 + 2u), a_at(base, m, k0 + 3u));
#endif
}

// b(k, n) of op(B), 0 for k ≥ K, column clamped (a clamped column only feeds outputs that are not stored).
fn b_at(base: u32, k: u32, n: u32) -> f32 {
#if {{VEC_B}}
  return 0.0;
#else
  let kc = min(k, dims.K - 1u);
  let nc = min(n, dims.N - 1u);
#if {{TRANS_B}}
  let v = f32(B[base + nc * dims.K + kc]);
#else
  let v = f32(B[base + kc * dims.N + nc]);
#endif
  return select(0.0, v, k < dims.K);
#endif
}
