// Causal multi-head self-attention (GPT-2 layout), flash-attention style: the T×T matrix is never stored.
// Two variants of the same three entry points (forward, backward_dq, backward_dkdv), chosen by SUBGROUPS:
// the tiled one (GPUs) and the subgroup one (CPU drivers), both described below.
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
// Tiled (GPUs): a workgroup of BQ threads owns BQ consecutive rows (queries, or keys for dkdv) of one (b, h);
// the other index is walked in tiles of TILE rows staged in workgroup memory, every thread visiting them
// in increasing order, so every sum has a fixed order and results are bitwise repeatable. Rows past T
// take part in the barriers but store nothing. The loops over a tile stop at the causal limit (a runtime
// bound, which also keeps lavapipe from unrolling them: compiles took ~10 s per pipeline before).
// Dispatch (every entry point): (ceil(T / BQ), NH, B).
//
// SUBGROUPS (CPU drivers such as lavapipe): the same math, a thread per row, WG rows per workgroup (a
// multiple of 8; 8 by default, the lab also times 32), no workgroup memory and no barriers. A CPU driver
// runs a subgroup as one SIMD vector but turns every load whose address it cannot prove uniform (anything
// computed from ids or loop counters) into a per-lane loop of bounds-checked scalar loads, and a
// workgroup-memory tile costs those loads plus barriers. So the other index is walked in tiles of 8 rows
// where lane s loads only row (tile start + s % 8) and every lane gets all 8 by subgroupBroadcast (a
// register shuffle there): per lane per 8 keys, one k and one v row loaded for 16·HS FMAs. Loop bounds
// depend only on the workgroup, so every lane is active at every broadcast; the causal mask is applied
// inside the tiles that straddle the diagonal (P = 0 there, at most WG−1 wasted keys per row). Sums run
// in increasing key (or query) order in a fixed association: bitwise repeatable. VEC4 binds qkv, out,
// dout and dqkv as vec4 arrays (HS and C multiples of 4; scalar loads otherwise). Needs the `subgroups`
// feature with at least 8 lanes, lanes 0–7 of every subgroup active.
// Dispatch (every entry point): (ceil(T / WG), NH, B).
// Bindings, row loads and stores: lib/attention_io (shared with the lab's thread-per-row versions).
#if {{SUBGROUPS}}
enable subgroups;
#endif
// Mixed precision: qkv, out, dout and dqkv have element type ACT_T (f16 there); lse, D and all arithmetic are f32.
#if {{F16}}
enable f16;
#endif
#include "lib/half"
#include "lib/attention_io"

#if {{SUBGROUPS}}
// ======== SUBGROUPS: a thread per row, WG rows per workgroup, tiles shared by subgroupBroadcast ========
const WG: u32 = {{WG}}u;

