// Causal multi-head self-attention (GPT-2 layout), flash-attention style: the T×T matrix is never stored.
//   qkv [B, T, 3C]: q = columns 0…C−1, k = C…2C−1, v = 2C…3C−1; head h uses columns h·HS … (h+1)·HS−1 of each
//   out [B, T, C] (heads merged in the same column layout), lse [B, NH, T], HS = C / NH, scale = 1/√HS
//   forward:  s_tj = scale·q_t·k_j (j ≤ t),  lse_t = log Σ_{j≤t} exp(s_tj),  P_tj = exp(s_tj − lse_t)
//             out_t = Σ_{j≤t} P_tj·v_j                         (online softmax over key tiles, stable)
//   backward: D_t = dout_t·out_t  (= Σ_j P_tj·dP_tj, stored in `scratch` [B, NH, T])
//             dP_tj = dout_t·v_j,  dS_tj = P_tj·(dP_tj − D_t)
//             dq_t = scale·Σ_{j≤t} dS_tj·k_j                   (backward_dq: a thread per query row)
//             dk_j = scale·Σ_{t≥j} dS_tj·q_t,  dv_j = Σ_{t≥j} P_tj·dout_t   (backward_dkdv: a thread per key row)
//             P is recomputed from q, k and the saved lse. dqkv assigns, or accumulates when ACCUMULATE.
// Memory: O(B·NH·T) (lse and D); per thread private rows of HS floats (HS is the compile-time define {{HS}}).
// Work split: a workgroup of BQ threads owns BQ consecutive rows (queries, or keys for dkdv) of one (b, h);
// the other index is walked in tiles of TILE rows staged in workgroup memory, every thread visiting them
// in increasing order, so every sum has a fixed order and results are bitwise repeatable. Rows past T
// take part in the barriers but store nothing.
// Dispatch (every entry point): (ceil(T / BQ), NH, B).
struct Params { T: u32, C: u32, NH: u32, scale: f32 }
@group(0) @binding(0) var<uniform> params: Params;

const HS: u32 = {{HS}}u;
const TILE: u32 = {{TILE}}u;
const BQ: u32 = 64u;
const NEG: f32 = -3.402823e38;

var<workgroup> ta: array<f32, TILE * HS>;   // forward, dq: k tile   dkdv: q tile
var<workgroup> tb: array<f32, TILE * HS>;   // forward, dq: v tile   dkdv: dout tile
var<workgroup> tl: array<f32, TILE>;        // dkdv: lse tile
var<workgroup> td: array<f32, TILE>;        // dkdv: D tile

fn qkv_index(b: u32, t: u32, h: u32) -> u32 { return (b * params.T + t) * 3u * params.C + h * HS; }
fn row_index(b: u32, t: u32, h: u32) -> u32 { return (b * params.T + t) * params.C + h * HS; }

// ---- forward: bindings qkv (read); out, lse (write) ----
@group(0) @binding(1) var<storage, read> f_qkv: array<f32>;
@group(0) @binding(2) var<storage, read_write> f_out: array<f32>;
@group(0) @binding(3) var<storage, read_write> f_lse: array<f32>;

