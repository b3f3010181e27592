// Operand loads shared by matmul_sg.wgsl and matmul_rb.wgsl (which declare `dims`, A and B with element types
// A_T and B_T, as arrays of vec4s where VEC_A / VEC_B): one value of op(A) or op(B), and an invocation's four
// consecutive k of a row of op(A). Out-of-range k read 0; rows and columns are clamped into range (a clamped
// one only feeds outputs that are not stored).
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
