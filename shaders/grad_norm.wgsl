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
// A part that saw a non-finite value stores −1 (a gradient), −2 (a weight) or −3 (both) as its partial sum.
//
// LOSS_SCALE (mixed precision; params.growth > 0): the gradients are those of the loss × S, S = clip[5].
//   norm = sqrt(Σ g²) / S and the optimizer's factor clip[1] = clip factor / S, so the update sees the
//   unscaled gradients. A non-finite gradient (or Σ g² overflowing) is the scaled values overflowing f16:
//   the step is skipped and counted, S halves and clip[6] (good steps) resets, whatever the mode; it is not
//   a fault. After params.growth good steps in a row S doubles (up to 2^64). A non-finite loss or weight
//   is still a fault, handled by the mode as above. (torch.cuda.amp.GradScaler's rule.)
// Dispatch: partial_sumsq (P, 1, 1) with P = params.parts; finish (1, 1, 1).
//
// CPU adapters (lavapipe, SwiftShader), where workgroup memory and barriers are expensive, take the
// thread-per-part pair instead, with no workgroup memory, atomics or barriers:
//   partial_sumsq_threads: invocation c < P sums g[c], g[c + P], g[c + 2P], … into partials[c] (−1 where it
//                          saw a non-finite value), P = params.parts; the lanes a CPU runs side by side read
//                          adjacent vec4s, so each of their loads is one contiguous run of memory
//   finish_serial:         one invocation sums the partials in index order, in blocks of 64
// Both pairs sum in a fixed order, so each gives bitwise-repeatable results for a given n and P.
// Dispatch: partial_sumsq_threads (⌈P / 64⌉, 1, 1); finish_serial (1, 1, 1).
struct Params { n: u32, parts: u32, max_norm: f32, mode: u32, growth: u32 }
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
#include "lib/reduce"
var<workgroup> bad: atomic<u32>;

// NaN or ±Inf: all exponent bits set.
fn non_finite(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u;
}

// 1: a non-finite gradient, 2: a non-finite weight, from the largest exponent fields seen.
fn bad_flags(eg: u32, ew: u32) -> u32 {
  return select(0u, 1u, eg == 0x7f800000u) | select(0u, 2u, ew == 0x7f800000u);
}

// The flags of a partial sum: a negative partial is −(flags).
fn partial_flags(p: f32) -> u32 {
  return select(0u, u32(-p), p < 0.0);
}

// The clip factor and status words from Σ g² over the arena and the flags the parts saw (see the header).
fn conclude(total: f32, flags: u32) {
  var S = 1.0;
#if {{LOSS_SCALE}}
  S = clip[5];
#endif
  let norm = sqrt(total) / S;
  clip[0] = norm;
  clip[1] = select(1.0, min(1.0, params.max_norm / (norm + 1e-6)), params.max_norm > 0.0) / S;
#if {{CHECK}}
  if (arrayLength(&clip) >= 5u) {
    let grads_bad = (flags & 1u) != 0u || non_finite(total);
    let weights_bad = (flags & 2u) != 0u;
#if {{LOSS_SCALE}}
    let overflow = grads_bad;
    let found = weights_bad || non_finite(loss[0]);
    if (overflow) {
      clip[5] = S * 0.5;
      clip[6] = 0.0;
    } else {
      let good = clip[6] + 1.0;
      let grow = good >= f32(params.growth);
      clip[5] = select(S, min(S * 2.0, 18446744073709551616.0), grow);
      clip[6] = select(good, 0.0, grow);
    }
#else
    let overflow = false;
    let found = grads_bad || weights_bad || non_finite(loss[0]);
#endif
    let stopped = params.mode == 2u && clip[4] != 0.0;
    let skip = found || overflow || stopped;
    clip[2] = select(0.0, 1.0, skip);
    clip[3] = clip[3] + select(0.0, 1.0, skip);
    if (params.mode == 2u && found && !stopped) { clip[4] = sched.t; }
  }
#endif
}

@compute @workgroup_size(WG)
fn partial_sumsq(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  var s = 0.0;
  // The largest exponent fields seen: all ones (0x7f800000) means a NaN or an infinity.
  var eg = 0u;
  var ew = 0u;
  for (var i = wg.x * WG + lid.x; i < params.n; i += params.parts * WG) {
    let g = grads[i];
    s += square_sum(g);
#if {{CHECK}}
    // Branch-free (no short-circuit): a loop body without divergence stays vectorized on CPU adapters.
    eg = max(eg, exponent_bits(g));
    ew = max(ew, exponent_bits(weights[i]));
#endif
  }
  let flags = bad_flags(eg, ew);
  if (flags != 0u) { atomicOr(&bad, flags); }
  let total = workgroup_sum(s, lid.x); // its barriers also order the atomicOr before the load below
  if (lid.x == 0u) {
#if {{CHECK}}
    let b = atomicLoad(&bad) | select(0u, 1u, non_finite(total));
    if (b != 0u) { partials[wg.x] = -f32(b); return; }
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
    let f = partial_flags(p);
    if (f != 0u) { atomicOr(&bad, f); }
  }
  let total = workgroup_sum(s, lid.x);
  if (lid.x == 0u) { conclude(total, atomicLoad(&bad)); }
}

// Thread per part (CPU adapters): a grid stride of P with no workgroup memory; four accumulators per lane for vec4s.
@compute @workgroup_size(64)
fn partial_sumsq_threads(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= params.parts) { return; }
  var s = V();
  var eg = 0u;
  var ew = 0u;
  for (var i = c; i < params.n; i += params.parts) {
    let g = grads[i];
    s += g * g;
#if {{CHECK}}
    eg = max(eg, exponent_bits(g));
    ew = max(ew, exponent_bits(weights[i]));
#endif
  }
#if {{VEC4}}
  let total = (s.x + s.y) + (s.z + s.w);
#else
  let total = s;
#endif
#if {{CHECK}}
  let b = bad_flags(eg, ew) | select(0u, 1u, non_finite(total));
  if (b != 0u) { partials[c] = -f32(b); return; }
#endif
  partials[c] = total;
}

// One invocation (CPU adapters): the partials summed in index order, 64 at a time (error ~ (64 + P/64)·ε, not P·ε).
@compute @workgroup_size(1)
fn finish_serial() {
  var total = 0.0;
  var flags = 0u;
  for (var b = 0u; b < params.parts; b += 64u) {
    var s = 0.0;
    for (var i = b; i < min(b + 64u, params.parts); i++) {
      let p = partials[i];
      s += p;
      flags |= partial_flags(p); // a negative partial: a non-finite value in that part (sums are ≥ 0)
    }
    total += s;
  }
  conclude(total, flags);
}
