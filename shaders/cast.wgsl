// f32 → f16 copy of the parameter arena: the matmul operands of mixed precision (the f32 arena stays the
// master copy the optimizer updates).
//   dst[i] = f16(clamp(src[i], −65504, 65504))      i = 0 … n−1, in vec4s (n4 = n / 4)
// Values beyond f16's largest finite number are clamped rather than left to the conversion, whose result
// WGSL leaves indeterminate out of range. Dispatch: grid1d(n4) (256 per workgroup, folded into y).
enable f16;

struct Params { n4: u32, stride: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f16>>;

const F16_MAX: f32 = 65504.0;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.y * params.stride + gid.x;
  if (i >= params.n4) { return; }
  dst[i] = vec4<f16>(clamp(src[i], vec4f(-F16_MAX), vec4f(F16_MAX)));
}
