// Residual add fused with the LayerNorm that follows it (GPT-2's pre-LN blocks: the residual stream s is
// both kept and normalised), forward and the row part of the backward. Same math as layernorm.wgsl on s:
//   forward:          s[r,c] = x[r,c] + y[r,c]                              (stored: the residual stream)
//                     mean[r] = Σ_c s[r,c] / C      rstd[r] = 1 / sqrt(Σ_c (s[r,c] − mean[r])² / C + eps)
//                     out[r,c] = (s[r,c] − mean[r])·rstd[r]·weight[c] + bias[c]
//   backward (dinp):  xhat = (s − mean)·rstd,  g = dout·weight
//                     ds[r,c] = rstd[r]·(g[r,c] − Σ_c g/C − xhat[r,c]·Σ_c g·xhat/C) + dsum[r,c]
//                     dx[r,c] (=|+=) ds[r,c]      dy[r,c] (=|+=) ds[r,c]
//                     dsum: the gradient s receives from its other consumers (read only when HAS_DSUM);
//                     dx is written only when WRITE_DX, and added into (+=) when ACCUMULATE_DX; dy likewise.
//   The parameter gradients are layernorm.wgsl's backward_params run on s.
// Layouts: x, y, s, out, dout, dsum, dx, dy [R, C] row-major (R = B·T rows); weight, bias [C]; mean, rstd [R]
// (saved by the forward for the backward). The variance is two-pass and every sum has the same fixed order as
// in layernorm.wgsl, so the results match add.wgsl followed by layernorm.wgsl operation for operation.
// Dispatch:
//   forward, backward_dinp: one workgroup of WG threads per row: (min(R, 65535), ceil(R / 65535), 1).
//   forward_rows, backward_dinp_rows: one THREAD per row, no workgroup memory or barriers (for CPU
//   implementations of WebGPU, where barriers are expensive): (ceil(R / 64), 1, 1).
// Mixed precision: x, y, s, out, dout, dsum, dx and dy have element type ACT_T (f16 there); weights,
// statistics and the arithmetic are f32.
#if {{F16}}
enable f16;
#endif
#include "lib/half"
struct Params { R: u32, C: u32, eps: f32 }
@group(0) @binding(0) var<uniform> params: Params;

const WG: u32 = 128u;
#include "lib/reduce"

// ---- forward: bindings x, y, weight, bias (read); s, out, mean, rstd (write) ----
@group(0) @binding(1) var<storage, read> f_x: array<{{ACT_T}}>;
@group(0) @binding(2) var<storage, read> f_y: array<{{ACT_T}}>;
@group(0) @binding(3) var<storage, read> f_weight: array<f32>;
@group(0) @binding(4) var<storage, read> f_bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> f_s: array<{{ACT_T}}>;
@group(0) @binding(6) var<storage, read_write> f_out: array<{{ACT_T}}>;
@group(0) @binding(7) var<storage, read_write> f_mean: array<f32>;
@group(0) @binding(8) var<storage, read_write> f_rstd: array<f32>;

// Each thread reads back only the elements of s it wrote itself, so no barrier is needed between the passes.
@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let r = wg.y * 65535u + wg.x;
  if (r >= params.R) { return; }   // uniform across the workgroup
  let t = lid.x;
  let C = params.C;
  let base = r * C;
  var s = 0.0;
  for (var c = t; c < C; c += WG) {
    let v = to_{{ACT_T}}(f32(f_x[base + c]) + f32(f_y[base + c]));   // the mean is that of s as stored
    f_s[base + c] = v;
    s += f32(v);
  }
  let mean = workgroup_sum(s, t) / f32(C);
  var v = 0.0;
  for (var c = t; c < C; c += WG) { let d = f32(f_s[base + c]) - mean; v += d * d; }
  let rstd = 1.0 / sqrt(workgroup_sum(v, t) / f32(C) + params.eps);
  for (var c = t; c < C; c += WG) {
    f_out[base + c] = to_{{ACT_T}}((f32(f_s[base + c]) - mean) * rstd * f_weight[c] + f_bias[c]);
  }
  if (t == 0u) { f_mean[r] = mean; f_rstd[r] = rstd; }
}

