// Bias gradient: a column reduction of the output gradient.
//   dbias[n] += Σ_m dout[m, n]        dout [M, N] row-major (M = B·T rows), dbias [N] (accumulates)
// A workgroup of 64×4 threads owns 64 columns; each thread sums every 4th row of its column, then the
// four partial sums are added in a fixed order, so the result is the same on every run.
// dout's element type is D_T (f32, or f16 under mixed precision); the sums are f32.
// Dispatch: (ceil(N / 64), 1, 1).
#if {{F16}}
enable f16;
#endif
struct Dims { M: u32, N: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> dout: array<{{D_T}}>;
@group(0) @binding(2) var<storage, read_write> dbias: array<f32>;

var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(64, 4)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let n = wg.x * 64u + lid.x;
  var s = 0.0;
  if (n < dims.N) {
    for (var m = lid.y; m < dims.M; m += 4u) { s += f32(dout[m * dims.N + n]); }
  }
  partial[lid.y * 64u + lid.x] = s;
  workgroupBarrier();
  if (lid.y == 0u && n < dims.N) {
    dbias[n] += ((partial[lid.x] + partial[64u + lid.x]) + (partial[128u + lid.x] + partial[192u + lid.x]));
  }
}
