// Records the elementwise add (residual connections) and the gradient copy (shaders/add.wgsl).
import { grid1d, type Recorder } from '../gpu/program.ts';
import { typeDefines, type View } from '../gpu/buffers.ts';

function checkApart(label: string, reads: View[], write: View): void {
  for (const r of reads) {
    if (r.buffer === write.buffer) {
      throw new Error(`${label}: the output shares a buffer with an input (a dispatch may not read and write one buffer)`);
    }
  }
}

/** out[i] = x[i] + y[i], i < n. */
export function recordAdd(rec: Recorder, label: string, a: { x: View; y: View; out: View; n: number }): Promise<void> {
  checkApart(label, [a.x, a.y], a.out);
  const g = grid1d(a.n);
  return rec.dispatch({
    label,
    shader: 'add',
    entry: 'add',
    bindings: ['read', 'read', 'write'],
    defines: { ACCUMULATE: false, ...typeDefines({ X_T: a.x, Y_T: a.y, OUT_T: a.out }) },
    uniform: [
      ['u32', a.n],
      ['u32', g.stride],
    ],
    resources: [a.x, a.y, a.out],
    workgroups: g.workgroups,
    f16: true,
    cost: { flops: a.n, bytes: 12 * a.n },
  });
}

/** dst[i] (=|+=) src[i], i < n: a residual's gradient routed to one of its branches. */
export function recordCopyGrad(
  rec: Recorder,
  label: string,
  a: { src: View; dst: View; n: number; accumulate: boolean },
): Promise<void> {
  checkApart(label, [a.src], a.dst);
  const g = grid1d(a.n);
  return rec.dispatch({
    label,
    shader: 'add',
    entry: 'copy_grad',
    bindings: ['read', 'read', 'write'],
    defines: { ACCUMULATE: a.accumulate, ...typeDefines({ X_T: a.src, Y_T: a.src, OUT_T: a.dst }) },
    uniform: [
      ['u32', a.n],
      ['u32', g.stride],
    ],
    resources: [a.src, rec.dummy('read'), a.dst],
    workgroups: g.workgroups,
    f16: true,
    cost: { flops: a.accumulate ? a.n : 0, bytes: (a.accumulate ? 12 : 8) * a.n },
  });
}
