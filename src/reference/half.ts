// IEEE 754 half precision on the host, for tests of the f16 kernels and for uploading f16 data:
// round-to-nearest-even encoding (subnormals, ±Inf past 65504 + half an ulp, NaN kept), and the
// rounding a value undergoes when stored as f16.
import { halfToFloat } from '../gpu/buffers.ts';

export { halfToFloat };

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The f16 bit pattern nearest to x (ties to even). */
export function halfBits(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const e = (b >>> 23) & 0xff;
  let m = b & 0x7fffff;
  if (e === 0xff) return sign | 0x7c00 | (m ? 0x200 : 0); // Inf or NaN
  const he = e - 127 + 15;
  if (he >= 0x1f) return sign | 0x7c00; // overflow
  if (he <= 0) {
    // Subnormal (or zero): shift the significand with its implicit 1 into place, then round.
    if (he < -10) return sign;
    m |= 0x800000;
    const shift = 14 - he;
    const half = 1 << (shift - 1);
    const rest = m & ((1 << shift) - 1);
    let h = m >>> shift;
    if (rest > half || (rest === half && h & 1)) h++;
    return sign | h;
  }
  let h = (he << 10) | (m >>> 13);
  const rest = m & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++; // may carry into the exponent, up to Inf: correct
  return sign | h;
}

/** Encodes an array as f16 bit patterns. */
export function toHalf(x: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = halfBits(x[i]);
  return out;
}

/** x rounded to the nearest f16 value (as a float). */
export function roundHalf(x: ArrayLike<number>): Float32Array {
  return halfToFloat(toHalf(x));
}
