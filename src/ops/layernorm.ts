// Records the LayerNorm kernels (shaders/layernorm.wgsl): the forward (saving mean and rstd per row),
// and the backward as two dispatches, dinp per row and the parameter gradients per column block.
// With `residual`, the LayerNorm is fused with the residual add before it (shaders/residual_layernorm.wgsl):
// the forward stores s = x + y and normalises it in one pass; the backward's row kernel adds the gradient s
// gets from its other consumers and writes the sum to the gradients of x and y.
// On CPU implementations of WebGPU (lavapipe, SwiftShader) the row kernels run one thread per row instead of
// one workgroup per row: barriers are expensive there and rows are short.
import type { Recorder } from '../gpu/program.ts';
import { sharedTypeDefines, type View } from '../gpu/buffers.ts';
import { isSoftwareAdapter } from './matmul.ts';

function rowGrid(R: number): [number, number, number] {
  return [Math.max(1, Math.min(R, 65535)), Math.max(1, Math.ceil(R / 65535)), 1];
}

/** Entry point and grid for a per-row kernel: a thread per row on CPU adapters, a workgroup per row elsewhere. */
function rowKernel(rec: Recorder, entry: string, R: number, perRow?: boolean): { entry: string; workgroups: [number, number, number] } {
  if ((perRow ?? isSoftwareAdapter(rec.rt)) && Math.ceil(R / 64) <= 65535) return { entry: `${entry}_rows`, workgroups: [Math.max(1, Math.ceil(R / 64)), 1, 1] };
  return { entry, workgroups: rowGrid(R) };
}

/**
 * out = (inp − mean)·rstd·weight + bias over rows of C; mean and rstd [R] are saved for the backward.
 * With `residual`: s = inp + residual.y is stored in residual.sum and normalised instead of inp.
 */
export function recordLayerNormForward(
  rec: Recorder,
  label: string,
  a: {
    inp: View; weight: View; bias: View; out: View; mean: View; rstd: View; R: number; C: number; eps: number; perRow?: boolean;
    residual?: { y: View; sum: View };
  },
): Promise<void> {
  const { R, C } = a;
  if (a.residual) {
    return rec.dispatch({
      label,
      shader: 'residual_layernorm',
      ...rowKernel(rec, 'forward', R, a.perRow),
      bindings: ['read', 'read', 'read', 'read', 'write', 'write', 'write', 'write'],
      defines: { HAS_DSUM: false, WRITE_DX: false, ACCUMULATE_DX: false, WRITE_DY: false, ACCUMULATE_DY: false, ...sharedTypeDefines('ACT_T', label, [a.inp, a.residual.y, a.residual.sum, a.out]) },
      f16: true,
      uniform: [
        ['u32', R],
        ['u32', C],
        ['f32', a.eps],
      ],
      resources: [a.inp, a.residual.y, a.weight, a.bias, a.residual.sum, a.out, a.mean, a.rstd],
      cost: { flops: 9 * R * C, bytes: 4 * (5 * R * C + 2 * C + 2 * R) },
    });
  }
  return rec.dispatch({
    label,
    shader: 'layernorm',
    ...rowKernel(rec, 'forward', R, a.perRow),
    bindings: ['read', 'read', 'read', 'write', 'write', 'write'],
    defines: { ACCUMULATE: false, ...sharedTypeDefines('ACT_T', label, [a.inp, a.out]) },
    f16: true,
    uniform: [
      ['u32', R],
      ['u32', C],
      ['f32', a.eps],
    ],
    resources: [a.inp, a.weight, a.bias, a.out, a.mean, a.rstd],
    cost: { flops: 8 * R * C, bytes: 4 * (3 * R * C + 2 * C + 2 * R) },
  });
}

/**
 * The gradient of a fused residual + LayerNorm's sum s, routed to the addends: ds = dinp (LayerNorm's input
 * gradient) + dsum (what s gets from its other consumers; null: none), written to dx and dy (null: not wanted),
 * each assigned or accumulated.
 */
export interface ResidualGrads {
  dsum: View | null;
  dx: View | null;
  accumulateX: boolean;
  dy: View | null;
  accumulateY: boolean;
}

interface LayerNormBackwardCommon {
  dout: View;
  /** The forward's input; with a fused residual, the saved sum s. */
  inp: View;
  weight: View;
  mean: View;
  rstd: View;
  dweight: View;
  dbias: View;
  R: number;
  C: number;
  /** Force the thread-per-row (true) or workgroup-per-row (false) kernels; default by adapter. */
  perRow?: boolean;
}