@compute @workgroup_size(BQ)
fn forward(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let b = wg.z;
  let h = wg.y;
  let T = params.T;
  let C = params.C;
  let t0 = wg.x * BQ;
  let t = t0 + lid.x;
  let valid = t < T;
  let tq = min(t, T - 1u);
  var q: array<f32, HS>;
  var acc: array<f32, HS>;
  var s: array<f32, TILE>;
  let qb = qkv_index(b, tq, h);
  for (var d = 0u; d < HS; d++) { q[d] = f_qkv[qb + d]; acc[d] = 0.0; }
  var m = NEG;
  var l = 0.0;
  let tEnd = min(T, t0 + BQ);   // keys 0 … tEnd−1 serve some row of this workgroup
  for (var j0 = 0u; j0 < tEnd; j0 += TILE) {
    for (var i = lid.x; i < TILE * HS; i += BQ) {
      let j = j0 + i / HS;
      var kv = 0.0;
      var vv = 0.0;
      if (j < T) {
        let kb = qkv_index(b, j, h) + i % HS;
        kv = f_qkv[kb + C];
        vv = f_qkv[kb + 2u * C];
      }
      ta[i] = kv;
      tb[i] = vv;
    }
    workgroupBarrier();
    if (valid && j0 <= t) {
      let jn = min(TILE, t + 1u - j0);   // keys j0 … j0+jn−1 of this tile are ≤ t (runtime bound: no unrolling)
      var mt = m;
      for (var jj = 0u; jj < jn; jj++) {
        var dot = 0.0;
        for (var d = 0u; d < HS; d++) { dot = fma(q[d], ta[jj * HS + d], dot); }
        s[jj] = dot * params.scale;
        mt = max(mt, s[jj]);
      }
      let corr = exp(m - mt);
      l *= corr;
      for (var d = 0u; d < HS; d++) { acc[d] *= corr; }
      for (var jj = 0u; jj < jn; jj++) {
        let p = exp(s[jj] - mt);
        l += p;
        for (var d = 0u; d < HS; d++) { acc[d] = fma(p, tb[jj * HS + d], acc[d]); }
      }
      m = mt;
    }
    workgroupBarrier();
  }
  if (valid) {
    let ob = row_index(b, t, h);
    let inv = 1.0 / l;
    for (var d = 0u; d < HS; d++) { f_out[ob + d] = acc[d] * inv; }
    f_lse[(b * params.NH + h) * T + t] = m + log(l);
  }
}

// ---- backward_dq and backward_dkdv: bindings dout, qkv, out, lse (read); dqkv, scratch (write) ----
@group(0) @binding(1) var<storage, read> b_dout: array<f32>;
@group(0) @binding(2) var<storage, read> b_qkv: array<f32>;
@group(0) @binding(3) var<storage, read> b_out: array<f32>;
@group(0) @binding(4) var<storage, read> b_lse: array<f32>;
@group(0) @binding(5) var<storage, read_write> b_dqkv: array<f32>;
@group(0) @binding(6) var<storage, read_write> b_scratch: array<f32>;   // D [B, NH, T]

fn store_grad(i: u32, v: f32) {
#if {{ACCUMULATE}}
  b_dqkv[i] += v;
#else
  b_dqkv[i] = v;
#endif
}

// Also writes D_t to scratch, for backward_dkdv (the next dispatch).
@compute @workgroup_size(BQ)
fn backward_dq(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let b = wg.z;
  let h = wg.y;
  let T = params.T;
  let C = params.C;
  let t0 = wg.x * BQ;
  let t = t0 + lid.x;
  let valid = t < T;
  let tq = min(t, T - 1u);
  var q: array<f32, HS>;
  var go: array<f32, HS>;
  var dq: array<f32, HS>;
  let qb = qkv_index(b, tq, h);
  let ob = row_index(b, tq, h);
  var D = 0.0;
  for (var d = 0u; d < HS; d++) {
    q[d] = b_qkv[qb + d];
    go[d] = b_dout[ob + d];
    dq[d] = 0.0;
    D = fma(go[d], b_out[ob + d], D);
  }
  let li = (b * params.NH + h) * T + tq;
  let lse = b_lse[li];
  if (valid) { b_scratch[li] = D; }
  let tEnd = min(T, t0 + BQ);
  for (var j0 = 0u; j0 < tEnd; j0 += TILE) {
    for (var i = lid.x; i < TILE * HS; i += BQ) {
      let j = j0 + i / HS;
      var kv = 0.0;
      var vv = 0.0;
      if (j < T) {
        let kb = qkv_index(b, j, h) + i % HS;
        kv = b_qkv[kb + C];
        vv = b_qkv[kb + 2u * C];
      }
      ta[i] = kv;
      tb[i] = vv;
    }
    workgroupBarrier();
    var jn = 0u;
    if (valid && j0 <= t) { jn = min(TILE, t + 1u - j0); }   // keys ≤ t in this tile
    for (var jj = 0u; jj < jn; jj++) {
      {
        var sc = 0.0;
        var dp = 0.0;
        for (var d = 0u; d < HS; d++) {
          sc = fma(q[d], ta[jj * HS + d], sc);
          dp = fma(go[d], tb[jj * HS + d], dp);
        }
        let p = exp(sc * params.scale - lse);
        let ds = p * (dp - D);
        for (var d = 0u; d < HS; d++) { dq[d] = fma(ds, ta[jj * HS + d], dq[d]); }
      }
    }
    workgroupBarrier();
  }
  if (valid) {
    let gb = qkv_index(b, t, h);
    for (var d = 0u; d < HS; d++) { store_grad(gb + d, dq[d] * params.scale); }
  }
}

