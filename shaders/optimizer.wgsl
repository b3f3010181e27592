// Optimizer updates over a contiguous range of the packed parameter arena, torch.optim semantics.
// One dispatch per parameter group (same hyper-parameters); g = grad · clip[1] (global-norm clipping).
//
// adam (torch.optim.Adam / AdamW):
//   DECOUPLED (AdamW): p ← p · (1 − lr·wd)        else (Adam, L2): g ← g + wd·p
//   m ← β1·m + (1−β1)·g;   v ← β2·v + (1−β2)·g²
//   p ← p − (lr / (1−β1^t)) · m / (sqrt(v) / sqrt(1−β2^t) + eps)
// sgd (torch.optim.SGD):
//   g ← g + wd·p;  buf ← g at t = 1, else μ·buf + (1−dampening)·g   (momentum μ ≠ 0; buf lives in m)
//   g ← g + μ·buf (nesterov) or buf;   p ← p − lr·g
// The step values in `sched` (lr from the schedule, bias corrections) written each step on the host.
// Non-finite guard: where `clip` holds the status words (≥ 3 floats, see grad_norm.wgsl), clip[2] ≠ 0
// means this step's loss or gradients were not finite: every thread returns before touching params, m
// or v, so the step leaves them bitwise as they were (the test is uniform: one load, no divergence).
// VEC4: params, grads, m and v are bound as array<vec4f> and each thread updates 4 consecutive elements
// (offset and count then count vec4s); the recorder chooses it where the window starts and ends on
// 4-element boundaries.
// Dispatch: grid of 256-thread workgroups covering grp.count, rows of grp.stride threads.
struct Step { lr: f32, step_size: f32, bc2_sqrt: f32, t: f32 }
// one_minus_beta1/2 and one_minus_dampening are computed in f64 on the host: 1 − f32(0.999) in f32 is
// 0.000999987 (1.3e-5 relative error, 1.7e-4 for β2 = 0.9999), which would bias v against the host's
// exact bias correction 1 − β2^t.
struct Group { offset: u32, count: u32, stride: u32, beta1: f32, one_minus_beta1: f32, beta2: f32,
               one_minus_beta2: f32, eps: f32, weight_decay: f32, momentum: f32, one_minus_dampening: f32,
               nesterov: u32 }
@group(0) @binding(0) var<uniform> sched: Step;
@group(0) @binding(1) var<uniform> grp: Group;
#if {{VEC4}}
alias V = vec4f;
#else
alias V = f32;
#endif
@group(0) @binding(2) var<storage, read_write> params: array<V>;
@group(0) @binding(3) var<storage, read> grads: array<V>;
@group(0) @binding(4) var<storage, read_write> m: array<V>;
@group(0) @binding(5) var<storage, read_write> v: array<V>;
@group(0) @binding(6) var<storage, read> clip: array<f32>;

fn skipped() -> bool {
  return arrayLength(&clip) >= 3u && clip[2] != 0.0;
}

@compute @workgroup_size(256)
fn adam(@builtin(global_invocation_id) gid: vec3u) {
  let k = gid.y * grp.stride + gid.x;
  if (k >= grp.count || skipped()) { return; }
  let i = grp.offset + k;
  var p = params[i];
  var g = grads[i] * clip[1];
#if {{DECOUPLED}}
  p = p * (1.0 - sched.lr * grp.weight_decay);
#else
  g = g + grp.weight_decay * p;
#endif
  let mi = grp.beta1 * m[i] + grp.one_minus_beta1 * g;
  let vi = grp.beta2 * v[i] + grp.one_minus_beta2 * g * g;
  m[i] = mi;
  v[i] = vi;
  params[i] = p - sched.step_size * mi / (sqrt(vi) / sched.bc2_sqrt + grp.eps);
}

@compute @workgroup_size(256)
fn sgd(@builtin(global_invocation_id) gid: vec3u) {
  let k = gid.y * grp.stride + gid.x;
  if (k >= grp.count || skipped()) { return; }
  let i = grp.offset + k;
  let p = params[i];
  var g = grads[i] * clip[1] + grp.weight_decay * p;
  if (grp.momentum != 0.0) {
    var buf = g;
    if (sched.t > 1.0) { buf = grp.momentum * m[i] + grp.one_minus_dampening * g; }
    m[i] = buf;
    g = select(buf, g + grp.momentum * buf, grp.nesterov != 0u);
  }
  params[i] = p - sched.lr * g;
}
