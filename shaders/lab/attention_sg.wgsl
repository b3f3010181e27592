// Attention lab v6/v7: a thread per row, no workgroup memory and no barriers; the rows of the other index
// are passed between lanes with subgroupBroadcast. The math is the production kernel's
// (shaders/attention.wgsl: online softmax forward saving lse, backward recomputing P from lse):
//   qkv [B, T, 3C] (q, k, v at columns 0, C, 2C; head h at h·HS), out [B, T, C], lse and D [B, NH, T]
//   forward:  s_tj = scale·q_t·k_j (j ≤ t),  lse_t = log Σ_j exp(s_tj),  out_t = Σ_j exp(s_tj − lse_t)·v_j
//   backward: D_t = dout_t·out_t,  P_tj = exp(s_tj − lse_t),  dS_tj = P_tj·(dout_t·v_j − D_t)
//             dq_t = scale·Σ_{j≤t} dS_tj·k_j   (backward_dq: a thread per query row; also stores D_t)
//             dk_j = scale·Σ_{t≥j} dS_tj·q_t,  dv_j = Σ_{t≥j} P_tj·dout_t   (backward_dkdv: a thread per key row)
// Why: a CPU driver (lavapipe) runs a subgroup as one SIMD vector, but turns every load whose address it
// cannot prove uniform (anything computed from ids or loop counters) into a per-lane loop of bounds-
// checked scalar loads, and a workgroup-memory tile costs the same loads plus barriers. Here the other
// index is walked in tiles of 8 rows: lane s of the subgroup loads only row (tile start + s % 8), and
// every lane gets all 8 rows by subgroupBroadcast (a register shuffle there). Loads per lane per 8 keys:
// one k row and one v row, for 16·HS FMAs.
// Workgroup = WG rows (a multiple of 8, within one subgroup or several whole ones): loop bounds depend
// only on the workgroup, so every lane is active at every broadcast; rows past T are clamped for loads
// and store nothing. The causal mask is applied inside the tiles that straddle the diagonal (P = 0
// there): a row does at most WG−1 wasted keys. Every sum runs in increasing key (or query) order, in a
// fixed association: results are bitwise repeatable. dqkv is assigned, or accumulated when ACCUMULATE.
// VEC4: qkv, out, dout and dqkv are bound as vec4 arrays (needs HS and C multiples of 4); otherwise rows
// are read as scalars into vec4 registers, zero past HS.
// Needs the `subgroups` feature with at least 8 lanes. Dispatch (every entry point): (⌈T / WG⌉, NH, B).
enable subgroups;
struct Params { T: u32, C: u32, NH: u32, scale: f32 }
@group(0) @binding(0) var<uniform> params: Params;

const HS: u32 = {{HS}}u;
const HS4: u32 = {{HS4}}u;
const WG: u32 = {{WG}}u;
const NEG: f32 = -3.402823e38;

#if {{VEC4}}
alias Elem = vec4f;
#else
alias Elem = f32;
#endif

fn qkv_index(b: u32, t: u32, h: u32) -> u32 { return (b * params.T + t) * 3u * params.C + h * HS; }
fn row_index(b: u32, t: u32, h: u32) -> u32 { return (b * params.T + t) * params.C + h * HS; }
fn sum4(v: vec4f) -> f32 { return (v.x + v.y) + (v.z + v.w); }
fn hsum(a: vec4f, b: vec4f, c: vec4f, d: vec4f) -> vec4f { return vec4f(sum4(a), sum4(b), sum4(c), sum4(d)); }
fn max4(v: vec4f) -> f32 { return max(max(v.x, v.y), max(v.z, v.w)); }
// Lanes 0–3 / 4–7 of a per-lane scalar, as a vec4.
fn lanes_lo(x: f32) -> vec4f { return vec4f(subgroupBroadcast(x, 0u), subgroupBroadcast(x, 1u), subgroupBroadcast(x, 2u), subgroupBroadcast(x, 3u)); }
fn lanes_hi(x: f32) -> vec4f { return vec4f(subgroupBroadcast(x, 4u), subgroupBroadcast(x, 5u), subgroupBroadcast(x, 6u), subgroupBroadcast(x, 7u)); }

// ---- forward: qkv (read); out, lse (write) ----
@group(0) @binding(1) var<storage, read> f_qkv: array<Elem>;
@group(0) @binding(2) var<storage, read_write> f_out: array<Elem>;
@group(0) @binding(3) var<storage, read_write> f_lse: array<f32>;

// Elements 4·d4 … 4·d4+3 of the HS-row starting at element `base` (zero past HS).
fn f_row4(base: u32, d4: u32) -> vec4f {
#if {{VEC4}}
  return f_qkv[base / 4u + d4];
#else
  var r = vec4f(0.0);
  for (var e = 0u; e < 4u; e++) { if (4u * d4 + e < HS) { r[e] = f_qkv[base + 4u * d4 + e]; } }
  return r;
#endif
}

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
    for (var d = 0u; d < HS4; d++) {
      let o = acc[d] * inv;
#if {{VEC4}}
      f_out[ob / 4u + d] = o;
#else
      for (var e = 0u; e < 4u; e++) { if (4u * d + e < HS) { f_out[ob + 4u * d + e] = o[e]; } }
#endif
    }
    f_lse[(b * params.NH + h) * T + t] = m + log(l);
  }
}

// ---- backward_dq and backward_dkdv: dout, qkv, out, lse (read); dqkv, scratch (write) ----
@group(0) @binding(1) var<storage, read> b_dout: array<Elem>;
@group(0) @binding(2) var<storage, read> b_qkv: array<Elem>;
@group(0) @binding(3) var<storage, read> b_out: array<Elem>;
@group(0) @binding(4) var<storage, read> b_lse: array<f32>;
@group(0) @binding(5) var<storage, read_write> b_dqkv: array<Elem>;
@group(0) @binding(6) var<storage, read_write> b_scratch: array<f32>;   // D [B, NH, T]

#if {{VEC4}}
fn qkv4(base: u32, d4: u32) -> vec4f { return b_qkv[base / 4u + d4]; }
fn dout4(base: u32, d4: u32) -> vec4f { return b_dout[base / 4u + d4]; }
fn out4(base: u32, d4: u32) -> vec4f { return b_out[base / 4u + d4]; }
fn store_grad4(base: u32, d4: u32, v: vec4f) {
#if {{ACCUMULATE}}
  b_dqkv[base / 4u + d4] += v;
#else
  b_dqkv[base / 4u + d4] = v;
#endif
}
#else
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
fn store_grad4(base: u32, d4: u32, v: vec4f) {
  for (var e = 0u; e < 4u; e++) {
    if (4u * d4 + e < HS) {
#if {{ACCUMULATE}}
      b_dqkv[base + 4u * d4 + e] += v[e];
#else
      b_dqkv[base + 4u * d4 + e] = v[e];
#endif
    }
  }
}
#endif

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
