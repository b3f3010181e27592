// Splitting the vocabulary dimension so that no binding exceeds the device's maxStorageBufferBindingSize:
// the token embedding wte [V, C] and the logits [R, V] (GPT-2: 154 MB and, at B·T = 1024, 206 MB) above a
// 128 MiB limit are bound one chunk of Vc vocabulary rows at a time. Vc is a multiple of 64 (or rowAlign), so each chunk's
// byte offset in wte (v0·C·4) and in a [V] logits vector (v0·4) is a multiple of 256, the storage offset
// alignment. The math is unchanged; only which rows a dispatch sees.
import { LimitError } from '../gpu/buffers.ts';

/** WebGPU's default maxStorageBufferBindingSize (128 MiB), the smallest any adapter offers. */
export const DEFAULT_MAX_BINDING_BYTES = 134217728;

/**
 * Vocabulary rows per chunk such that Vc·C·4 and R·Vc·4 each fit `maxBindingBytes`, or 0 when V·C·4 and
 * R·V·4 both fit already (no chunking). R = 0 considers wte alone.
 */
export function vocabChunk(V: number, C: number, R: number, maxBindingBytes: number, rowAlign = 64): number {
  if (!Number.isFinite(maxBindingBytes) || (V * C * 4 <= maxBindingBytes && R * V * 4 <= maxBindingBytes)) return 0;
  const Vc = Math.floor(maxBindingBytes / (4 * Math.max(C, R)) / rowAlign) * rowAlign;
  if (Vc < rowAlign) {
    throw new LimitError(
      `a ${rowAlign}-row vocabulary chunk (wte ${rowAlign * C * 4} bytes, logits ${rowAlign * R * 4} bytes) is above the binding limit (${maxBindingBytes}); use a smaller batch or sequence length`,
    );
  }
  return Vc;
}

/** [v0, v1) of each chunk of Vc rows over V. */
export function vocabRanges(V: number, Vc: number): [number, number][] {
  const out: [number, number][] = [];
  for (let v0 = 0; v0 < V; v0 += Vc) out.push([v0, Math.min(V, v0 + Vc)]);
  return out;
}
