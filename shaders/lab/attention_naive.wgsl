// Attention lab v1, the textbook version: the causal scores, probabilities and their gradients are
// materialised in T×T scratch matrices, one kernel per step of the math (llm.c's attention_forward1).
//   qkv [B, T, 3C] (q, k, v at columns 0, C, 2C; head h at h·HS), out [B, T, C], lse [B, NH, T],
//   att, datt [B, NH, T, T] (scratch: 2·B·NH·T² floats), scale = 1/√HS, only j ≤ t is ever read.
//   forward:  scores   att_tj = scale·q_t·k_j                  a thread per (t, j), 16×16 workgroups
//             softmax  lse_t = log Σ_j exp(att_tj),  att_tj ← exp(att_tj − lse_t)   a thread per row t
//             pv       out_t = Σ_{j≤t} att_tj·v_j              a thread per (t, d)
//   backward: dp       datt_tj = dout_t·v_j                    a thread per (t, j)
//             ds       D_t = Σ_j att_tj·datt_tj,  datt_tj ← scale·att_tj·(datt_tj − D_t)   a thread per row t
//             dq       dq_t = Σ_{j≤t} datt_tj·k_j              a thread per (t, d)
//             dkdv     dk_j = Σ_{t≥j} datt_tj·q_t,  dv_j = Σ_{t≥j} att_tj·dout_t   a thread per (j, d)
// Every sum runs in a fixed order, so results are bitwise repeatable. dqkv is assigned.
// Dispatch: (t, j) kernels (⌈T/16⌉, ⌈T/16⌉, B·NH); row kernels (⌈T/64⌉, 1, B·NH); (t, d) kernels
// (⌈HS/16⌉, ⌈T/16⌉, B·NH).
struct Params { T: u32, C: u32, NH: u32, scale: f32 }
@group(0) @binding(0) var<uniform> params: Params;

const HS: u32 = {{HS}}u;
const NEG: f32 = -3.402823e38;

fn qkv_index(b: u32, t: u32, h: u32) -> u32 { return (b * params.T + t) * 3u * params.C + h * HS; }
fn row_index(b: u32, t: u32, h: u32) -> u32 { return (b * params.T + t) * params.C + h * HS; }
fn att_index(bh: u32, t: u32, j: u32) -> u32 { return (bh * params.T + t) * params.T + j; }

// ---- scores: qkv (read), att (write) ----
@group(0) @binding(1) var<storage, read> s_qkv: array<f32>;
@group(0) @binding(2) var<storage, read_write> s_att: array<f32>;

@compute @workgroup_size(16, 16)
fn scores(@builtin(global_invocation_id) g: vec3u) {
  let j = g.x;
  let t = g.y;
  let bh = g.z;
  let b = bh / params.NH;
  let h = bh % params.NH;
  if (t >= params.T || j > t) { return; }
  let qb = qkv_index(b, t, h);
  let kb = qkv_index(b, j, h) + params.C;
  var s = 0.0;
  for (var d = 0u; d < HS; d++) { s = fma(s_qkv[qb + d], s_qkv[kb + d], s); }
  s_att[att_index(bh, t, j)] = s * params.scale;
}

// ---- softmax: att (read/write, in place), lse (write) ----
@group(0) @binding(1) var<storage, read_write> m_att: array<f32>;
@group(0) @binding(2) var<storage, read_write> m_lse: array<f32>;

@compute @workgroup_size(64)
fn softmax(@builtin(global_invocation_id) g: vec3u) {
  let t = g.x;
  let bh = g.z;
  if (t >= params.T) { return; }
  let base = att_index(bh, t, 0u);
  var m = NEG;
  for (var j = 0u; j <= t; j++) { m = max(m, m_att[base + j]); }
  var l = 0.0;
  for (var j = 0u; j <= t; j++) { l += exp(m_att[base + j] - m); }
  let lse = m + log(l);
  for (var j = 0u; j <= t; j++) { m_att[base + j] = exp(m_att[base + j] - lse); }
  m_lse[bh * params.T + t] = lse;
}

// ---- pv: att, qkv (read), out (write) ----
@group(0) @binding(1) var<storage, read> p_att: array<f32>;
@group(0) @binding(2) var<storage, read> p_qkv: array<f32>;
@group(0) @binding(3) var<storage, read_write> p_out: array<f32>;

