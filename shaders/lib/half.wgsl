// Stores into float bindings whose type a define chooses (f32, or f16 under mixed precision): a kernel
// writes to_f32(v) or to_f16(v) (spelt with the define that types the binding) for an f32 value v.
// to4_f32 / to4_f16 do the same for a vec4. to_f32 is the identity. to_f16 rounds to nearest, as IEEE does: |v| ≥ 65520 (which rounds past f16's
// largest, 65504) and NaN become ±Inf, so that an overflow stays visible to the non-finite check that
// drives loss scaling, and 65504 < |v| < 65520 becomes ±65504. Only in-range values reach the conversion
// itself, whose result WGSL leaves indeterminate out of range.
// Loads need no helper: f32(x) and vec4f(x) convert either type.
fn to_f32(v: f32) -> f32 { return v; }
fn to4_f32(v: vec4f) -> vec4f { return v; }
#if {{F16}}
fn to4_f16(v: vec4f) -> vec4<f16> { return vec4<f16>(to_f16(v.x), to_f16(v.y), to_f16(v.z), to_f16(v.w)); }
fn to_f16(v: f32) -> f16 {
  let big = (bitcast<u32>(v) & 0x7fffffffu) >= 0x477ff000u;
  let inf = bitcast<vec2<f16>>(select(0x7c007c00u, 0xfc00fc00u, v < 0.0)).x;
  return select(f16(clamp(v, -65504.0, 65504.0)), inf, big);
}
#endif
