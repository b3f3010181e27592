// Records the fused loss kernels (shaders/cross_entropy.wgsl, shaders/mse.wgsl) and the scaled sum
// (shaders/sum.wgsl) that adds a micro-batch's mean loss into the step's loss scalar.
import { grid1d, type Recorder } from '../gpu/program.ts';
import { floatType, typeDefines, type View } from '../gpu/buffers.ts';
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
  a: { logits: View; labels: View; losses: View; dlogits: View; R: number; V: number; gradScale: number; perRow?: boolean; lossScale?: View | null },
) {
  const perRow = (a.perRow ?? isSoftwareAdapter(rec.rt)) && Math.ceil(a.R / 64) <= 65535;
  return rec.dispatch({
    label,
    shader: 'cross_entropy',
    entry: perRow ? 'main_rows' : 'main',
    bindings: ['read', 'read', 'write', 'write', ...(a.lossScale ? (['read'] as const) : [])],
    defines: { ...typeDefines({ L_T: a.logits, G_T: a.dlogits }), LOSS_SCALE: !!a.lossScale },
    uniform: [
      ['u32', a.R],
      ['u32', a.V],
      ['f32', a.gradScale],
    ],
    resources: [a.logits, a.labels, a.losses, a.dlogits, ...(a.lossScale ? [a.lossScale] : [])],
    workgroups: perRow ? [Math.ceil(a.R / 64), 1, 1] : rowGrid(a.R),
    f16: true,
    cost: { flops: 8 * a.R * a.V, bytes: (floatType(a.logits) === 'f16' ? 2 : 4) * 3 * a.R * a.V + 8 * a.R },
  });
}

/**
 * Cross-entropy over logits split into vocabulary chunks (shaders/cross_entropy_chunked.wgsl): logits[c] is
 * [R, n_c] for classes c·Vc … c·Vc + n_c − 1; dlogits (one per chunk, or null for no gradient) likewise.
 * Scratch: stats [nc·R·3], rows [R·2].
 */
export async function recordCrossEntropyChunked(
  rec: Recorder,
  label: string,
  a: { logits: View[]; labels: View; losses: View; dlogits: View[] | null; stats: View; rows: View; R: number; V: number; Vc: number; gradScale: number; lossScale?: View | null },
): Promise<void> {
  const { R, V, Vc } = a;
  const nc = a.logits.length;
  if (Math.ceil(R / 64) > 65535) throw new Error(`${label}: ${R} rows are more than one dispatch of 64-row workgroups covers`);
  const n = (c: number) => Math.min(Vc, V - c * Vc);
  const uniform = (c: number, stride: number): ['u32' | 'f32', number][] => [
    ['u32', R], ['u32', n(c)], ['u32', c * Vc], ['u32', c], ['u32', nc], ['u32', Vc], ['f32', a.gradScale], ['u32', stride],
  ];
  for (let c = 0; c < nc; c++) {
    await rec.dispatch({
      label: `${label} stats ${c}`, shader: 'cross_entropy_chunked', entry: 'stats', bindings: ['read', 'read', 'write'],
      defines: { ...typeDefines({ L_T: a.logits[c], G_T: a.logits[c] }), LOSS_SCALE: false }, f16: true,
      uniform: uniform(c, 0), resources: [a.logits[c], a.labels, a.stats], workgroups: [Math.ceil(R / 64), 1, 1],
      cost: { flops: 4 * R * n(c), bytes: 4 * (R * n(c) + 4 * R) },
    });
  }
  await rec.dispatch({
    label: `${label} combine`, shader: 'cross_entropy_chunked', entry: 'combine', bindings: ['read', 'read', 'write', 'write'],
    defines: { F16: false, L_T: 'f32', G_T: 'f32', LOSS_SCALE: false },
    uniform: uniform(0, 0), resources: [a.stats, a.labels, a.losses, a.rows], workgroups: [Math.ceil(R / 64), 1, 1],
    cost: { flops: 4 * R * nc, bytes: 4 * (3 * R * nc + 4 * R) },
  });
  if (!a.dlogits) return;
  for (let c = 0; c < nc; c++) {
    const g = grid1d(R * n(c));
    await rec.dispatch({
      label: `${label} grad ${c}`, shader: 'cross_entropy_chunked', entry: 'grad', bindings: ['read', 'read', 'read', 'write', ...(a.lossScale ? (['read'] as const) : [])],
      defines: { ...typeDefines({ L_T: a.logits[c], G_T: a.dlogits[c] }), LOSS_SCALE: !!a.lossScale }, f16: true,
      uniform: uniform(c, g.stride), resources: [a.logits[c], a.labels, a.rows, a.dlogits[c], ...(a.lossScale ? [a.lossScale] : [])], workgroups: g.workgroups,
      cost: { flops: 4 * R * n(c), bytes: 4 * (2 * R * n(c) + 3 * R) },
    });
  }
}

/** losses[r] = Σ_d err² and dpred for R rows of D outputs; gradScale = 1 / (R · D · micro-batches). */
export function recordMse(
  rec: Recorder,
  label: string,
  a: { pred: View; target: View; losses: View; dpred: View; R: number; D: number; gradScale: number; lossScale?: View | null },
) {
  return rec.dispatch({
    label,
    shader: 'mse',
    entry: 'main',
    bindings: ['read', 'read', 'write', 'write', ...(a.lossScale ? (['read'] as const) : [])],
    defines: { ...typeDefines({ P_T: a.pred, G_T: a.dpred }), LOSS_SCALE: !!a.lossScale },
    uniform: [
      ['u32', a.R],
      ['u32', a.D],
      ['f32', a.gradScale],
    ],
    resources: [a.pred, a.target, a.losses, a.dpred, ...(a.lossScale ? [a.lossScale] : [])],
    workgroups: rowGrid(a.R),
    f16: true,
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
