// Optimizers on the GPU (shaders/optimizer.wgsl): SGD with momentum, Adam and AdamW with torch.optim's
// exact update rules, one dispatch per parameter group over the packed arena; global-norm clipping
// (shaders/grad_norm.wgsl) with no readback; the per-step values every optimizer reads.
import { grid1d, type Recorder } from '../gpu/program.ts';
import type { View } from '../gpu/buffers.ts';
import type { BindingKind } from '../gpu/kernels.ts';
import { isSoftwareAdapter } from '../ops/matmul.ts';

export type OptimizerConfig =
  | { type: 'sgd'; lr: number; momentum?: number; dampening?: number; nesterov?: boolean; weightDecay?: number }
  | { type: 'adam' | 'adamw'; lr: number; beta1?: number; beta2?: number; eps?: number; weightDecay?: number };

/** torch.optim's defaults (AdamW's weight decay is 0.01 there). */
export function withDefaults(c: OptimizerConfig): Required<OptimizerConfig> {
  if (!(c.lr >= 0) || !Number.isFinite(c.lr)) throw new Error(`optimizer: lr must be a finite number ≥ 0, got ${c.lr}`);
  if (c.type === 'sgd') {
    const r = { type: 'sgd' as const, lr: c.lr, momentum: c.momentum ?? 0, dampening: c.dampening ?? 0, nesterov: c.nesterov ?? false, weightDecay: c.weightDecay ?? 0 };
    if (r.nesterov && (r.momentum <= 0 || r.dampening !== 0)) throw new Error('optimizer: nesterov needs momentum > 0 and dampening 0');
    nonNegative({ momentum: r.momentum, weightDecay: r.weightDecay });
    return r;
  }
  if (c.type !== 'adam' && c.type !== 'adamw') throw new Error(`optimizer: unknown type '${(c as { type: string }).type}' (sgd, adam, adamw)`);
  const r = { type: c.type, lr: c.lr, beta1: c.beta1 ?? 0.9, beta2: c.beta2 ?? 0.999, eps: c.eps ?? 1e-8, weightDecay: c.weightDecay ?? (c.type === 'adamw' ? 0.01 : 0) };
  for (const [k, v] of [['beta1', r.beta1], ['beta2', r.beta2]] as const) {
    if (!(v >= 0 && v < 1)) throw new Error(`optimizer: ${k} must be in [0, 1), got ${v}`);
  }
  nonNegative({ eps: r.eps, weightDecay: r.weightDecay });
  return r;
}

/** torch.optim rejects negative eps, weight decay and momentum (a negative eps can divide by zero). */
function nonNegative(values: Record<string, number>): void {
  for (const [k, v] of Object.entries(values)) {
    if (!(v >= 0) || !Number.isFinite(v)) throw new Error(`optimizer: ${k} must be a finite number ≥ 0, got ${v}`);
  }
}

/** The optimizer's state arenas: Adam keeps m and v, SGD with momentum keeps its buffer in m. */
export function stateArenas(c: Required<OptimizerConfig>): number {
  return c.type === 'sgd' ? (c.momentum !== 0 ? 1 : 0) : 2;
}

/** The values the optimizer reads each step, written into its uniform buffer before the step is submitted. */
export function stepValues(c: Required<OptimizerConfig>, lr: number, t: number, out = new Float32Array(4)): Float32Array {
  if (c.type === 'sgd') {
    out[0] = lr;
    out[1] = lr;
    out[2] = 1;
  } else {
    out[0] = lr;
    out[1] = lr / (1 - c.beta1 ** t);
    out[2] = Math.sqrt(1 - c.beta2 ** t);
  }
  out[3] = t;
  return out;
}

export interface ParamGroup {
  label: string;
  /** Element range of the group in the arenas. */
  offset: number;
  count: number;
  weightDecay: number;
}

export interface OptimizerBuffers {
  /** The uniform buffer holding stepValues(). */
  step: GPUBuffer;
  params: GPUBuffer;
  grads: GPUBuffer;
  m: GPUBuffer;
  v: GPUBuffer;
  /** [norm, scale, skip, …] (see recordGradClip): the optimizer multiplies gradients by scale and, where the
   *  status words are present, skips the update when skip ≠ 0. */
  clip: View;
}

/**
 * Element windows covering [offset, offset + count), each bindable on its own: `base` is a multiple of the
 * binding-offset alignment, the window's elements are base + skip … base + skip + length − 1, and the
 * binding (skip + length elements) is at most maxStorageBufferBindingSize — so arenas larger than one
 * binding still work.
 */
export function bindingWindows(offset: number, count: number, device: GPUDevice, maxElements?: number): { base: number; skip: number; length: number }[] {
  const align = device.limits.minStorageBufferOffsetAlignment / 4;
  const max = Math.floor((maxElements ?? device.limits.maxStorageBufferBindingSize / 4) / align) * align;
  if (max < 2 * align) throw new Error(`binding windows of ${maxElements} elements are too small for the offset alignment (${align})`);
  const out: { base: number; skip: number; length: number }[] = [];
  for (let start = offset; start < offset + count; ) {
    const base = Math.floor(start / align) * align;
    const length = Math.min(max - (start - base), offset + count - start);
    out.push({ base, skip: start - base, length });
    start += length;
  }
  return out;
}

