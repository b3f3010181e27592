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
// Memory: O(B·NH·T) (lse and D); per thread, private rows of HS floats held as HS4 = ⌈HS/4⌉ vec4s, zero-
// padded past HS (HS and HS4 are compile-time defines, so any HS ≥ 1 works; the padding adds nothing).
// Work split: a workgroup of BQ threads owns BQ consecutive rows (queries, or keys for dkdv) of one (b, h);
// the other index is walked in tiles of TILE rows staged in workgroup memory, every thread visiting them
// in increasing order, so every sum has a fixed order and results are bitwise repeatable. Rows past T
// take part in the barriers but store nothing. The loops over a tile stop at the causal limit (a runtime
// bound, which also keeps lavapipe from unrolling them: compiles took ~10 s per pipeline before).
// Dispatch (every entry point): (ceil(T / BQ), NH, B).
struct Params { T: u32, C: u32, NH: u32, scale: f32 }
@group(0) @binding(0) var<uniform> params: Params;

const HS: u32 = {{HS}}u;
const HS4: u32 = {{HS4}}u;
const TILE: u32 = {{TILE}}u;
const BQ: u32 = 64u;
const NEG: f32 = -3.402823e38;

var<workgroup> ta: array<vec4f, TILE * HS4>;   // forward, dq: k tile   dkdv: q tile
var<workgroup> tb: array<vec4f, TILE * HS4>;   // forward, dq: v tile   dkdv: dout tile
var<workgroup> tl: array<f32, TILE>;           // dkdv: lse tile
var<workgroup> td: array<f32, TILE>;           // dkdv: D tile

fn qkv_index(b: u32, t: u32, h: u32) -> u32 { return (b * params.T + t) * 3u * params.C + h * HS; }
fn row_index(b: u32, t: u32, h: u32) -> u32 { return (b * params.T + t) * params.C + h * HS; }

// ---- forward: bindings qkv (read); out, lse (write) ----
@group(0) @binding(1) var<storage, read> f_qkv: array<f32>;
@group(0) @binding(2) var<storage, read_write> f_out: array<f32>;
@group(0) @binding(3) var<storage, read_write> f_lse: array<f32>;

