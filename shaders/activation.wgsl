// Elementwise activation, forward and backward.
//   act_forward:  out[i] = f(inp[i])
//   act_backward: dinp[i] (=|+=) dout[i] * f'(x[i]), with f' written in terms of `saved`:
//                 the forward OUTPUT for relu/tanh/sigmoid, the forward INPUT for gelu/silu.
// dinp assigns, or accumulates when ACCUMULATE (the input feeds several ops).
// Dispatch: ceil(n / 256) workgroups of 256 along x, folded into y past 65535 (see params.stride).
#include "lib/activation"

struct Params { n: u32, stride: u32 }   // stride = threads per row of the 2-D grid
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> inp: array<f32>;      // forward: x          backward: dout
@group(0) @binding(2) var<storage, read> saved: array<f32>;    // forward: (unused)   backward: y or x
@group(0) @binding(3) var<storage, read_write> out: array<f32>; // forward: y          backward: dinp

@compute @workgroup_size(256)
fn forward(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.y * params.stride + gid.x;
  if (i >= params.n) { return; }
  out[i] = act_forward(inp[i]);
}

@compute @workgroup_size(256)
fn backward(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.y * params.stride + gid.x;
  if (i >= params.n) { return; }
  let g = inp[i] * act_grad(saved[i]);
#if {{ACCUMULATE}}
  out[i] += g;
#else
  out[i] = g;
#endif
}
