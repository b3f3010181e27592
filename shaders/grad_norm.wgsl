// Global-norm gradient clipping, computed on the GPU with no readback (torch.nn.utils.clip_grad_norm_).
//   partial_sumsq: partials[w] = Σ g[i]² over a grid-stride share of the gradient arena (P workgroups)
//   finish:        norm = sqrt(Σ_w partials[w]);  clip = [norm, min(1, max_norm / (norm + 1e-6))]
// The optimizer multiplies every gradient by clip[1]. Padding between tensors in the arena is zero.
// Dispatch: partial_sumsq (P, 1, 1) with P = params.parts; finish (1, 1, 1).
struct Params { n: u32, parts: u32, max_norm: f32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> grads: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;
@group(0) @binding(3) var<storage, read_write> clip: array<f32>;

const WG: u32 = 256u;
var<workgroup> red: array<f32, WG>;

fn workgroup_sum(x: f32, t: u32) -> f32 {
  red[t] = x;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (t < k) { red[t] = red[t] + red[t + k]; }
    workgroupBarrier();
  }
  return red[0];
}

@compute @workgroup_size(WG)
fn partial_sumsq(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  var s = 0.0;
  for (var i = wg.x * WG + lid.x; i < params.n; i += params.parts * WG) { let g = grads[i]; s += g * g; }
  let total = workgroup_sum(s, lid.x);
  if (lid.x == 0u) { partials[wg.x] = total; }
}

@compute @workgroup_size(WG)
fn finish(@builtin(local_invocation_id) lid: vec3u) {
  var s = 0.0;
  for (var i = lid.x; i < params.parts; i += WG) { s += partials[i]; }
  let total = workgroup_sum(s, lid.x);
  if (lid.x == 0u) {
    let norm = sqrt(total);
    clip[0] = norm;
    clip[1] = min(1.0, params.max_norm / (norm + 1e-6));
  }
}