// ---- backward_dinp: bindings dout, dsum, s, weight, mean, rstd (read); dx, dy (write) ----
@group(0) @binding(1) var<storage, read> d_dout: array<{{ACT_T}}>;
@group(0) @binding(2) var<storage, read> d_dsum: array<{{ACT_T}}>;
@group(0) @binding(3) var<storage, read> d_s: array<{{ACT_T}}>;
@group(0) @binding(4) var<storage, read> d_weight: array<f32>;
@group(0) @binding(5) var<storage, read> d_mean: array<f32>;
@group(0) @binding(6) var<storage, read> d_rstd: array<f32>;
@group(0) @binding(7) var<storage, read_write> d_dx: array<{{ACT_T}}>;
@group(0) @binding(8) var<storage, read_write> d_dy: array<{{ACT_T}}>;

// Writes the gradient of s at element i to dx and dy, as DX and DY say.
fn write_grads(i: u32, v: f32) {
#if {{HAS_DSUM}}
  let ds = v + f32(d_dsum[i]);
#else
  let ds = v;
#endif
#if {{WRITE_DX}}
#if {{ACCUMULATE_DX}}
  d_dx[i] = to_{{ACT_T}}(f32(d_dx[i]) + ds);
#else
  d_dx[i] = to_{{ACT_T}}(ds);
#endif
#endif
#if {{WRITE_DY}}
#if {{ACCUMULATE_DY}}
  d_dy[i] = to_{{ACT_T}}(f32(d_dy[i]) + ds);
#else
  d_dy[i] = to_{{ACT_T}}(ds);
#endif
#endif
}

@compute @workgroup_size(WG)
fn backward_dinp(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let r = wg.y * 65535u + wg.x;
  if (r >= params.R) { return; }   // uniform across the workgroup
  let t = lid.x;
  let C = params.C;
  let base = r * C;
  let mean = d_mean[r];
  let rstd = d_rstd[r];
  var s = vec2f(0.0);
  for (var c = t; c < C; c += WG) {
    let g = f32(d_dout[base + c]) * d_weight[c];
    let xhat = (f32(d_s[base + c]) - mean) * rstd;
    s += vec2f(g, g * xhat);
  }
  let m = workgroup_sum2(s, t) / f32(C);
  for (var c = t; c < C; c += WG) {
    let g = f32(d_dout[base + c]) * d_weight[c];
    let xhat = (f32(d_s[base + c]) - mean) * rstd;
    write_grads(base + c, rstd * (g - m.x - xhat * m.y));
  }
}

// ---- one thread per row (same bindings as forward / backward_dinp) ----
@compute @workgroup_size(64)
fn forward_rows(@builtin(global_invocation_id) gid: vec3u) {
  let r = gid.x;
  if (r >= params.R) { return; }
  let C = params.C;
  let base = r * C;
  var s = 0.0;
  for (var c = 0u; c < C; c++) {
    let v = to_{{ACT_T}}(f32(f_x[base + c]) + f32(f_y[base + c]));   // the mean is that of s as stored
    f_s[base + c] = v;
    s += f32(v);
  }
  let mean = s / f32(C);
  var v = 0.0;
  for (var c = 0u; c < C; c++) { let d = f32(f_s[base + c]) - mean; v += d * d; }
  let rstd = 1.0 / sqrt(v / f32(C) + params.eps);
  for (var c = 0u; c < C; c++) { f_out[base + c] = to_{{ACT_T}}((f32(f_s[base + c]) - mean) * rstd * f_weight[c] + f_bias[c]); }
  f_mean[r] = mean;
  f_rstd[r] = rstd;
}

@compute @workgroup_size(64)
fn backward_dinp_rows(@builtin(global_invocation_id) gid: vec3u) {
  let r = gid.x;
  if (r >= params.R) { return; }
  let C = params.C;
  let base = r * C;
  let mean = d_mean[r];
  let rstd = d_rstd[r];
  var s = vec2f(0.0);
  for (var c = 0u; c < C; c++) {
    let g = f32(d_dout[base + c]) * d_weight[c];
    s += vec2f(g, g * (f32(d_s[base + c]) - mean) * rstd);
  }
  let m = s / f32(C);
  for (var c = 0u; c < C; c++) {
    let g = f32(d_dout[base + c]) * d_weight[c];
    write_grads(base + c, rstd * (g - m.x - (f32(d_s[base + c]) - mean) * rstd * m.y));
  }
}
