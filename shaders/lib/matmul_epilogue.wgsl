// The matmul epilogue, shared by matmul.wgsl, matmul_sg.wgsl and matmul_rb.wgsl (which declare `dims`, `bias`, `pre` and
// `C` of element type C_T, and include lib/activation and lib/half). Accumulation and the epilogue are f32. For output (m, n) of batch b, in order: × alpha; + bias[n] (HAS_BIAS);
// store the pre-activation (STORE_PRE); act (ACT); += the old C (ACCUMULATE). Outside M×N: nothing.
// VEC_C (matmul_sg.wgsl and matmul_rb.wgsl; N % 4 == 0, C and `pre` bound as array<vec4<C_T>>): store4 does the same for
// outputs (m, n .. n+3), n % 4 == 0, with one vector load and store each instead of four scalar ones.
#if {{VEC_C}}
fn store4(b: u32, m: u32, n: u32, acc: vec4f) {
  if (m >= dims.M || n >= dims.N) { return; }
  let idx = (b * dims.strideC + m * dims.N + n) / 4u;
  var v = dims.alpha * acc;
#if {{HAS_BIAS}}
  v += vec4f(bias[n], bias[n + 1u], bias[n + 2u], bias[n + 3u]);
#endif
#if {{STORE_PRE}}
  pre[idx] = vec4(to_{{C_T}}(v.x), to_{{C_T}}(v.y), to_{{C_T}}(v.z), to_{{C_T}}(v.w));
#endif
  v = vec4f(act_forward(v.x), act_forward(v.y), act_forward(v.z), act_forward(v.w));
#if {{ACCUMULATE}}
  v += vec4f(C[idx]);
#endif
  C[idx] = vec4(to_{{C_T}}(v.x), to_{{C_T}}(v.y), to_{{C_T}}(v.z), to_{{C_T}}(v.w));
}
#else
fn store(b: u32, m: u32, n: u32, acc: f32) {
  if (m >= dims.M || n >= dims.N) { return; }
  let idx = b * dims.strideC + m * dims.N + n;
  var v = dims.alpha * acc;
#if {{HAS_BIAS}}
  v += bias[n];
#endif
#if {{STORE_PRE}}
  pre[idx] = to_{{C_T}}(v);
#endif
  v = act_forward(v);
#if {{ACCUMULATE}}
  v += f32(C[idx]);
#endif
  C[idx] = to_{{C_T}}(v);
}
#endif
