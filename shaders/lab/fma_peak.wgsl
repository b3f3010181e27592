// The adapter's arithmetic ceiling, measured: every invocation runs ITERS rounds of 8 independent vec4
// FMA chains (no memory traffic inside the loop), then stores one value so nothing is optimised away.
//   FLOPs = invocations · ITERS · 8 chains · 4 lanes · 2
// The chains are independent so that FMA latency is hidden; the matmul lab reports each version's
// GFLOP/s beside this figure. Dispatch: (groups, 1, 1) of 64.
struct Dims { iters: u32, seed: f32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> sink: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let x = vec4f(f32(gid.x) * 1e-7 + dims.seed);
  let m = vec4f(0.999999);
  var a0 = x; var a1 = x + 1.0; var a2 = x + 2.0; var a3 = x + 3.0;
  var a4 = x + 4.0; var a5 = x + 5.0; var a6 = x + 6.0; var a7 = x + 7.0;
  for (var i = 0u; i < dims.iters; i++) {
    a0 = fma(a0, m, x); a1 = fma(a1, m, x); a2 = fma(a2, m, x); a3 = fma(a3, m, x);
    a4 = fma(a4, m, x); a5 = fma(a5, m, x); a6 = fma(a6, m, x); a7 = fma(a7, m, x);
  }
  let s = (a0 + a1) + (a2 + a3) + (a4 + a5) + (a6 + a7);
  sink[gid.x] = s.x + s.y + s.z + s.w;
}