@compute @workgroup_size(16, 16)
fn pv(@builtin(global_invocation_id) g: vec3u) {
  let d = g.x;
  let t = g.y;
  let bh = g.z;
  let b = bh / params.NH;
  let h = bh % params.NH;
  if (t >= params.T || d >= HS) { return; }
  let base = att_index(bh, t, 0u);
  var o = 0.0;
  for (var j = 0u; j <= t; j++) { o = fma(p_att[base + j], p_qkv[qkv_index(b, j, h) + 2u * params.C + d], o); }
  p_out[row_index(b, t, h) + d] = o;
}

// ---- dp: dout, qkv (read), datt (write) ----
@group(0) @binding(1) var<storage, read> dp_dout: array<f32>;
@group(0) @binding(2) var<storage, read> dp_qkv: array<f32>;
@group(0) @binding(3) var<storage, read_write> dp_datt: array<f32>;

@compute @workgroup_size(16, 16)
fn dp(@builtin(global_invocation_id) g: vec3u) {
  let j = g.x;
  let t = g.y;
  let bh = g.z;
  let b = bh / params.NH;
  let h = bh % params.NH;
  if (t >= params.T || j > t) { return; }
  let ob = row_index(b, t, h);
  let vb = qkv_index(b, j, h) + 2u * params.C;
  var s = 0.0;
  for (var d = 0u; d < HS; d++) { s = fma(dp_dout[ob + d], dp_qkv[vb + d], s); }
  dp_datt[att_index(bh, t, j)] = s;
}

// ---- ds: att (read), datt (read/write, in place) ----
@group(0) @binding(1) var<storage, read> ds_att: array<f32>;
@group(0) @binding(2) var<storage, read_write> ds_datt: array<f32>;

@compute @workgroup_size(64)
fn ds(@builtin(global_invocation_id) g: vec3u) {
  let t = g.x;
  let bh = g.z;
  if (t >= params.T) { return; }
  let base = att_index(bh, t, 0u);
  var D = 0.0;
  for (var j = 0u; j <= t; j++) { D = fma(ds_att[base + j], ds_datt[base + j], D); }
  for (var j = 0u; j <= t; j++) { ds_datt[base + j] = params.scale * ds_att[base + j] * (ds_datt[base + j] - D); }
}

// ---- dq: datt, qkv (read), dqkv (write) ----
@group(0) @binding(1) var<storage, read> q_datt: array<f32>;
@group(0) @binding(2) var<storage, read> q_qkv: array<f32>;
@group(0) @binding(3) var<storage, read_write> q_dqkv: array<f32>;

@compute @workgroup_size(16, 16)
fn dq(@builtin(global_invocation_id) g: vec3u) {
  let d = g.x;
  let t = g.y;
  let bh = g.z;
  let b = bh / params.NH;
  let h = bh % params.NH;
  if (t >= params.T || d >= HS) { return; }
  let base = att_index(bh, t, 0u);
  var s = 0.0;
  for (var j = 0u; j <= t; j++) { s = fma(q_datt[base + j], q_qkv[qkv_index(b, j, h) + params.C + d], s); }
  q_dqkv[qkv_index(b, t, h) + d] = s;
}

// ---- dkdv: att, datt, dout, qkv (read), dqkv (write) ----
@group(0) @binding(1) var<storage, read> kv_att: array<f32>;
@group(0) @binding(2) var<storage, read> kv_datt: array<f32>;
@group(0) @binding(3) var<storage, read> kv_dout: array<f32>;
@group(0) @binding(4) var<storage, read> kv_qkv: array<f32>;
@group(0) @binding(5) var<storage, read_write> kv_dqkv: array<f32>;

@compute @workgroup_size(16, 16)
fn dkdv(@builtin(global_invocation_id) g: vec3u) {
  let d = g.x;
  let j = g.y;
  let bh = g.z;
  let b = bh / params.NH;
  let h = bh % params.NH;
  if (j >= params.T || d >= HS) { return; }
  var sk = 0.0;
  var sv = 0.0;
  for (var t = j; t < params.T; t++) {
    let a = att_index(bh, t, j);
    sk = fma(kv_datt[a], kv_qkv[qkv_index(b, t, h) + d], sk);
    sv = fma(kv_att[a], kv_dout[row_index(b, t, h) + d], sv);
  }
  let gb = qkv_index(b, j, h) + params.C + d;
  kv_dqkv[gb] = sk;
  kv_dqkv[gb + params.C] = sv;
}
