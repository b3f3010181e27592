// Workgroup reductions in a fixed tree order (bitwise repeatable), shared by the row kernels.
// The including shader defines `const WG: u32` (a power of two, its workgroup size); every thread of the
// workgroup must call these (they contain barriers). Each returns the result to every thread.
var<workgroup> red: array<f32, WG>;

fn workgroup_sum(x: f32, t: u32) -> f32 {
  red[t] = x;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (t < k) { red[t] = red[t] + red[t + k]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

fn workgroup_max(x: f32, t: u32) -> f32 {
  red[t] = x;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (t < k) { red[t] = max(red[t], red[t + k]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

// (Σ x.x, Σ x.y): two sums in one tree, for the barriers of one.
var<workgroup> red2: array<vec2f, WG>;

fn workgroup_sum2(x: vec2f, t: u32) -> vec2f {
  red2[t] = x;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (t < k) { red2[t] = red2[t] + red2[t + k]; }
    workgroupBarrier();
  }
  let r = red2[0];
  workgroupBarrier();
  return r;
}
