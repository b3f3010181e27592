// The bindings, index helpers and row loads/stores shared by the thread-per-row attention kernels
// (attention.wgsl, lab/attention_rows.wgsl); no entry points here. The including shader includes lib/half
// first and defines HS, HS4, VEC4, ACT_T and ACCUMULATE.
//   qkv [B, T, 3C] (q, k, v at columns 0, C, 2C; head h at columns h·HS …), out and dout [B, T, C],
//   lse and D [B, NH, T]. A row of HS elements is handled as HS4 = ⌈HS/4⌉ vec4s, zero past HS.
// VEC4: qkv, out, dout and dqkv are bound as vec4 arrays (HS and C multiples of 4); otherwise as scalars.
struct Params { T: u32, C: u32, NH: u32, scale: f32 }
@group(0) @binding(0) var<uniform> params: Params;

const HS: u32 = {{HS}}u;
const HS4: u32 = {{HS4}}u;
const NEG: f32 = -3.402823e38;

fn qkv_index(b: u32, t: u32, h: u32) -> u32 { return (b * params.T + t) * 3u * params.C + h * HS; }
fn row_index(b: u32, t: u32, h: u32) -> u32 { return (b * params.T + t) * params.C + h * HS; }
fn sum4(v: vec4f) -> f32 { return (v.x + v.y) + (v.z + v.w); }

#if {{VEC4}}
alias Elem = vec4<{{ACT_T}}>;
#else
alias Elem = {{ACT_T}};
#endif

// ---- forward: qkv (read); out, lse (write) ----
@group(0) @binding(1) var<storage, read> f_qkv: array<Elem>;
@group(0) @binding(2) var<storage, read_write> f_out: array<Elem>;
@group(0) @binding(3) var<storage, read_write> f_lse: array<f32>;

// Elements 4·d4 … 4·d4+3 of the HS-row starting at element `base` (zero past HS).
fn f_row4(base: u32, d4: u32) -> vec4f {
#if {{VEC4}}
  return vec4f(f_qkv[base / 4u + d4]);
#else
  var r = vec4f(0.0);
  for (var e = 0u; e < 4u; e++) { if (4u * d4 + e < HS) { r[e] = f32(f_qkv[base + 4u * d4 + e]); } }
  return r;
#endif
}

// out[base + 4·d4 + e] = o[e] for the elements below HS.
fn store_out4(base: u32, d4: u32, o: vec4f) {
#if {{VEC4}}
  f_out[base / 4u + d4] = to4_{{ACT_T}}(o);
#else
  for (var e = 0u; e < 4u; e++) { if (4u * d4 + e < HS) { f_out[base + 4u * d4 + e] = to_{{ACT_T}}(o[e]); } }
#endif
}

// ---- backward_dq and backward_dkdv: dout, qkv, out, lse (read); dqkv, scratch (write) ----
@group(0) @binding(1) var<storage, read> b_dout: array<Elem>;
@group(0) @binding(2) var<storage, read> b_qkv: array<Elem>;
@group(0) @binding(3) var<storage, read> b_out: array<Elem>;
@group(0) @binding(4) var<storage, read> b_lse: array<f32>;
@group(0) @binding(5) var<storage, read_write> b_dqkv: array<Elem>;
@group(0) @binding(6) var<storage, read_write> b_scratch: array<f32>;   // D [B, NH, T]

// qkv4, dout4, out4: elements 4·d4 … 4·d4+3 of the row at `base` (zero past HS).
// store_grad4: dqkv[base + 4·d4 + e] (=|+=) v[e] for the elements below HS (+= when ACCUMULATE).
#if {{VEC4}}
fn qkv4(base: u32, d4: u32) -> vec4f { return vec4f(b_qkv[base / 4u + d4]); }
fn dout4(base: u32, d4: u32) -> vec4f { return vec4f(b_dout[base / 4u + d4]); }
fn out4(base: u32, d4: u32) -> vec4f { return vec4f(b_out[base / 4u + d4]); }
fn store_grad4(base: u32, d4: u32, v: vec4f) {
#if {{ACCUMULATE}}
  b_dqkv[base / 4u + d4] = to4_{{ACT_T}}(vec4f(b_dqkv[base / 4u + d4]) + v);
#else
  b_dqkv[base / 4u + d4] = to4_{{ACT_T}}(v);
#endif
}
#else
fn qkv4(base: u32, d4: u32) -> vec4f {
  var r = vec4f(0.0);
  for (var e = 0u; e < 4u; e++) { if (4u * d4 + e < HS) { r[e] = f32(b_qkv[base + 4u * d4 + e]); } }
  return r;
}
fn dout4(base: u32, d4: u32) -> vec4f {
  var r = vec4f(0.0);
  for (var e = 0u; e < 4u; e++) { if (4u * d4 + e < HS) { r[e] = f32(b_dout[base + 4u * d4 + e]); } }
  return r;
}
fn out4(base: u32, d4: u32) -> vec4f {
  var r = vec4f(0.0);
  for (var e = 0u; e < 4u; e++) { if (4u * d4 + e < HS) { r[e] = f32(b_out[base + 4u * d4 + e]); } }
  return r;
}
fn store_grad4(base: u32, d4: u32, v: vec4f) {
  for (var e = 0u; e < 4u; e++) {
    if (4u * d4 + e < HS) {
#if {{ACCUMULATE}}
      b_dqkv[base + 4u * d4 + e] = to_{{ACT_T}}(f32(b_dqkv[base + 4u * d4 + e]) + v[e]);
#else
      b_dqkv[base + 4u * d4 + e] = to_{{ACT_T}}(v[e]);
#endif
    }
  }
}
#endif

// The backward kernels' own rows. backward_dq, query row t (qb = qkv_index, ob = row_index of t): q_t·scale
// and dout_t into q and go; returns D_t = dout_t·out_t. backward_dkdv, key row j (kb = qkv_index of j):
// k_j·scale and v_j into k and v.
fn load_query_rows(qb: u32, ob: u32, q: ptr<function, array<vec4f, HS4>>, go: ptr<function, array<vec4f, HS4>>) -> f32 {
  var Dv = vec4f(0.0);
  for (var d = 0u; d < HS4; d++) {
    (*q)[d] = qkv4(qb, d) * params.scale;
    (*go)[d] = dout4(ob, d);
    Dv = fma((*go)[d], out4(ob, d), Dv);
  }
  return sum4(Dv);
}
fn load_key_rows(kb: u32, k: ptr<function, array<vec4f, HS4>>, v: ptr<function, array<vec4f, HS4>>) {
  for (var d = 0u; d < HS4; d++) {
    (*k)[d] = qkv4(kb + params.C, d) * params.scale;
    (*v)[d] = qkv4(kb + 2u * params.C, d);
  }
}
