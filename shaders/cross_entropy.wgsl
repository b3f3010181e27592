// Softmax cross-entropy over the last axis, forward and backward fused, integer labels.
//   losses[r]     = logsumexp(logits[r, :]) - logits[r, label[r]]          r = 0 … R-1 rows, V classes
//   dlogits[r, v] = (softmax(logits[r, :])[v] - [v == label[r]]) · grad_scale
// grad_scale = 1 / (rows in the batch · micro-batches), so summed gradients are those of the mean loss.
// Stable for large logits: the row maximum is subtracted before exp. Labels are checked on the host.
// One workgroup of 256 threads per row; rows beyond 65535 fold into workgroup_id.y.
// Mixed precision: logits and dlogits have element types L_T and G_T (f16 there; the math is f32), and with
// LOSS_SCALE the gradient is also multiplied by the dynamic loss scale, status[5] (lib/loss_scale).
// Dispatch: (min(R, 65535), ceil(R / 65535), 1); main_rows (one thread per row, CPU adapters): (ceil(R / 64), 1, 1).
#if {{F16}}
enable f16;
#endif
#include "lib/half"
struct Params { R: u32, V: u32, grad_scale: f32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<{{L_T}}>;
@group(0) @binding(2) var<storage, read> labels: array<i32>;
@group(0) @binding(3) var<storage, read_write> losses: array<f32>;
@group(0) @binding(4) var<storage, read_write> dlogits: array<{{G_T}}>;
#include "lib/loss_scale"
fn logit(i: u32) -> f32 { return f32(logits[i]); }

const WG: u32 = 256u;
#include "lib/reduce"

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let r = wg.y * 65535u + wg.x;
  if (r >= params.R) { return; }   // uniform across the workgroup
  let t = lid.x;
  let V = params.V;
  let base = r * V;
  var mx = -3.402823e38;
  for (var v = t; v < V; v += WG) { mx = max(mx, logit(base + v)); }
  mx = workgroup_max(mx, t);
  var s = 0.0;
  for (var v = t; v < V; v += WG) { s += exp(logit(base + v) - mx); }
  s = workgroup_sum(s, t);
  let label = u32(labels[r]);
  let inv = 1.0 / s;
  let gs = grad_scale();
  for (var v = t; v < V; v += WG) {
    let p = exp(logit(base + v) - mx) * inv;
    dlogits[base + v] = to_{{G_T}}((p - select(0.0, 1.0, v == label)) * gs);
  }
  // (logit − max) first: it is exact or nearly so, while log(s) + max would round the loss to ulp(max)
  // (~1e-3 for logits near 1e4, a loss of 2.5623 read back as 2.5625).
  if (t == 0u) { losses[r] = log(s) - (logit(base + label) - mx); }
}

// One THREAD per row, no workgroup memory or barriers: for CPU implementations of WebGPU, where barriers
// are expensive. Same math and bindings. Dispatch: (ceil(R / 64), 1, 1).
@compute @workgroup_size(64)
fn main_rows(@builtin(global_invocation_id) gid: vec3u) {
  let r = gid.x;
  if (r >= params.R) { return; }
  let V = params.V;
  let base = r * V;
  var mx = -3.402823e38;
  for (var v = 0u; v < V; v++) { mx = max(mx, logit(base + v)); }
  // Blocked sum (blocks of 64, then the block sums): a plain running sum over V = 50257 terms loses ~1e-5
  // relative, the workgroup variant's tree sum does not; blocks keep the two variants equally accurate.
  var s = 0.0;
  for (var v0 = 0u; v0 < V; v0 += 64u) {
    var block = 0.0;
    for (var v = v0; v < min(v0 + 64u, V); v++) { block += exp(logit(base + v) - mx); }
    s += block;
  }
  let label = u32(labels[r]);
  let inv = 1.0 / s;
  let gs = grad_scale();
  for (var v = 0u; v < V; v++) {
    let p = exp(logit(base + v) - mx) * inv;
    dlogits[base + v] = to_{{G_T}}((p - select(0.0, 1.0, v == label)) * gs);
  }
  losses[r] = log(s) - (logit(base + label) - mx);
}