fn hsum(a: vec4f, b: vec4f, c: vec4f, d: vec4f) -> vec4f { return vec4f(sum4(a), sum4(b), sum4(c), sum4(d)); }
fn max4(v: vec4f) -> f32 { return max(max(v.x, v.y), max(v.z, v.w)); }
// Lanes 0–3 / 4–7 of a per-lane scalar, as a vec4.
fn lanes_lo(x: f32) -> vec4f { return vec4f(subgroupBroadcast(x, 0u), subgroupBroadcast(x, 1u), subgroupBroadcast(x, 2u), subgroupBroadcast(x, 3u)); }
fn lanes_hi(x: f32) -> vec4f { return vec4f(subgroupBroadcast(x, 4u), subgroupBroadcast(x, 5u), subgroupBroadcast(x, 6u), subgroupBroadcast(x, 7u)); }

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u,
           @builtin(subgroup_invocation_id) lane: u32) {
  let b = wg.z;
  let h = wg.y;
  let T = params.T;
  let C = params.C;
  let t0 = wg.x * WG;
  let t = t0 + lid.x;
  let tq = min(t, T - 1u);
  var q: array<vec4f, HS4>;
  var acc: array<vec4f, HS4>;
  let qb = qkv_index(b, tq, h);
  for (var d = 0u; d < HS4; d++) { q[d] = f_row4(qb, d) * params.scale; acc[d] = vec4f(0.0); }
  var m = NEG;
  var l = 0.0;
  let tEnd = min(T, t0 + WG);   // keys 0 … tEnd−1 serve some row of this workgroup
  for (var j0 = 0u; j0 < tEnd; j0 += 8u) {
    let kb = qkv_index(b, min(j0 + lane % 8u, T - 1u), h) + C;   // this lane's key row of the tile
    var s0 = vec4f(0.0); var s1 = vec4f(0.0); var s2 = vec4f(0.0); var s3 = vec4f(0.0);
    var s4 = vec4f(0.0); var s5 = vec4f(0.0); var s6 = vec4f(0.0); var s7 = vec4f(0.0);
    for (var d = 0u; d < HS4; d++) {
      let k = f_row4(kb, d);
      let qd = q[d];
      s0 = fma(qd, subgroupBroadcast(k, 0u), s0); s1 = fma(qd, subgroupBroadcast(k, 1u), s1);
      s2 = fma(qd, subgroupBroadcast(k, 2u), s2); s3 = fma(qd, subgroupBroadcast(k, 3u), s3);
      s4 = fma(qd, subgroupBroadcast(k, 4u), s4); s5 = fma(qd, subgroupBroadcast(k, 5u), s5);
      s6 = fma(qd, subgroupBroadcast(k, 6u), s6); s7 = fma(qd, subgroupBroadcast(k, 7u), s7);
    }
    // Scores of keys j0 … j0+7; keys past the row (or past T) weigh 0.
    let seeLo = vec4u(j0) + vec4u(0u, 1u, 2u, 3u) <= vec4u(tq);
    let seeHi = vec4u(j0) + vec4u(4u, 5u, 6u, 7u) <= vec4u(tq);
    let sLo = select(vec4f(NEG), hsum(s0, s1, s2, s3), seeLo);
    let sHi = select(vec4f(NEG), hsum(s4, s5, s6, s7), seeHi);
    let mt = max(m, max(max4(sLo), max4(sHi)));
    let corr = exp(m - mt);
    let pLo = select(vec4f(0.0), exp(sLo - mt), seeLo);
    let pHi = select(vec4f(0.0), exp(sHi - mt), seeHi);
    l = l * corr + (sum4(pLo) + sum4(pHi));
    let vb = kb + C;
    for (var d = 0u; d < HS4; d++) {
      let v = f_row4(vb, d);
      var a = acc[d] * corr;
      a = fma(vec4f(pLo.x), subgroupBroadcast(v, 0u), a); a = fma(vec4f(pLo.y), subgroupBroadcast(v, 1u), a);
      a = fma(vec4f(pLo.z), subgroupBroadcast(v, 2u), a); a = fma(vec4f(pLo.w), subgroupBroadcast(v, 3u), a);
      a = fma(vec4f(pHi.x), subgroupBroadcast(v, 4u), a); a = fma(vec4f(pHi.y), subgroupBroadcast(v, 5u), a);
      a = fma(vec4f(pHi.z), subgroupBroadcast(v, 6u), a); a = fma(vec4f(pHi.w), subgroupBroadcast(v, 7u), a);
      acc[d] = a;
    }
    m = mt;
  }
  if (t < T) {
    let ob = row_index(b, t, h);
    let inv = 1.0 / l;
    for (var d = 0u; d < HS4; d++) { store_out4(ob, d, acc[d] * inv); }
    f_lse[(b * params.NH + h) * T + t] = m + log(l);
  }
}

