// Records the LayerNorm kernels (shaders/layernorm.wgsl): the forward (saving mean and rstd per row),
// and the backward as two dispatches, dinp per row and the parameter gradients per column block.
// On CPU implementations of WebGPU (lavapipe, SwiftShader) the row kernels run one thread per row instead of
// one workgroup per row: barriers are expensive there and rows are short.
import type { Recorder } from '../gpu/program.ts';
import type { View } from '../gpu/buffers.ts';
import { isSoftwareAdapter } from './matmul.ts';

function rowGrid(R: number): [number, number, number] {
  return [Math.max(1, Math.min(R, 65535)), Math.max(1, Math.ceil(R / 65535)), 1];
}

/** Entry point and grid for a per-row kernel: a thread per row on CPU adapters, a workgroup per row elsewhere. */
function rowKernel(rec: Recorder, entry: string, R: number, perRow?: boolean): { entry: string; workgroups: [number, number, number] } {
  if ((perRow ?? isSoftwareAdapter(rec.rt)) && Math.ceil(R / 64) <= 65535) return { entry: `${entry}_rows`, workgroups: [Math.max(1, Math.ceil(R / 64)), 1, 1] };
  return { entry, workgroups: rowGrid(R) };
}

/** out = (inp − mean)·rstd·weight + bias over rows of C; mean and rstd [R] are saved for the backward. */
export function recordLayerNormForward(
  rec: Recorder,
  label: string,
  a: { inp: View; weight: View; bias: View; out: View; mean: View; rstd: View; R: number; C: number; eps: number; perRow?: boolean },
): Promise<void> {
  const { R, C } = a;
  return rec.dispatch({
    label,
    shader: 'layernorm',
    ...rowKernel(rec, 'forward', R, a.perRow),
    bindings: ['read', 'read', 'read', 'write', 'write', 'write'],
    defines: { ACCUMULATE: false },
    uniform: [
      ['u32', R],
      ['u32', C],
      ['f32', a.eps],
    ],
    resources: [a.inp, a.weight, a.bias, a.out, a.mean, a.rstd],
    cost: { flops: 8 * R * C, bytes: 4 * (3 * R * C + 2 * C + 2 * R) },
  });
}

/** dinp (=|+= when accumulate); dweight += Σ_r dout·xhat; dbias += Σ_r dout. */
export async function recordLayerNormBackward(
  rec: Recorder,
  label: string,
  a: {
    dout: View;
    inp: View;
    weight: View;
    mean: View;
    rstd: View;
    dinp: View;
    dweight: View;
    dbias: View;
    R: number;
    C: number;
    accumulate: boolean;
    /** Force the thread-per-row (true) or workgroup-per-row (false) kernels; default by adapter. */
    perRow?: boolean;
  },
): Promise<void> {
  const { R, C } = a;
  const uniform: Array<['u32' | 'f32', number]> = [
    ['u32', R],
    ['u32', C],
    ['f32', 0],
  ];
  await rec.dispatch({
    label: `${label} dinp`,
    shader: 'layernorm',
    ...rowKernel(rec, 'backward_dinp', R, a.perRow),
    bindings: ['read', 'read', 'read', 'read', 'read', 'write'],
    defines: { ACCUMULATE: a.accumulate },
    uniform,
    resources: [a.dout, a.inp, a.weight, a.mean, a.rstd, a.dinp],
    cost: { flops: 12 * R * C, bytes: 4 * ((a.accumulate ? 4 : 3) * R * C + C + 2 * R) },
  });
  await rec.dispatch({
    label: `${label} dweight/dbias`,
    shader: 'layernorm',
    entry: 'backward_params',
    bindings: ['read', 'read', 'read', 'read', 'write', 'write'],
    defines: { ACCUMULATE: false },
    uniform,
    resources: [a.dout, a.inp, a.mean, a.rstd, a.dweight, a.dbias],
    workgroups: [Math.max(1, Math.ceil(C / 32)), 1, 1],
    cost: { flops: 5 * R * C, bytes: 4 * (2 * R * C + 4 * C + 2 * R) },
  });
}
