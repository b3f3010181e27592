// Elementwise activation, forward and backward.
//   act_forward:  out[i] = f(inp[i])
//   act_backward: dinp[i] (=|+=) dout[i] * f'(x[i]), with f' written in terms of `saved`:
//                 the forward OUTPUT for relu/tanh/sigmoid, the forward INPUT for gelu/silu.
// dinp assigns, or accumulates when ACCUMULATE (the input feeds several ops).
// Element types: IN_T (inp), SAVED_T (saved), OUT_T (out): f32, or f16 under mixed precision; math in f32.
// Dispatch: ceil(n / 256) workgroups of 256 along x, folded into y past 65535 (see params.stride).
#if {{F16}}
enable f16;
#endif
#include "lib/activation"
#include "lib/half"

struct Params { n: u32, stride: u32 }   // stride = threads per row of the 2-D grid
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> inp: array<{{IN_T}}>;         // forward: x          backward: dout
@group(0) @binding(2) var<storage, read> saved: array<{{SAVED_T}}>;    // forward: (unused)   backward: y or x
@group(0) @binding(3) var<storage, read_write> out: array<{{OUT_T}}>;  // forward: y          backward: dinp

@compute @workgroup_size(256)
fn forward(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.y * params.stride + gid.x;
  if (i >= params.n) { return; }
  out[i] = to_{{OUT_T}}(act_forward(f32(inp[i])));
}

@compute @workgroup_size(256)
fn backward(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.y * params.stride + gid.x;
  if (i >= params.n) { return; }
  let g = f32(inp[i]) * act_grad(f32(saved[i]));
#if {{ACCUMULATE}}
  out[i] = to_{{OUT_T}}(f32(out[i]) + g);
#else
  out[i] = to_{{OUT_T}}(g);
#endif
}