@compute @workgroup_size(WG)
fn backward_dq(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u,
               @builtin(subgroup_invocation_id) lane: u32) {
  let b = wg.z;
  let h = wg.y;
  let T = params.T;
  let C = params.C;
  let t0 = wg.x * WG;
  let t = t0 + lid.x;
  let tq = min(t, T - 1u);
  var q: array<vec4f, HS4>;
  var go: array<vec4f, HS4>;
  var dq: array<vec4f, HS4>;   // zero-initialised
  let D = load_query_rows(qkv_index(b, tq, h), row_index(b, tq, h), &q, &go);
  let li = (b * params.NH + h) * T + tq;
  let lse = b_lse[li];
  if (t < T) { b_scratch[li] = D; }
  let tEnd = min(T, t0 + WG);
  for (var j0 = 0u; j0 < tEnd; j0 += 8u) {
    let kb = qkv_index(b, min(j0 + lane % 8u, T - 1u), h) + C;   // this lane's key row; v at kb + C
    var s0 = vec4f(0.0); var s1 = vec4f(0.0); var s2 = vec4f(0.0); var s3 = vec4f(0.0);
    var s4 = vec4f(0.0); var s5 = vec4f(0.0); var s6 = vec4f(0.0); var s7 = vec4f(0.0);
    var p0 = vec4f(0.0); var p1 = vec4f(0.0); var p2 = vec4f(0.0); var p3 = vec4f(0.0);
    var p4 = vec4f(0.0); var p5 = vec4f(0.0); var p6 = vec4f(0.0); var p7 = vec4f(0.0);
    for (var d = 0u; d < HS4; d++) {
      let k = qkv4(kb, d);
      let v = qkv4(kb + C, d);
      let qd = q[d];
      let gd = go[d];
      s0 = fma(qd, subgroupBroadcast(k, 0u), s0); s1 = fma(qd, subgroupBroadcast(k, 1u), s1);
      s2 = fma(qd, subgroupBroadcast(k, 2u), s2); s3 = fma(qd, subgroupBroadcast(k, 3u), s3);
      s4 = fma(qd, subgroupBroadcast(k, 4u), s4); s5 = fma(qd, subgroupBroadcast(k, 5u), s5);
      s6 = fma(qd, subgroupBroadcast(k, 6u), s6); s7 = fma(qd, subgroupBroadcast(k, 7u), s7);
      p0 = fma(gd, subgroupBroadcast(v, 0u), p0); p1 = fma(gd, subgroupBroadcast(v, 1u), p1);
      p2 = fma(gd, subgroupBroadcast(v, 2u), p2); p3 = fma(gd, subgroupBroadcast(v, 3u), p3);
      p4 = fma(gd, subgroupBroadcast(v, 4u), p4); p5 = fma(gd, subgroupBroadcast(v, 5u), p5);
      p6 = fma(gd, subgroupBroadcast(v, 6u), p6); p7 = fma(gd, subgroupBroadcast(v, 7u), p7);
    }
    let seeLo = vec4u(j0) + vec4u(0u, 1u, 2u, 3u) <= vec4u(tq);
    let seeHi = vec4u(j0) + vec4u(4u, 5u, 6u, 7u) <= vec4u(tq);
    let pLo = select(vec4f(0.0), exp(hsum(s0, s1, s2, s3) - lse), seeLo);
    let pHi = select(vec4f(0.0), exp(hsum(s4, s5, s6, s7) - lse), seeHi);
    let dsLo = pLo * (hsum(p0, p1, p2, p3) - D);
    let dsHi = pHi * (hsum(p4, p5, p6, p7) - D);
    for (var d = 0u; d < HS4; d++) {
      let k = qkv4(kb, d);
      var a = dq[d];
      a = fma(vec4f(dsLo.x), subgroupBroadcast(k, 0u), a); a = fma(vec4f(dsLo.y), subgroupBroadcast(k, 1u), a);
      a = fma(vec4f(dsLo.z), subgroupBroadcast(k, 2u), a); a = fma(vec4f(dsLo.w), subgroupBroadcast(k, 3u), a);
      a = fma(vec4f(dsHi.x), subgroupBroadcast(k, 4u), a); a = fma(vec4f(dsHi.y), subgroupBroadcast(k, 5u), a);
      a = fma(vec4f(dsHi.z), subgroupBroadcast(k, 6u), a); a = fma(vec4f(dsHi.w), subgroupBroadcast(k, 7u), a);
      dq[d] = a;
    }
  }
  if (t < T) {
    let gb = qkv_index(b, t, h);
    for (var d = 0u; d < HS4; d++) { store_grad4(gb, d, dq[d] * params.scale); }
  }
}