type Window = ReturnType<typeof bindingWindows>[number];
const windowView = (buffer: GPUBuffer, w: Window): View =>
  buffer.size >= (w.base + w.skip + w.length) * 4 ? { buffer, offset: w.base * 4, size: (w.skip + w.length) * 4 } : { buffer, offset: 0, size: buffer.size };

/** One dispatch per group and binding window (maxWindow: a smaller window than the device's, for tests). */
export async function recordOptimizer(rec: Recorder, c: Required<OptimizerConfig>, b: OptimizerBuffers, groups: ParamGroup[], maxWindow?: number) {
  const sgd = c.type === 'sgd';
  for (const g of groups) {
    for (const w of bindingWindows(g.offset, g.count, rec.device, maxWindow)) {
      // vec4 where the window starts and ends on 4-element boundaries (ParamStore's groups do).
      const vec4 = w.skip % 4 === 0 && w.length % 4 === 0;
      const unit = vec4 ? 4 : 1;
      const view = (buf: GPUBuffer) => windowView(buf, w);
      const grid = grid1d(Math.ceil(w.length / unit));
      await rec.dispatch({
        label: `${c.type} update (${g.label}${w.length < g.count ? `, elements ${w.base + w.skip}…` : ''})`,
        shader: 'optimizer',
        entry: sgd ? 'sgd' : 'adam',
        bindings: ['uniform', 'uniform', 'write', 'read', 'write', 'write', 'read'],
        defines: { DECOUPLED: c.type === 'adamw', VEC4: vec4 },
        resources: [
          b.step,
          rec.uniformBuffer(`${c.type} group ${g.label}`, [
            ['u32', w.skip / unit], // the bindings start at the aligned base just before the window
            ['u32', Math.ceil(w.length / unit)],
            ['u32', grid.stride],
            // 1 − β and 1 − dampening are formed in float64 here, as torch does, not in f32 on the GPU.
            ['f32', sgd ? 0 : c.beta1],
            ['f32', sgd ? 0 : 1 - c.beta1],
            ['f32', sgd ? 0 : c.beta2],
            ['f32', sgd ? 0 : 1 - c.beta2],
            ['f32', sgd ? 0 : c.eps],
            ['f32', g.weightDecay],
            ['f32', sgd ? c.momentum : 0],
            ['f32', sgd ? 1 - c.dampening : 0],
            ['u32', sgd && c.nesterov ? 1 : 0],
          ]),
          view(b.params),
          view(b.grads),
          view(b.m),
          view(b.v),
          b.clip,
        ],
        workgroups: grid.workgroups,
        cost: { flops: w.length * (sgd ? 6 : 14), bytes: w.length * 4 * (sgd ? 5 : 7) },
      });
    }
  }
}

/** What the gradient-norm pass also checks for the trainer's nonFinite guard (see shaders/grad_norm.wgsl). */
export interface NonFiniteCheck {
  /** 'skip': skip only the faulty step's update; 'stop': skip it and every later one until cleared. */
  mode: 'skip' | 'stop';
  /** The step's loss (its first float), tested with the gradients. */
  loss: View;
  /** The step-values uniform (stepValues()): its t is recorded as the first non-finite step. */
  step: GPUBuffer;
  /** The parameter arena (same layout as the gradients): its first n elements are checked too. */
  params: GPUBuffer;
  /**
   * Mixed precision's dynamic loss scale (status word 5): the good steps before it doubles. The gradients
   * are then those of the scaled loss: they are unscaled here, and their overflow halves the scale and skips
   * the step instead of being a fault (see grad_norm.wgsl). Absent or 0: no loss scaling.
   */
  growthInterval?: number;
}

/**
 * Floats in a clip buffer with the non-finite status words: [norm, scale, skip, skipped count, first bad step,
 * loss scale, good steps, 0] (the last three used by mixed precision).
 */
export const CLIP_STATUS_FLOATS = 8;

/** Elements per invocation of the thread-per-part gradient-norm pass (CPU adapters), and at most this many
 *  invocations per binding window: small shares give a CPU's threads many workgroups to balance. */
export const GRAD_NORM_PER_THREAD = 256;
const GRAD_NORM_MAX_THREADS = 16384;

/**
 * clip = [‖g‖, min(1, maxNorm / (‖g‖ + 1e-6))] over the first n elements of the gradient arena: partial sums
 * per binding window, then one reduction. maxNorm undefined: no clipping (scale 1), for a pass run only for
 * `check`. With `check`, clip must hold CLIP_STATUS_FLOATS floats and also gets the non-finite status words
 * the optimizer obeys. Two variants (shaders/grad_norm.wgsl), both summing in a fixed order:
 *   workgroups (GPUs): up to 64 workgroups per window, each reducing through workgroup memory into the
 *     window's own 64-entry block, then a 256-thread finish;
 *   threads (CPU adapters, where barriers are expensive): one invocation per GRAD_NORM_PER_THREAD elements
 *     of a window (at most 16384), summing a grid-stride share with no workgroup memory, then a
 *     one-invocation finish.
 * perThread forces the thread variant (true) or the workgroup variant (false); by default it is chosen by
 * adapter, as the per-row LayerNorm is.
 */
