// The matmul epilogue, shared by matmul.wgsl and matmul_sg.wgsl (which declare `dims`, `bias`, `pre` and
// `C` of element type C_T, and include lib/activation and lib/half). Accumulation and the epilogue are f32. For output (m, n) of batch b, in order: × alpha; + bias[n] (HAS_BIAS);
// store the pre-activation (STORE_PRE); act (ACT); += the old C (ACCUMULATE). Outside M×N: nothing.
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