@compute @workgroup_size(WG)
fn backward_dkdv(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u,
                 @builtin(subgroup_invocation_id) lane: u32) {
  let b = wg.z;
  let h = wg.y;
  let T = params.T;
  let C = params.C;
  let j0 = wg.x * WG;
  let j = j0 + lid.x;
  let jk = min(j, T - 1u);
  var k: array<vec4f, HS4>;
  var v: array<vec4f, HS4>;
  var dk: array<vec4f, HS4>;   // dk, dv: zero-initialised
  var dv: array<vec4f, HS4>;
  load_key_rows(qkv_index(b, jk, h), &k, &v);
  let lb = (b * params.NH + h) * T;
  // Queries t ≥ j0 see some key of this workgroup; those below j (the first tiles only) weigh 0.
  for (var t0 = j0; t0 < T; t0 += 8u) {
    let tl = min(t0 + lane % 8u, T - 1u);   // this lane's query row of the tile
    let qb = qkv_index(b, tl, h);
    let ob = row_index(b, tl, h);
    let lseLo = lanes_lo(b_lse[lb + tl]);
    let lseHi = lanes_hi(b_lse[lb + tl]);
    let DLo = lanes_lo(b_scratch[lb + tl]);
    let DHi = lanes_hi(b_scratch[lb + tl]);
    var s0 = vec4f(0.0); var s1 = vec4f(0.0); var s2 = vec4f(0.0); var s3 = vec4f(0.0);
    var s4 = vec4f(0.0); var s5 = vec4f(0.0); var s6 = vec4f(0.0); var s7 = vec4f(0.0);
    var p0 = vec4f(0.0); var p1 = vec4f(0.0); var p2 = vec4f(0.0); var p3 = vec4f(0.0);
    var p4 = vec4f(0.0); var p5 = vec4f(0.0); var p6 = vec4f(0.0); var p7 = vec4f(0.0);
    for (var d = 0u; d < HS4; d++) {
      let qd = qkv4(qb, d);
      let gd = dout4(ob, d);
      let kd = k[d];
      let vd = v[d];
      s0 = fma(subgroupBroadcast(qd, 0u), kd, s0); s1 = fma(subgroupBroadcast(qd, 1u), kd, s1);
      s2 = fma(subgroupBroadcast(qd, 2u), kd, s2); s3 = fma(subgroupBroadcast(qd, 3u), kd, s3);
      s4 = fma(subgroupBroadcast(qd, 4u), kd, s4); s5 = fma(subgroupBroadcast(qd, 5u), kd, s5);
      s6 = fma(subgroupBroadcast(qd, 6u), kd, s6); s7 = fma(subgroupBroadcast(qd, 7u), kd, s7);
      p0 = fma(subgroupBroadcast(gd, 0u), vd, p0); p1 = fma(subgroupBroadcast(gd, 1u), vd, p1);
      p2 = fma(subgroupBroadcast(gd, 2u), vd, p2); p3 = fma(subgroupBroadcast(gd, 3u), vd, p3);
      p4 = fma(subgroupBroadcast(gd, 4u), vd, p4); p5 = fma(subgroupBroadcast(gd, 5u), vd, p5);
      p6 = fma(subgroupBroadcast(gd, 6u), vd, p6); p7 = fma(subgroupBroadcast(gd, 7u), vd, p7);
    }
    // Query t0 + i sees key j when j ≤ t0 + i < T.
    let seeLo = (vec4u(t0) + vec4u(0u, 1u, 2u, 3u) >= vec4u(jk)) & (vec4u(t0) + vec4u(0u, 1u, 2u, 3u) < vec4u(T));
    let seeHi = (vec4u(t0) + vec4u(4u, 5u, 6u, 7u) >= vec4u(jk)) & (vec4u(t0) + vec4u(4u, 5u, 6u, 7u) < vec4u(T));
    let pLo = select(vec4f(0.0), exp(hsum(s0, s1, s2, s3) - lseLo), seeLo);
    let pHi = select(vec4f(0.0), exp(hsum(s4, s5, s6, s7) - lseHi), seeHi);
    let dsLo = pLo * (hsum(p0, p1, p2, p3) - DLo);
    let dsHi = pHi * (hsum(p4, p5, p6, p7) - DHi);
    for (var d = 0u; d < HS4; d++) {
      let qd = qkv4(qb, d);
      let gd = dout4(ob, d);
      var a = dv[d];
      a = fma(vec4f(pLo.x), subgroupBroadcast(gd, 0u), a); a = fma(vec4f(pLo.y), subgroupBroadcast(gd, 1u), a);
      a = fma(vec4f(pLo.z), subgroupBroadcast(gd, 2u), a); a = fma(vec4f(pLo.w), subgroupBroadcast(gd, 3u), a);
      a = fma(vec4f(pHi.x), subgroupBroadcast(gd, 4u), a); a = fma(vec4f(pHi.y), subgroupBroadcast(gd, 5u), a);
      a = fma(vec4f(pHi.z), subgroupBroadcast(gd, 6u), a); a = fma(vec4f(pHi.w), subgroupBroadcast(gd, 7u), a);
      dv[d] = a;
      var c = dk[d];
      c = fma(vec4f(dsLo.x), subgroupBroadcast(qd, 0u), c); c = fma(vec4f(dsLo.y), subgroupBroadcast(qd, 1u), c);
      c = fma(vec4f(dsLo.z), subgroupBroadcast(qd, 2u), c); c = fma(vec4f(dsLo.w), subgroupBroadcast(qd, 3u), c);
      c = fma(vec4f(dsHi.x), subgroupBroadcast(qd, 4u), c); c = fma(vec4f(dsHi.y), subgroupBroadcast(qd, 5u), c);
      c = fma(vec4f(dsHi.z), subgroupBroadcast(qd, 6u), c); c = fma(vec4f(dsHi.w), subgroupBroadcast(qd, 7u), c);
      dk[d] = c;
    }
  }
  if (j < T) {
    let gb = qkv_index(b, j, h);
    for (var d = 0u; d < HS4; d++) {
      store_grad4(gb + C, d, dk[d] * params.scale);
      store_grad4(gb + 2u * C, d, dv[d]);
    }
  }
}
#else
// ======== tiled: a thread per row, 64 rows per workgroup, tiles staged in workgroup memory ========
const TILE: u32 = {{TILE}}u;
const BQ: u32 = 64u;

var<workgroup> ta: array<vec4f, TILE * HS4>;   // forward, dq: k tile   dkdv: q tile
var<workgroup> tb: array<vec4f, TILE * HS4>;   // forward, dq: v tile   dkdv: dout tile
var<workgroup> tl: array<f32, TILE>;           // dkdv: lse tile
var<workgroup> td: array<f32, TILE>;           // dkdv: D tile

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
    for (var d = 0u; d < HS4; d++) { store_out4(ob, d, acc[d] * inv); }
    f_lse[(b * params.NH + h) * T + t] = m + log(l);
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
  var dq: array<vec4f, HS4>;   // zero-initialised
  let D = load_query_rows(qkv_index(b, tq, h), row_index(b, tq, h), &q, &go);
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
  var dk: array<vec4f, HS4>;   // dk, dv: zero-initialised
  var dv: array<vec4f, HS4>;
  load_key_rows(qkv_index(b, jk, h), &k, &v);
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
#endif