export async function recordGradClip(
  rec: Recorder,
  grads: GPUBuffer,
  n: number,
  maxNorm: number | undefined,
  clip: View,
  maxWindow?: number,
  check?: NonFiniteCheck,
  perThread?: boolean,
) {
  if (maxNorm !== undefined && !(maxNorm > 0 && Number.isFinite(maxNorm))) throw new Error(`gradient clipping: max norm must be a finite number > 0, got ${maxNorm}`);
  if (check && clip.size < CLIP_STATUS_FLOATS * 4) throw new Error(`non-finite check: the clip buffer must hold ${CLIP_STATUS_FLOATS} floats, got ${clip.size / 4}`);
  const threads = perThread ?? isSoftwareAdapter(rec.rt);
  const windows = bindingWindows(0, n, rec.device, maxWindow);
  // vec4 reads when n is a multiple of 4 (then so is every window: they start aligned, skip = 0).
  const vec4 = n % 4 === 0;
  const unit = vec4 ? 4 : 1;
  // Partial sums per window: up to 64 workgroups, or one per thread; each window's block starts on a
  // binding-offset boundary, and the entries no dispatch writes stay zero.
  const align = Math.max(rec.device.limits.minStorageBufferOffsetAlignment / 4, 64);
  const parts = windows.map((w) => (threads ? Math.max(1, Math.min(GRAD_NORM_MAX_THREADS, Math.ceil(w.length / GRAD_NORM_PER_THREAD))) : Math.max(1, Math.min(64, Math.ceil(w.length / 4096)))));
  const blocks = parts.map((p) => Math.ceil(p / align) * align);
  const partials = rec.storageBuffer('gradient norm partial sums', blocks.reduce((a, b) => a + b, 0));
  const total = partials.size / 4;
  // With the check, both entry points take the same 7 bindings (each uses its own subset).
  const bindings: BindingKind[] = check ? ['read', 'write', 'write', 'read', 'uniform', 'read'] : ['read', 'write', 'write'];
  const mode = check ? (check.mode === 'stop' ? 2 : 1) : 0;
  const growth = check?.growthInterval ?? 0;
  if (!Number.isInteger(growth) || growth < 0) throw new Error(`loss scaling: the growth interval must be a whole number of steps, got ${growth}`);
  const defines = { CHECK: check !== undefined, VEC4: vec4, LOSS_SCALE: growth > 0 };
  let start = 0;
  for (const [i, w] of windows.entries()) {
    await rec.dispatch({
      label: `grad norm (partial sums${windows.length > 1 ? ` ${i + 1}/${windows.length}` : ''})`,
      shader: 'grad_norm',
      entry: threads ? 'partial_sumsq_threads' : 'partial_sumsq',
      bindings,
      defines,
      uniform: [['u32', w.length / unit], ['u32', parts[i]], ['f32', maxNorm ?? 0], ['u32', mode], ['u32', growth]],
      resources: [
        windowView(grads, w),
        { buffer: partials, offset: start * 4, size: blocks[i] * 4 },
        clip,
        ...(check ? [check.loss, check.step, windowView(check.params, w)] : []),
      ],
      workgroups: [threads ? Math.ceil(parts[i] / 64) : parts[i], 1, 1],
      cost: { flops: 2 * w.length, bytes: (check ? 8 : 4) * w.length },
    });
    start += blocks[i];
  }
  await rec.dispatch({
    label: `grad norm (${maxNorm === undefined ? 'non-finite check' : 'clip factor'})`,
    shader: 'grad_norm',
    entry: threads ? 'finish_serial' : 'finish',
    defines,
    bindings,
    uniform: [['u32', n], ['u32', total], ['f32', maxNorm ?? 0], ['u32', mode], ['u32', growth]],
    resources: [
      { buffer: grads, offset: 0, size: 16 },
      { buffer: partials, offset: 0, size: total * 4 },
      clip,
      ...(check ? [check.loss, check.step, { buffer: check.params, offset: 0, size: 16 }] : []),
    ],
    workgroups: [1, 1, 1],
    cost: { flops: total, bytes: 4 * total },
  });
}

/** Learning-rate schedules, evaluated on the host each step (0-based step index). */
export type Schedule =
  | { type: 'constant'; warmupSteps?: number }
  | { type: 'cosine'; warmupSteps?: number; totalSteps: number; minLr?: number };

export function learningRate(s: Schedule | undefined, baseLr: number, step: number): number {
  const warmup = s?.warmupSteps ?? 0;
  if (step < warmup) return (baseLr * (step + 1)) / warmup;
  if (!s || s.type === 'constant') return baseLr;
  const minLr = s.minLr ?? 0;
  if (step >= s.totalSteps) return minLr;
  const ratio = (step - warmup) / Math.max(1, s.totalSteps - warmup);
  return minLr + 0.5 * (1 + Math.cos(Math.PI * ratio)) * (baseLr - minLr);
}
