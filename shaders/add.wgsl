// Elementwise add, for residual connections, and the gradient copy that routes a residual's gradient
// to both of its branches.
//   add:  out[i] = x[i] + y[i]                         i = 0 … n-1 (flat; any layout, e.g. [B·T, C])
//   copy_grad: dst[i] (=|+=) src[i]                         assigns, or accumulates when ACCUMULATE
// out may not be x or y (a dispatch may not read and write one buffer): the memory plan keeps them apart.
// Dispatch: ceil(n / 256) workgroups of 256 along x, folded into y past 65535 (see params.stride).
// Element types X_T, Y_T, OUT_T (f32, or f16 under mixed precision); the sum is f32.
#if {{F16}}
enable f16;
#endif
#include "lib/half"
struct Params { n: u32, stride: u32 }   // stride = threads per row of the 2-D grid
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<{{X_T}}>;        // add: x    copy: src
@group(0) @binding(2) var<storage, read> y: array<{{Y_T}}>;        // add: y    copy: (unused)
@group(0) @binding(3) var<storage, read_write> out: array<{{OUT_T}}>; // add: out  copy: dst

@compute @workgroup_size(256)
fn add(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.y * params.stride + gid.x;
  if (i >= params.n) { return; }
  out[i] = to_{{OUT_T}}(f32(x[i]) + f32(y[i]));
}

@compute @workgroup_size(256)
fn copy_grad(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.y * params.stride + gid.x;
  if (i >= params.n) { return; }
#if {{ACCUMULATE}}
  out[i] = to_{{OUT_T}}(f32(out[i]) + f32(x[i]));
#else
  out[i] = to_{{OUT_T}}(f32(x[i]));
#endif
}
