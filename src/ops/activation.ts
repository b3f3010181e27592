// Records the elementwise activation kernels (shaders/activation.wgsl).
import { grid1d, type Recorder } from '../gpu/program.ts';
import { typeDefines, type View } from '../gpu/buffers.ts';


export type Activation = 'none' | 'relu' | 'gelu' | 'silu' | 'tanh' | 'sigmoid';

export const ACT_CODE: Record<Activation, number> = { none: 0, relu: 1, gelu: 2, silu: 3, tanh: 4, sigmoid: 5 };

/** Whether the backward pass needs the activation's input (gelu, silu) rather than its output. */
export function savesInput(act: Activation): boolean {
  return act === 'gelu' || act === 'silu';
}

export function recordActivationForward(rec: Recorder, label: string, act: Activation, x: View, y: View, n: number) {
  const g = grid1d(n);
  return rec.dispatch({
    label,
    shader: 'activation',
    entry: 'forward',
    bindings: ['read', 'read', 'write'],
    defines: { ACT: ACT_CODE[act], ACCUMULATE: false, ...typeDefines({ IN_T: x, SAVED_T: x, OUT_T: y }) },
    uniform: [
      ['u32', n],
      ['u32', g.stride],
    ],
    resources: [x, rec.dummy('read'), y],
    workgroups: g.workgroups,
    f16: true,
    cost: { flops: n * 8, bytes: 8 * n },
  });
}

/** dx (=|+=) dy · f'(·), with `saved` the forward input (gelu, silu) or output (others). */
export function recordActivationBackward(
  rec: Recorder,
  label: string,
  act: Activation,
  dy: View,
  saved: View,
  dx: View,
  n: number,
  accumulate: boolean,
) {
  const g = grid1d(n);
  return rec.dispatch({
    label,
    shader: 'activation',
    entry: 'backward',
    bindings: ['read', 'read', 'write'],
    defines: { ACT: ACT_CODE[act], ACCUMULATE: accumulate, ...typeDefines({ IN_T: dy, SAVED_T: saved, OUT_T: dx }) },
    uniform: [
      ['u32', n],
      ['u32', g.stride],
    ],
    resources: [dy, saved, dx],
    workgroups: g.workgroups,
    f16: true,
    cost: { flops: n * 10, bytes: (accumulate ? 16 : 12) * n },
  });
}
