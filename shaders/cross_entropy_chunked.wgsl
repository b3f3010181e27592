// Softmax cross-entropy with the classes split into chunks (a vocabulary too large for one binding: the
// logits are nc separate buffers [R, n_c], chunk c holding classes v0_c … v0_c + n_c − 1, v0_c = c·Vc).
// Same math as cross_entropy.wgsl:
//   losses[r]        = logsumexp(logits[r, :]) − logits[r, label[r]]
//   dlogits_c[r, v]  = (softmax(logits[r, :])[v0_c + v] − [v0_c + v == label[r]]) · grad_scale
// in three passes:
//   stats   (per chunk, one thread per row): stats[c, r] = (max_c, Σ exp(l − max_c) in blocks of 64, the
//           label's logit when the label is in the chunk, else 0)                       stats [nc, R, 3]
//   combine (one thread per row): M = max_c max_c, S = Σ_c s_c · exp(max_c − M);
//           losses[r] = log(S) − (l_label − M); rows[r] = (M, 1 / S)                   rows [R, 2]
//   grad    (per chunk, one thread per element): dlogits_c from rows
// Dispatch: stats, combine (ceil(R / 64), 1, 1); grad ceil(R·n / 256) workgroups of 256 folded into y past
// 65535 (params.stride).
// Mixed precision: logits and dlogits have element types L_T and G_T (f16 there; the math is f32), and with
// LOSS_SCALE the gradient is also multiplied by the dynamic loss scale, status[5] (lib/loss_scale).
#if {{F16}}
enable f16;
#endif
#include "lib/half"
struct Params { R: u32, n: u32, v0: u32, chunk: u32, nc: u32, Vc: u32, grad_scale: f32, stride: u32 }
@group(0) @binding(0) var<uniform> params: Params;

// ---- stats: logits (read), labels (read), stats (write) ----
@group(0) @binding(1) var<storage, read> s_logits: array<{{L_T}}>;
@group(0) @binding(2) var<storage, read> s_labels: array<i32>;
@group(0) @binding(3) var<storage, read_write> s_stats: array<f32>;

@compute @workgroup_size(64)
fn stats(@builtin(global_invocation_id) gid: vec3u) {
  let r = gid.x;
  if (r >= params.R) { return; }
  let n = params.n;
  let base = r * n;
  var mx = -3.402823e38;
  for (var v = 0u; v < n; v++) { mx = max(mx, f32(s_logits[base + v])); }
  var s = 0.0;
  for (var b0 = 0u; b0 < n; b0 += 64u) {
    var block = 0.0;
    for (var v = b0; v < min(b0 + 64u, n); v++) { block += exp(f32(s_logits[base + v]) - mx); }
    s += block;
  }
  let label = u32(s_labels[r]);
  var ll = 0.0;
  if (label >= params.v0 && label < params.v0 + n) { ll = f32(s_logits[base + label - params.v0]); }
  let o = (params.chunk * params.R + r) * 3u;
  s_stats[o] = mx;
  s_stats[o + 1u] = s;
  s_stats[o + 2u] = ll;
}

// ---- combine: stats (read), labels (read), losses (write), rows (write) ----
@group(0) @binding(1) var<storage, read> c_stats: array<f32>;
@group(0) @binding(2) var<storage, read> c_labels: array<i32>;
@group(0) @binding(3) var<storage, read_write> c_losses: array<f32>;
@group(0) @binding(4) var<storage, read_write> c_rows: array<f32>;

@compute @workgroup_size(64)
fn combine(@builtin(global_invocation_id) gid: vec3u) {
  let r = gid.x;
  let R = params.R;
  if (r >= R) { return; }
  var M = -3.402823e38;
  for (var c = 0u; c < params.nc; c++) { M = max(M, c_stats[(c * R + r) * 3u]); }
  var S = 0.0;
  for (var c = 0u; c < params.nc; c++) {
    let o = (c * R + r) * 3u;
    S += c_stats[o + 1u] * exp(c_stats[o] - M);
  }
  let label = u32(c_labels[r]);
  let ll = c_stats[((label / params.Vc) * R + r) * 3u + 2u];
  c_losses[r] = log(S) - (ll - M);
  c_rows[2u * r] = M;
  c_rows[2u * r + 1u] = 1.0 / S;
}

// ---- grad: logits (read), labels (read), rows (read), dlogits (write) ----
@group(0) @binding(1) var<storage, read> g_logits: array<{{L_T}}>;
@group(0) @binding(2) var<storage, read> g_labels: array<i32>;
@group(0) @binding(3) var<storage, read> g_rows: array<f32>;
@group(0) @binding(4) var<storage, read_write> g_dlogits: array<{{G_T}}>;
#include "lib/loss_scale"

@compute @workgroup_size(256)
fn grad(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.y * params.stride + gid.x;
  let n = params.n;
  if (i >= params.R * n) { return; }
  let r = i / n;
  let v = i % n;
  let p = exp(f32(g_logits[i]) - g_rows[2u * r]) * g_rows[2u * r + 1u];
  g_dlogits[i] = to_{{G_T}}((p - select(0.0, 1.0, params.v0 + v == u32(g_labels[r]))) * grad_scale());
}
