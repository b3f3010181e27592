// A scaled sum into one accumulating scalar: out[0] += scale · Σ_i x[i], i < n.
// Used to turn per-row losses into the batch's mean loss (out is cleared at the start of a step, and
// each micro-batch adds its share). One workgroup; the order of additions is fixed.
// Dispatch: (1, 1, 1).
struct Params { n: u32, scale: f32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

const WG: u32 = 256u;
#include "lib/reduce"

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3u) {
  let t = lid.x;
  var s = 0.0;
  for (var i = t; i < params.n; i += WG) { s += x[i]; }
  let total = workgroup_sum(s, t);
  if (t == 0u) { out[0] += params.scale * total; }
}
