// Mean squared error, forward and backward fused.
//   losses[r]  = Σ_d (pred[r, d] - tgt[r, d])²          r = 0 … R-1 rows, D outputs per row
//   dpred[r,d] = 2 (pred[r, d] - tgt[r, d]) · grad_scale
// grad_scale = 1 / (R · D · micro-batches): the mean over every element, as torch.nn.MSELoss().
// Mixed precision: pred and dpred have element types P_T and G_T (f16 there; the math is f32), and with LOSS_SCALE
// the gradient is also multiplied by the dynamic loss scale, status[5] (lib/loss_scale).
// One workgroup of 256 threads per row. Dispatch: (min(R, 65535), ceil(R / 65535), 1).
#if {{F16}}
enable f16;
#endif
#include "lib/half"
struct Params { R: u32, D: u32, grad_scale: f32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> pred: array<{{P_T}}>;
@group(0) @binding(2) var<storage, read> tgt: array<f32>;
@group(0) @binding(3) var<storage, read_write> losses: array<f32>;
@group(0) @binding(4) var<storage, read_write> dpred: array<{{G_T}}>;
#include "lib/loss_scale"

const WG: u32 = 256u;
#include "lib/reduce"

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let r = wg.y * 65535u + wg.x;
  if (r >= params.R) { return; }
  let t = lid.x;
  let base = r * params.D;
  var s = 0.0;
  let gs = grad_scale();
  for (var d = t; d < params.D; d += WG) {
    let e = f32(pred[base + d]) - tgt[base + d];
    s += e * e;
    dpred[base + d] = to_{{G_T}}(2.0 * e * gs);
  }
  let total = workgroup_sum(s, t);
  if (t == 0u) { losses[r] = total; }
}