/**
 * dinp (=|+= when accumulate), or with `residual` the routed gradients (see ResidualGrads);
 * dweight += Σ_r dout·xhat; dbias += Σ_r dout.
 */
export async function recordLayerNormBackward(
  rec: Recorder,
  label: string,
  a: LayerNormBackwardCommon & ({ dinp: View; accumulate: boolean; residual?: undefined } | { residual: ResidualGrads }),
): Promise<void> {
  const { R, C } = a;
  const uniform: Array<['u32' | 'f32', number]> = [
    ['u32', R],
    ['u32', C],
    ['f32', 0],
  ];
  if (a.residual) await recordResidualDinp(rec, label, a, a.residual, uniform);
  else await recordDinp(rec, label, a, uniform);
  await rec.dispatch({
    label: `${label} dweight/dbias`,
    shader: 'layernorm',
    entry: 'backward_params',
    bindings: ['read', 'read', 'read', 'read', 'write', 'write'],
    defines: { ACCUMULATE: false, ...sharedTypeDefines('ACT_T', label, [a.dout, a.inp]) },
    f16: true,
    uniform,
    resources: [a.dout, a.inp, a.mean, a.rstd, a.dweight, a.dbias],
    workgroups: [Math.max(1, Math.ceil(C / 32)), 1, 1],
    cost: { flops: 5 * R * C, bytes: 4 * (2 * R * C + 4 * C + 2 * R) },
  });
}

function recordDinp(
  rec: Recorder,
  label: string,
  a: LayerNormBackwardCommon & { dinp: View; accumulate: boolean },
  uniform: Array<['u32' | 'f32', number]>,
): Promise<void> {
  const { R, C } = a;
  return rec.dispatch({
    label: `${label} dinp`,
    shader: 'layernorm',
    ...rowKernel(rec, 'backward_dinp', R, a.perRow),
    bindings: ['read', 'read', 'read', 'read', 'read', 'write'],
    defines: { ACCUMULATE: a.accumulate, ...sharedTypeDefines('ACT_T', label, [a.dout, a.inp, a.dinp]) },
    f16: true,
    uniform,
    resources: [a.dout, a.inp, a.weight, a.mean, a.rstd, a.dinp],
    cost: { flops: 12 * R * C, bytes: 4 * ((a.accumulate ? 4 : 3) * R * C + C + 2 * R) },
  });
}

/** ds = dinp + dsum per row, to dx and dy (shaders/residual_layernorm.wgsl); nothing when neither is wanted. */
function recordResidualDinp(
  rec: Recorder,
  label: string,
  a: LayerNormBackwardCommon,
  g: ResidualGrads,
  uniform: Array<['u32' | 'f32', number]>,
): Promise<void> {
  const { R, C } = a;
  if (!g.dx && !g.dy) return Promise.resolve();
  const rc = R * C;
  // Reads dout, s (twice: cached) and dsum; each output a write, or a read and a write when accumulated.
  const outBytes = (d: View | null, acc: boolean) => (d ? (acc ? 2 : 1) : 0) * rc;
  return rec.dispatch({
    label: `${label} dinp → ${[g.dx && 'dx', g.dy && 'dy'].filter(Boolean).join(', ')}`,
    shader: 'residual_layernorm',
    ...rowKernel(rec, 'backward_dinp', R, a.perRow),
    bindings: ['read', 'read', 'read', 'read', 'read', 'read', 'write', 'write'],
    defines: {
      HAS_DSUM: g.dsum !== null,
      WRITE_DX: g.dx !== null,
      ACCUMULATE_DX: g.dx !== null && g.accumulateX,
      WRITE_DY: g.dy !== null,
      ACCUMULATE_DY: g.dy !== null && g.accumulateY,
      ...sharedTypeDefines('ACT_T', label, [a.dout, g.dsum, a.inp, g.dx, g.dy]),
    },
    f16: true,
    uniform,
    resources: [
      a.dout, g.dsum ?? rec.dummy('read'), a.inp, a.weight, a.mean, a.rstd,
      g.dx ?? rec.dummy('write'), g.dy ?? rec.dummy('write'),
    ],
    cost: {
      flops: (g.dsum ? 13 : 12) * rc,
      bytes: 4 * ((g.dsum ? 3 : 2) * rc + outBytes(g.dx, g.accumulateX) + outBytes(g.dy, g.accumulateY) + C + 2 * R),
    },
  });
}
