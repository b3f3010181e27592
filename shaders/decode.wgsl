// One-token decoding with a key/value cache (generation): the model runs on the newest token only, and
// attention reads the keys and values of earlier positions from the cache instead of recomputing them.
//   state = [token, pos], written by the host before each token.
//   embed_one:  x[c] = wte[token, c] + wpe[pos, c]                                   x [C]
//   kv_append:  kcache[pos, :] = qkv[C : 2C];  vcache[pos, :] = qkv[2C : 3C]           caches [maxT, C]
//   attend_one: per head h: p_j = softmax_j(q_h · k_h[j] / √HS), j ≤ pos;  out[h] = Σ_j p_j v_h[j]
// Dispatch: embed_one and kv_append (ceil(C / 256), 1, 1); attend_one (NH, 1, 1) with MAXT ≥ pos + 1.
// embed_one with a split vocabulary (wte above one binding): a = wte rows v0…v1−1 only, and only the dispatch
// whose range [v0, v1) holds the token writes x (all tokens: 0, 2³²−1; the other entries ignore v0, v1).
struct Dims { C: u32, HS: u32, v0: u32, v1: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> state: array<u32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;        // embed_one: wte   kv_append: qkv   attend_one: qkv
@group(0) @binding(3) var<storage, read> b: array<f32>;        // embed_one: wpe   kv_append: —     attend_one: kcache
@group(0) @binding(4) var<storage, read> c: array<f32>;        //                                   attend_one: vcache
@group(0) @binding(5) var<storage, read_write> out: array<f32>; // embed_one: x     kv_append: kcache   attend_one: out
@group(0) @binding(6) var<storage, read_write> out2: array<f32>; //                 kv_append: vcache

const WG: u32 = 256u;
const MAXT: u32 = {{MAXT}}u;
var<workgroup> p: array<f32, MAXT>;
var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn embed_one(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i >= dims.C) { return; }
  let tok = state[0];
  if (tok < dims.v0 || tok >= dims.v1) { return; }
  out[i] = a[(tok - dims.v0) * dims.C + i] + b[state[1] * dims.C + i];
}

@compute @workgroup_size(WG)
fn kv_append(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i >= dims.C) { return; }
  let row = state[1] * dims.C;
  out[row + i] = a[dims.C + i];
  out2[row + i] = a[2u * dims.C + i];
}

@compute @workgroup_size(WG)
fn attend_one(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let h = wg.x;
  let t = lid.x;
  let n = state[1] + 1u;
  let HS = dims.HS;
  let scale = 1.0 / sqrt(f32(HS));
  var mx = -3.402823e38;
  for (var j = t; j < n; j += WG) {
    var s = 0.0;
    for (var d = 0u; d < HS; d++) { s += a[h * HS + d] * b[j * dims.C + h * HS + d]; }
    p[j] = s * scale;
    mx = max(mx, s * scale);
  }
  red[t] = mx;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (t < k) { red[t] = max(red[t], red[t + k]); }
    workgroupBarrier();
  }
  mx = red[0];
  workgroupBarrier();
  var sum = 0.0;
  for (var j = t; j < n; j += WG) { let e = exp(p[j] - mx); p[j] = e; sum += e; }
  red[t] = sum;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (t < k) { red[t] = red[t] + red[t + k]; }
    workgroupBarrier();
  }
  let inv = 1.0 / red[0];
  for (var d = t; d < HS; d += WG) {
    var acc = 0.0;
    for (var j = 0u; j < n; j++) { acc += p[j] * c[j * dims.C + h * HS + d]; }
    out[h * HS + d] = acc * inv;
  }
}