// Elements 4·d4 … 4·d4+3 of the HS-row at `base` (zero past HS).
fn f_row4(base: u32, d4: u32) -> vec4f {
  var r = vec4f(0.0);
  for (var e = 0u; e < 4u; e++) { if (4u * d4 + e < HS) { r[e] = f_qkv[base + 4u * d4 + e]; } }
  return r;
}

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
  var q: array<vec4f, HS4>;
  var acc: array<vec4f, HS4>;
  var s: array<f32, TILE>;
  let qb = qkv_index(b, tq, h);
  for (var d = 0u; d < HS4; d++) { q[d] = f_row4(qb, d) * params.scale; acc[d] = vec4f(0.0); }
  var m = NEG;
  var l = 0.0;
  let tEnd = min(T, t0 + BQ);   // keys 0 … tEnd−1 serve some row of this workgroup
  for (var j0 = 0u; j0 < tEnd; j0 += TILE) {
    for (var i = lid.x; i < TILE * HS4; i += BQ) {
      let j = min(j0 + i / HS4, T - 1u);   // rows past T are loaded but never used
      let kb = qkv_index(b, j, h);
      ta[i] = f_row4(kb + C, i % HS4);
      tb[i] = f_row4(kb + 2u * C, i % HS4);
    }
    workgroupBarrier();
    if (valid && j0 <= t) {
      let jn = min(TILE, t + 1u - j0);   // keys j0 … j0+jn−1 of this tile are ≤ t
      var mt = m;
      for (var jj = 0u; jj < jn; jj++) {
        var dv = vec4f(0.0);
        for (var d = 0u; d < HS4; d++) { dv = fma(q[d], ta[jj * HS4 + d], dv); }
        s[jj] = (dv.x + dv.y) + (dv.z + dv.w);
        mt = max(mt, s[jj]);
      }
      let corr = exp(m - mt);
      l *= corr;
      for (var d = 0u; d < HS4; d++) { acc[d] *= corr; }
      for (var jj = 0u; jj < jn; jj++) {
        let p = exp(s[jj] - mt);
        l += p;
        for (var d = 0u; d < HS4; d++) { acc[d] = fma(vec4f(p), tb[jj * HS4 + d], acc[d]); }
      }
      m = mt;
    }
    workgroupBarrier();
  }
  if (valid) {
    let ob = row_index(b, t, h);
    let inv = 1.0 / l;
    for (var d = 0u; d < HS4; d++) {
      let o = acc[d] * inv;
      for (var e = 0u; e < 4u; e++) { if (4u * d + e < HS) { f_out[ob + 4u * d + e] = o[e]; } }
    }
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

fn qkv4(base: u32, d4: u32) -> vec4f {
  var r = vec4f(0.0);
  for (var e = 0u; e < 4u; e++) { if (4u * d4 + e < HS) { r[e] = b_qkv[base + 4u * d4 + e]; } }
  return r;
}
fn dout4(base: u32, d4: u32) -> vec4f {
  var r = vec4f(0.0);
  for (var e = 0u; e < 4u; e++) { if (4u * d4 + e < HS) { r[e] = b_dout[base + 4u * d4 + e]; } }
  return r;
}
fn out4(base: u32, d4: u32) -> vec4f {
  var r = vec4f(0.0);
  for (var e = 0u; e < 4u; e++) { if (4u * d4 + e < HS) { r[e] = b_out[base + 4u * d4 + e]; } }
  return r;
}
fn sum4(v: vec4f) -> f32 { return (v.x + v.y) + (v.z + v.w); }

// dqkv[base + 4·d4 + e] (=|+=) v[e] for the elements below HS.
fn store_grad4(base: u32, d4: u32, v: vec4f) {
  for (var e = 0u; e < 4u; e++) {
    let d = 4u * d4 + e;
    if (d < HS) {
#if {{ACCUMULATE}}
      b_dqkv[base + d] += v[e];
#else
      b_dqkv[base + d] = v[e];
#endif
    }
  }
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
  var q: array<vec4f, HS4>;
  var go: array<vec4f, HS4>;
  var dq: array<vec4f, HS4>;
  let qb = qkv_index(b, tq, h);
  let ob = row_index(b, tq, h);
  var Dv = vec4f(0.0);
  for (var d = 0u; d < HS4; d++) {
    q[d] = qkv4(qb, d) * params.scale;
    go[d] = dout4(ob, d);
    dq[d] = vec4f(0.0);
    Dv = fma(go[d], out4(ob, d), Dv);
  }
  let D = sum4(Dv);
  let li = (b * params.NH + h) * T + tq;
  let lse = b_lse[li];
  if (valid) { b_scratch[li] = D; }
  let tEnd = min(T, t0 + BQ);
  for (var j0 = 0u; j0 < tEnd; j0 += TILE) {
    for (var i = lid.x; i < TILE * HS4; i += BQ) {
      let j = min(j0 + i / HS4, T - 1u);
      let kb = qkv_index(b, j, h);
      ta[i] = qkv4(kb + C, i % HS4);
      tb[i] = qkv4(kb + 2u * C, i % HS4);
    }
    workgroupBarrier();
    var jn = 0u;
    if (valid && j0 <= t) { jn = min(TILE, t + 1u - j0); }   // keys ≤ t in this tile
    for (var jj = 0u; jj < jn; jj++) {
      var sc = vec4f(0.0);
      var dp = vec4f(0.0);
      for (var d = 0u; d < HS4; d++) {
        sc = fma(q[d], ta[jj * HS4 + d], sc);
        dp = fma(go[d], tb[jj * HS4 + d], dp);
      }
      let p = exp(sum4(sc) - lse);
      let ds = vec4f(p * (sum4(dp) - D));
      for (var d = 0u; d < HS4; d++) { dq[d] = fma(ds, ta[jj * HS4 + d], dq[d]); }
    }
    workgroupBarrier();
  }
  if (valid) {
    let gb = qkv_index(b, t, h);
    for (var d = 0u; d < HS4; d++) { store_grad4(gb, d, dq[d] * params.scale); }
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
  var k: array<vec4f, HS4>;
  var v: array<vec4f, HS4>;
  var dk: array<vec4f, HS4>;
  var dv: array<vec4f, HS4>;
  let kb = qkv_index(b, jk, h);
  for (var d = 0u; d < HS4; d++) {
    k[d] = qkv4(kb + C, d) * params.scale;
    v[d] = qkv4(kb + 2u * C, d);
    dk[d] = vec4f(0.0);
    dv[d] = vec4f(0.0);
  }
  let lb = (b * params.NH + h) * T;
  // Queries t ≥ j0 can see some key of this workgroup.
  for (var t0 = j0; t0 < T; t0 += TILE) {
    for (var i = lid.x; i < TILE * HS4; i += BQ) {
      let t = min(t0 + i / HS4, T - 1u);
      ta[i] = qkv4(qkv_index(b, t, h), i % HS4);
      tb[i] = dout4(row_index(b, t, h), i % HS4);
    }
    for (var i = lid.x; i < TILE; i += BQ) {
      let t = min(t0 + i, T - 1u);
      tl[i] = b_lse[lb + t];
      td[i] = b_scratch[lb + t];
    }
    workgroupBarrier();
    // Queries max(t0, j) … min(t0 + TILE, T) − 1 of this tile see key j.
    var tt0 = TILE;
    if (valid && j < t0 + TILE) { tt0 = select(0u, j - t0, j > t0); }
    let ttn = min(TILE, T - t0);
    for (var tt = tt0; tt < ttn; tt++) {
      var sc = vec4f(0.0);
      var dp = vec4f(0.0);
      for (var d = 0u; d < HS4; d++) {
        sc = fma(ta[tt * HS4 + d], k[d], sc);
        dp = fma(tb[tt * HS4 + d], v[d], dp);
      }
      let p = exp(sum4(sc) - tl[tt]);
      let ds = vec4f(p * (sum4(dp) - td[tt]));
      let pv = vec4f(p);
      for (var d = 0u; d < HS4; d++) {
        dv[d] = fma(pv, tb[tt * HS4 + d], dv[d]);
        dk[d] = fma(ds, ta[tt * HS4 + d], dk[d]);
      }
    }
    workgroupBarrier();
  }
  if (valid) {
    let gb = qkv_index(b, j, h);
    for (var d = 0u; d < HS4; d++) {
      store_grad4(gb + C, d, dk[d] * params.scale);
      store_grad4(gb + 2u * C, d, dv[d]);
    }
  }
}
