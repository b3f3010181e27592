// Lab v2 — shared-memory tiled: a 16×16 workgroup computes a 16×16 tile of C, one output per
// invocation, staging 16×16 tiles of A and B through workgroup memory (two barriers per K step).
// Out-of-range loads read 0, so any shape works. NN only.
struct Dims { M: u32, N: u32, K: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;

const T: u32 = 16u;
var<workgroup> As: array<f32, T * T>;
var<workgroup> Bs: array<f32, T * T>;

@compute @workgroup_size(T, T, 1)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let m = wg.y * T + lid.y;
  let n = wg.x * T + lid.x;
  var s = 0.0;
  for (var k0 = 0u; k0 < dims.K; k0 += T) {
    let ka = k0 + lid.x;
    let kb = k0 + lid.y;
    As[lid.y * T + lid.x] = select(0.0, A[m * dims.K + ka], m < dims.M && ka < dims.K);
    Bs[lid.y * T + lid.x] = select(0.0, B[kb * dims.N + n], kb < dims.K && n < dims.N);
    workgroupBarrier();
    for (var k = 0u; k < T; k++) { s = fma(As[lid.y * T + k], Bs[k * T + lid.x], s); }
    workgroupBarrier();
  }
  if (m < dims.M && n < dims.N) { C[m * dims.N + n] = s; }
}
