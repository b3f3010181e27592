// Global-norm gradient clipping and the non-finite check, computed on the GPU with no readback
// (torch.nn.utils.clip_grad_norm_).
//   partial_sumsq: partials[w] = Σ g[i]² over a grid-stride share of the gradient arena (P workgroups)
//   finish:        norm = sqrt(Σ_w partials[w]);  clip[0..2) = [norm, scale], scale = min(1, max_norm / (norm + 1e-6))
//                  (max_norm = 0: no clipping, scale = 1)
// The optimizer multiplies every gradient by clip[1]. Padding between tensors in the arena is zero.
//
// CHECK (the trainer's nonFinite guard): partial_sumsq tests the exponent bits of every gradient and of
// every trained parameter (NaN and ±Inf are caught bit by bit, without relying on NaN propagating through
// sums or activations, which Vulkan does not guarantee: lavapipe's tanh(NaN) is finite) and writes −1
// for a workgroup that saw one; finish then also tests the sum (‖g‖² overflow) and the step's loss, and
// keeps the status words of `clip` (8 floats):
//   clip[2] = 1 if this step's update is to be skipped, else 0    (the optimizer returns early on it)
//   clip[3] += clip[2]                                             (skipped steps, never reset)
//   clip[4] = the first non-finite step (mode 2, 'stop': sticky; every later step is skipped too until
//             the host clears it); stays 0 in mode 1 ('skip'), where only that step is skipped.
// Dispatch: partial_sumsq (P, 1, 1) with P = params.parts; finish (1, 1, 1).
struct Params { n: u32, parts: u32, max_norm: f32, mode: u32 }
@group(0) @binding(0) var<uniform> params: Params;
// VEC4: the gradients (and the checked weights) are read as vec4s (n a multiple of 4); params.n then counts vec4s.
#if {{VEC4}}
alias V = vec4f;
fn square_sum(g: V) -> f32 { return dot(g, g); }
fn exponent_bits(x: V) -> u32 {
  let e = bitcast<vec4u>(x) & vec4u(0x7f800000u);
  return max(max(e.x, e.y), max(e.z, e.w));
}
#else
alias V = f32;
fn square_sum(g: V) -> f32 { return g * g; }
fn exponent_bits(x: V) -> u32 { return bitcast<u32>(x) & 0x7f800000u; }
#endif
@group(0) @binding(1) var<storage, read> grads: array<V>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;
@group(0) @binding(3) var<storage, read_write> clip: array<f32>;
#if {{CHECK}}
// The optimizer's step values (see optimizer.wgsl): t, the 1-based step number, names the faulty step.
struct Step { lr: f32, step_size: f32, bc2_sqrt: f32, t: f32 }
@group(0) @binding(4) var<storage, read> loss: array<f32>;
@group(0) @binding(5) var<uniform> sched: Step;
@group(0) @binding(6) var<storage, read> weights: array<V>; // the parameters, same window as grads
#endif

const WG: u32 = 256u;
var<workgroup> red: array<f32, WG>;
var<workgroup> bad: atomic<u32>;

fn workgroup_sum(x: f32, t: u32) -> f32 {
  red[t] = x;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (t < k) { red[t] = red[t] + red[t + k]; }
    workgroupBarrier();
  }
  return red[0];
}

// NaN or ±Inf: all exponent bits set.
fn non_finite(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u;
}

@compute @workgroup_size(WG)
fn partial_sumsq(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  var s = 0.0;
  var exponent = 0u; // the largest exponent field seen: all ones (0x7f800000) means a NaN or an infinity
  for (var i = wg.x * WG + lid.x; i < params.n; i += params.parts * WG) {
    let g = grads[i];
    s += square_sum(g);
#if {{CHECK}}
    // Branch-free (no short-circuit): a loop body without divergence stays vectorized on CPU adapters.
    exponent = max(exponent, max(exponent_bits(g), exponent_bits(weights[i])));
#endif
  }
  if (exponent == 0x7f800000u) { atomicOr(&bad, 1u); }
  let total = workgroup_sum(s, lid.x); // its barriers also order the atomicOr before the load below
  if (lid.x == 0u) {
#if {{CHECK}}
    if (atomicLoad(&bad) != 0u || non_finite(total)) { partials[wg.x] = -1.0; return; }
#endif
    partials[wg.x] = total;
  }
}

@compute @workgroup_size(WG)
fn finish(@builtin(local_invocation_id) lid: vec3u) {
  var s = 0.0;
  for (var i = lid.x; i < params.parts; i += WG) {
    let p = partials[i];
    s += p;
    if (p < 0.0) { atomicOr(&bad, 1u); } // −1: a non-finite gradient in that share (sums are ≥ 0)
  }
  let total = workgroup_sum(s, lid.x);
  if (lid.x == 0u) {
    let norm = sqrt(total);
    clip[0] = norm;
    clip[1] = select(1.0, min(1.0, params.max_norm / (norm + 1e-6)), params.max_norm > 0.0);
#if {{CHECK}}
    if (arrayLength(&clip) >= 5u) {
      let found = atomicLoad(&bad) != 0u || non_finite(total) || non_finite(loss[0]);
      let stopped = params.mode == 2u && clip[4] != 0.0;
      let skip = found || stopped;
      clip[2] = select(0.0, 1.0, skip);
      clip[3] = clip[3] + select(0.0, 1.0, skip);
      if (params.mode == 2u && found && !stopped) { clip[4] = sched.t; }
    }
#endif
  }
}
