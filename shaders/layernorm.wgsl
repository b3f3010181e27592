// LayerNorm over the last axis (GPT-2: biased variance, eps from the config), forward and backward.
//   forward:          mean[r] = Σ_c x[r,c] / C      rstd[r] = 1 / sqrt(Σ_c (x[r,c] − mean[r])² / C + eps)
//                     out[r,c] = (x[r,c] − mean[r])·rstd[r]·weight[c] + bias[c]
//   backward (dinp):  xhat = (x − mean)·rstd,  g = dout·weight
//                     dinp[r,c] (=|+=) rstd[r]·(g[r,c] − Σ_c g/C − xhat[r,c]·Σ_c g·xhat/C)   (+= when ACCUMULATE)
//   backward (param): dweight[c] += Σ_r dout[r,c]·xhat[r,c]      dbias[c] += Σ_r dout[r,c]   (always accumulate)
// Layouts: inp, out, dout, dinp [R, C] row-major (R = B·T rows); weight, bias, dweight, dbias [C]; mean, rstd [R]
// (saved by the forward for the backward). The variance is two-pass (Σ (x − mean)²), not E[x²] − mean².
// Determinism: every sum is a fixed-order tree in workgroup memory (row entry points) or, for the
// parameter gradients, a fixed per-thread row stride followed by a fixed-order sum of the partials.
// Dispatch:
//   forward, backward_dinp: one workgroup of WG threads per row: (min(R, 65535), ceil(R / 65535), 1).
//   forward_rows, backward_dinp_rows: one THREAD per row, no workgroup memory or barriers (for CPU
//   implementations of WebGPU, where barriers are expensive): (ceil(R / 64), 1, 1).
//   backward_params: a workgroup of PC columns × PR row lanes per PC columns: (ceil(C / PC), 1, 1).
// Mixed precision: inp, out, dout and dinp have element type ACT_T (f16 there); weights, statistics and the
// arithmetic are f32.
#if {{F16}}
enable f16;
#endif
#include "lib/half"
struct Params { R: u32, C: u32, eps: f32 }
@group(0) @binding(0) var<uniform> params: Params;

const WG: u32 = 128u;
#include "lib/reduce"

// ---- forward: bindings inp, weight, bias (read); out, mean, rstd (write) ----
@group(0) @binding(1) var<storage, read> f_inp: array<{{ACT_T}}>;
@group(0) @binding(2) var<storage, read> f_weight: array<f32>;
@group(0) @binding(3) var<storage, read> f_bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> f_out: array<{{ACT_T}}>;
@group(0) @binding(5) var<storage, read_write> f_mean: array<f32>;
@group(0) @binding(6) var<storage, read_write> f_rstd: array<f32>;

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let r = wg.y * 65535u + wg.x;
  if (r >= params.R) { return; }   // uniform across the workgroup
  let t = lid.x;
  let C = params.C;
  let base = r * C;
  var s = 0.0;
  for (var c = t; c < C; c += WG) { s += f32(f_inp[base + c]); }
  let mean = workgroup_sum(s, t) / f32(C);
  var v = 0.0;
  for (var c = t; c < C; c += WG) { let d = f32(f_inp[base + c]) - mean; v += d * d; }
  let rstd = 1.0 / sqrt(workgroup_sum(v, t) / f32(C) + params.eps);
  for (var c = t; c < C; c += WG) {
    f_out[base + c] = to_{{ACT_T}}((f32(f_inp[base + c]) - mean) * rstd * f_weight[c] + f_bias[c]);
  }
  if (t == 0u) { f_mean[r] = mean; f_rstd[r] = rstd; }
}

