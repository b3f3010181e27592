// Records the fused loss kernels (shaders/cross_entropy.wgsl, shaders/mse.wgsl) and the scaled sum
// (shaders/sum.wgsl) that adds a micro-batch's mean loss into the step's loss scalar.
import type { Recorder } from '../gpu/program.ts';
import type { View } from '../gpu/buffers.ts';
import { isSoftwareAdapter } from './matmul.ts';

function rowGrid(R: number): [number, number, number] {
  return [Math.min(R, 65535), Math.ceil(R / 65535), 1];
}

/**
 * losses[r] and dlogits for R rows of V classes; gradScale = 1 / (rows · micro-batches). A thread per row on
 * CPU adapters (barriers are expensive there), a workgroup per row elsewhere; `perRow` forces one.
 */
export function recordCrossEntropy(
  rec: Recorder,
  label: string,
  a: { logits: View; labels: View; losses: View; dlogits: View; R: number; V: number; gradScale: number; perRow?: boolean },
) {
  const perRow = (a.perRow ?? isSoftwareAdapter(rec.rt)) && Math.ceil(a.R / 64) <= 65535;
  return rec.dispatch({
    label,
    shader: 'cross_entropy',
    entry: perRow ? 'main_rows' : 'main',
    bindings: ['read', 'read', 'write', 'write'],
    uniform: [
      ['u32', a.R],
      ['u32', a.V],
      ['f32', a.gradScale],
    ],
    resources: [a.logits, a.labels, a.losses, a.dlogits],
    workgroups: perRow ? [Math.ceil(a.R / 64), 1, 1] : rowGrid(a.R),
    cost: { flops: 8 * a.R * a.V, bytes: 4 * (3 * a.R * a.V + 2 * a.R) },
  });
}

/** losses[r] = Σ_d err² and dpred for R rows of D outputs; gradScale = 1 / (R · D · micro-batches). */
export function recordMse(
  rec: Recorder,
  label: string,
  a: { pred: View; target: View; losses: View; dpred: View; R: number; D: number; gradScale: number },
) {
  return rec.dispatch({
    label,
    shader: 'mse',
    entry: 'main',
    bindings: ['read', 'read', 'write', 'write'],
    uniform: [
      ['u32', a.R],
      ['u32', a.D],
      ['f32', a.gradScale],
    ],
    resources: [a.pred, a.target, a.losses, a.dpred],
    workgroups: rowGrid(a.R),
    cost: { flops: 4 * a.R * a.D, bytes: 4 * (3 * a.R * a.D + a.R) },
  });
}

/** out[0] += scale · Σ x[0..n). */
export function recordScaledSum(rec: Recorder, label: string, x: View, out: View, n: number, scale: number) {
  return rec.dispatch({
    label,
    shader: 'sum',
    entry: 'main',
    bindings: ['read', 'write'],
    uniform: [
      ['u32', n],
      ['f32', scale],
    ],
    resources: [x, out],
    workgroups: [1, 1, 1],
    cost: { flops: n, bytes: 4 * (n + 2) },
  });
}
