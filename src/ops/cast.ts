// Records the f32 → f16 copy of the parameter arena (shaders/cast.wgsl) that mixed precision's matmuls read.
import { grid1d, type Recorder } from '../gpu/program.ts';

/**
 * dst (f16) = src (f32) for elements 0 … n−1 of two arenas (n a multiple of 4), in binding windows that keep
 * both bindings aligned: a window starts at a multiple of minStorageBufferOffsetAlignment/2 elements, so its
 * f32 offset is 2 alignments and its f16 offset 1 (ParamStore aligns tensors to twice the alignment).
 */
export async function recordCastF16(rec: Recorder, label: string, src: GPUBuffer, dst: GPUBuffer, n: number): Promise<void> {
  if (n % 4 !== 0) throw new Error(`${label}: the cast works in vec4s, got ${n} elements`);
  const { minStorageBufferOffsetAlignment: align, maxStorageBufferBindingSize: maxBinding } = rec.device.limits;
  const unit = align / 2; // elements
  const window = Math.floor(maxBinding / 4 / unit) * unit;
  for (let start = 0; start < n; start += window) {
    const count = Math.min(window, n - start);
    const grid = grid1d(count / 4);
    await rec.dispatch({
      label: n > window ? `${label} (elements ${start}…)` : label,
      shader: 'cast',
      entry: 'main',
      bindings: ['read', 'write'],
      uniform: [
        ['u32', count / 4],
        ['u32', grid.stride],
      ],
      resources: [
        { buffer: src, offset: start * 4, size: count * 4 },
        { buffer: dst, offset: start * 2, size: count * 2 },
      ],
      workgroups: grid.workgroups,
      cost: { flops: 0, bytes: 6 * count },
    });
  }
}