@compute @workgroup_size(BQ)
fn backward_dkdv(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let b = wg.z;
  let h = wg.y;
  let T = params.T;
  let C = params.C;
  let j0 = wg.x * BQ;
  let j = j0 + lid.x;
  let valid = j < T;
  let jk = min(j, T - 1u);
  var k: array<f32, HS>;
  var v: array<f32, HS>;
  var dk: array<f32, HS>;
  var dv: array<f32, HS>;
  let kb = qkv_index(b, jk, h);
  for (var d = 0u; d < HS; d++) {
    k[d] = b_qkv[kb + C + d];
    v[d] = b_qkv[kb + 2u * C + d];
    dk[d] = 0.0;
    dv[d] = 0.0;
  }
  let lb = (b * params.NH + h) * T;
  // Queries t ≥ j0 can see some key of this workgroup.
  for (var t0 = j0; t0 < T; t0 += TILE) {
    for (var i = lid.x; i < TILE * HS; i += BQ) {
      let t = t0 + i / HS;
      var qv = 0.0;
      var gv = 0.0;
      if (t < T) {
        qv = b_qkv[qkv_index(b, t, h) + i % HS];
        gv = b_dout[row_index(b, t, h) + i % HS];
      }
      ta[i] = qv;
      tb[i] = gv;
    }
    for (var i = lid.x; i < TILE; i += BQ) {
      let t = t0 + i;
      var lv = 0.0;
      var dv_ = 0.0;
      if (t < T) { lv = b_lse[lb + t]; dv_ = b_scratch[lb + t]; }
      tl[i] = lv;
      td[i] = dv_;
    }
    workgroupBarrier();
    // Queries max(t0, j) … min(t0 + TILE, T) − 1 of this tile see key j (runtime bounds: no unrolling).
    var tt0 = TILE;
    if (valid && j < t0 + TILE) { tt0 = select(0u, j - t0, j > t0); }
    let ttn = min(TILE, T - t0);
    for (var tt = tt0; tt < ttn; tt++) {
      {
        var sc = 0.0;
        var dp = 0.0;
        for (var d = 0u; d < HS; d++) {
          sc = fma(ta[tt * HS + d], k[d], sc);
          dp = fma(tb[tt * HS + d], v[d], dp);
        }
        let p = exp(sc * params.scale - tl[tt]);
        let ds = p * (dp - td[tt]);
        for (var d = 0u; d < HS; d++) {
          dv[d] = fma(p, tb[tt * HS + d], dv[d]);
          dk[d] = fma(ds, ta[tt * HS + d], dk[d]);
        }
      }
    }
    workgroupBarrier();
  }
  if (valid) {
    let gb = qkv_index(b, j, h);
    for (var d = 0u; d < HS; d++) {
      store_grad(gb + C + d, dk[d] * params.scale);
      store_grad(gb + 2u * C + d, dv[d]);
    }
  }
}