// ---- backward_dinp: bindings dout, inp, weight, mean, rstd (read); dinp (write) ----
@group(0) @binding(1) var<storage, read> d_dout: array<{{ACT_T}}>;
@group(0) @binding(2) var<storage, read> d_inp: array<{{ACT_T}}>;
@group(0) @binding(3) var<storage, read> d_weight: array<f32>;
@group(0) @binding(4) var<storage, read> d_mean: array<f32>;
@group(0) @binding(5) var<storage, read> d_rstd: array<f32>;
@group(0) @binding(6) var<storage, read_write> d_dinp: array<{{ACT_T}}>;

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
    let xhat = (f32(d_inp[base + c]) - mean) * rstd;
    s += vec2f(g, g * xhat);
  }
  let m = workgroup_sum2(s, t) / f32(C);
  for (var c = t; c < C; c += WG) {
    let g = f32(d_dout[base + c]) * d_weight[c];
    let xhat = (f32(d_inp[base + c]) - mean) * rstd;
    let v = rstd * (g - m.x - xhat * m.y);
#if {{ACCUMULATE}}
    d_dinp[base + c] = to_{{ACT_T}}(f32(d_dinp[base + c]) + v);
#else
    d_dinp[base + c] = to_{{ACT_T}}(v);
#endif
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
  for (var c = 0u; c < C; c++) { s += f32(f_inp[base + c]); }
  let mean = s / f32(C);
  var v = 0.0;
  for (var c = 0u; c < C; c++) { let d = f32(f_inp[base + c]) - mean; v += d * d; }
  let rstd = 1.0 / sqrt(v / f32(C) + params.eps);
  for (var c = 0u; c < C; c++) { f_out[base + c] = to_{{ACT_T}}((f32(f_inp[base + c]) - mean) * rstd * f_weight[c] + f_bias[c]); }
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
    s += vec2f(g, g * (f32(d_inp[base + c]) - mean) * rstd);
  }
  let m = s / f32(C);
  for (var c = 0u; c < C; c++) {
    let g = f32(d_dout[base + c]) * d_weight[c];
    let v = rstd * (g - m.x - (f32(d_inp[base + c]) - mean) * rstd * m.y);
#if {{ACCUMULATE}}
    d_dinp[base + c] = to_{{ACT_T}}(f32(d_dinp[base + c]) + v);
#else
    d_dinp[base + c] = to_{{ACT_T}}(v);
#endif
  }
}

// ---- backward_params: bindings dout, inp, mean, rstd (read); dweight, dbias (write) ----
@group(0) @binding(1) var<storage, read> p_dout: array<{{ACT_T}}>;
@group(0) @binding(2) var<storage, read> p_inp: array<{{ACT_T}}>;
@group(0) @binding(3) var<storage, read> p_mean: array<f32>;
@group(0) @binding(4) var<storage, read> p_rstd: array<f32>;
@group(0) @binding(5) var<storage, read_write> p_dweight: array<f32>;
@group(0) @binding(6) var<storage, read_write> p_dbias: array<f32>;

const PC: u32 = 32u;   // columns per workgroup
const PR: u32 = 8u;    // row lanes: thread (x, y) sums rows y, y + PR, y + 2·PR, … of column x
var<workgroup> part: array<vec2f, PC * PR>;

@compute @workgroup_size(PC, PR)
fn backward_params(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let C = params.C;
  let c = wg.x * PC + lid.x;
  var s = vec2f(0.0);   // (Σ dout·xhat, Σ dout)
  if (c < C) {
    for (var r = lid.y; r < params.R; r += PR) {
      let g = f32(p_dout[r * C + c]);
      let xhat = (f32(p_inp[r * C + c]) - p_mean[r]) * p_rstd[r];
      s += vec2f(g * xhat, g);
    }
  }
  part[lid.y * PC + lid.x] = s;
  workgroupBarrier();
  if (lid.y == 0u && c < C) {
    var tot = part[lid.x];
    for (var k = 1u; k < PR; k++) { tot += part[k * PC + lid.x]; }
    p_dweight[c] += tot.x;
    p_dbias[c] += tot.y;
  }
}
