// Lab v1 — naive: one invocation per output element, workgroup 16×16, each C[m,n] walks K reading
// A[m,k] and B[k,n] straight from storage. No reuse beyond what the caches give. NN only (A [M,K], B [K,N]).
struct Dims { M: u32, N: u32, K: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let n = gid.x;
  let m = gid.y;
  if (m >= dims.M || n >= dims.N) { return; }
  var s = 0.0;
  for (var k = 0u; k < dims.K; k++) { s = fma(A[m * dims.K + k], B[k * dims.N + n], s); }
  C[m * dims.N + n] = s;
}
