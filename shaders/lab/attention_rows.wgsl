// Attention lab v3/v4: a thread per row, no workgroup memory and no barriers. The math is the production
// kernel's (shaders/attention.wgsl: online softmax forward saving lse, backward recomputing P from lse):
//   qkv [B, T, 3C] (q, k, v at columns 0, C, 2C; head h at h·HS), out [B, T, C], lse and D [B, NH, T]
//   forward:  s_tj = scale·q_t·k_j (j ≤ t),  lse_t = log Σ_j exp(s_tj),  out_t = Σ_j exp(s_tj − lse_t)·v_j
//   backward: D_t = dout_t·out_t,  P_tj = exp(s_tj − lse_t),  dS_tj = P_tj·(dout_t·v_j − D_t)
//             dq_t = scale·Σ_{j≤t} dS_tj·k_j   (backward_dq: a thread per query row; also stores D_t)
//             dk_j = scale·Σ_{t≥j} dS_tj·q_t,  dv_j = Σ_{t≥j} P_tj·dout_t   (backward_dkdv: a thread per key row)
// Memory: O(B·NH·T) (lse, D). Each thread keeps its own rows (q or k, v, and accumulators) in registers.
// The other index is walked straight from storage, in tiles of TILE rows, with loop bounds that depend only
// on the workgroup (not on the thread): every lane of a workgroup reads the same k/v (or q/dout) row at the
// same moment, so the load is uniform and needs no workgroup memory to be shared, and no barrier. The
// causal mask is applied inside the tiles that straddle the diagonal (P = 0 there), so a workgroup of WG
// rows does at most WG−1 wasted keys per row; WG is small (8: one SIMD vector on lavapipe) to keep that low.
// Every sum runs in increasing key (or query) order: results are bitwise repeatable. dqkv is assigned.
// VEC4: qkv, out and dout are bound as vec4 arrays (needs HS and C multiples of 4); otherwise rows are read
// as scalars into vec4 registers, zero past HS. Bindings, row loads and stores: lib/attention_io, as in the
// production kernel (here ACT_T = f32, ACCUMULATE off).
// Dispatch (every entry point): (⌈T / WG⌉, NH, B).
#include "lib/half"
#include "lib/attention_io"
const WG: u32 = {{WG}}u;
const TILE: u32 = {{TILE}}u;

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let b = wg.z;
  let h = wg.y;
  let T = params.T;
  let C = params.C;
  let t0 = wg.x * WG;
  let t = t0 + lid.x;
  let tq = min(t, T - 1u);
  var q: array<vec4f, HS4>;
  var acc: array<vec4f, HS4>;
  var s: array<f32, TILE>;
  let qb = qkv_index(b, tq, h);
  for (var d = 0u; d < HS4; d++) { q[d] = f_row4(qb, d) * params.scale; acc[d] = vec4f(0.0); }
  var m = NEG;
  var l = 0.0;
  let tEnd = min(T, t0 + WG);   // keys 0 … tEnd−1 serve some row of this workgroup
  for (var j0 = 0u; j0 < tEnd; j0 += TILE) {
    var mt = m;
    for (var jj = 0u; jj < TILE; jj++) {
      let j = j0 + jj;
      let kb = qkv_index(b, min(j, T - 1u), h) + C;
      var dv = vec4f(0.0);
      for (var d = 0u; d < HS4; d++) { dv = fma(q[d], f_row4(kb, d), dv); }
      s[jj] = select(NEG, sum4(dv), j <= tq);   // keys past the row (or past T) weigh 0
      mt = max(mt, s[jj]);
    }
    let corr = exp(m - mt);
    l *= corr;
    for (var d = 0u; d < HS4; d++) { acc[d] *= corr; }
    for (var jj = 0u; jj < TILE; jj++) {
      let j = j0 + jj;
      let vb = qkv_index(b, min(j, T - 1u), h) + 2u * C;
      let p = select(0.0, exp(s[jj] - mt), j <= tq);
      l += p;
      for (var d = 0u; d < HS4; d++) { acc[d] = fma(vec4f(p), f_row4(vb, d), acc[d]); }
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
fn backward_dq(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
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
  for (var j0 = 0u; j0 < tEnd; j0 += TILE) {
    for (var jj = 0u; jj < TILE; jj++) {
      let j = j0 + jj;
      let kb = qkv_index(b, min(j, T - 1u), h);
      var sc = vec4f(0.0);
      var dp = vec4f(0.0);
      for (var d = 0u; d < HS4; d++) {
        sc = fma(q[d], qkv4(kb + C, d), sc);
        dp = fma(go[d], qkv4(kb + 2u * C, d), dp);
      }
      let p = select(0.0, exp(sum4(sc) - lse), j <= tq);
      let ds = vec4f(p * (sum4(dp) - D));
      for (var d = 0u; d < HS4; d++) { dq[d] = fma(ds, qkv4(kb + C, d), dq[d]); }
    }
  }
  if (t < T) {
    let gb = qkv_index(b, t, h);
    for (var d = 0u; d < HS4; d++) { store_grad4(gb, d, dq[d] * params.scale); }
  }
}

@compute @workgroup_size(WG)
fn backward_dkdv(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
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
  for (var t0 = j0; t0 < T; t0 += TILE) {
    for (var tt = 0u; tt < TILE; tt++) {
      let t = min(t0 + tt, T - 1u);
      let qb = qkv_index(b, t, h);
      let ob = row_index(b, t, h);
      var sc = vec4f(0.0);
      var dp = vec4f(0.0);
      for (var d = 0u; d < HS4; d++) {
        sc = fma(qkv4(qb, d), k[d], sc);
        dp = fma(dout4(ob, d), v[d], dp);
      }
      let seen = t0 + tt >= jk && t0 + tt < T;   // query t0+tt sees key j
      let p = select(0.0, exp(sum4(sc) - b_lse[lb + t]), seen);
      let ds = vec4f(p * (sum4(dp) - b_scratch[lb + t]));
      let pv = vec4f(p);
      for (var d = 0u; d < HS4; d++) {
        dv[d] = fma(pv, dout4(ob, d), dv[d]);
        dk[d] = fma(ds, qkv4(qb, d), dk[d]);
      }
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
