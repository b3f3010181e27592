// Records the causal multi-head self-attention kernels (shaders/attention.wgsl): one forward dispatch
// (out and the per-row log-sum-exp), and a backward of two dispatches: dq (which also writes D = dout·out
// per query row into `scratch`), then dk and dv. Nothing of size T×T is ever stored.
import type { Recorder } from '../gpu/program.ts';
import type { View } from '../gpu/buffers.ts';

const BQ = 64; // rows per workgroup (shaders/attention.wgsl)

function headSize(label: string, C: number, NH: number): number {
  if (!(NH >= 1) || C % NH !== 0) throw new Error(`${label}: C = ${C} is not a multiple of NH = ${NH}`);
  return C / NH;
}

/** Rows of the other index staged per step in workgroup memory: 2·TILE·⌈HS/4⌉ vec4s stay ≤ 8 KiB. */
function tileRows(HS: number): number {
  return Math.max(1, Math.min(32, Math.floor(256 / Math.ceil(HS / 4))));
}

function defines(HS: number, accumulate: boolean) {
  return { HS, HS4: Math.ceil(HS / 4), TILE: tileRows(HS), ACCUMULATE: accumulate };
}

function grid(label: string, B: number, T: number, NH: number): [number, number, number] {
  if (T < 1 || B < 1) throw new Error(`${label}: B = ${B}, T = ${T} must be at least 1`);
  return [Math.ceil(T / BQ), NH, B];
}

/** Floats of `scratch` that recordAttentionBackward needs: D [B, NH, T]. */
export function attentionScratchElements(B: number, T: number, NH: number): number {
  return B * NH * T;
}

/** out [B, T, C] and lse [B, NH, T] from qkv [B, T, 3C]; causal, scale 1/√HS. */
export async function recordAttentionForward(
  rec: Recorder,
  label: string,
  a: { qkv: View; out: View; lse: View; B: number; T: number; C: number; NH: number },
): Promise<void> {
  const { B, T, C, NH } = a;
  const HS = headSize(label, C, NH);
  const pairs = (B * NH * T * (T + 1)) / 2;
  await rec.dispatch({
    label,
    shader: 'attention',
    entry: 'forward',
    bindings: ['read', 'write', 'write'],
    defines: defines(HS, false),
    uniform: [
      ['u32', T],
      ['u32', C],
      ['u32', NH],
      ['f32', 1 / Math.sqrt(HS)],
    ],
    resources: [a.qkv, a.out, a.lse],
    workgroups: grid(label, B, T, NH),
    cost: { flops: 4 * pairs * HS, bytes: 4 * (4 * B * T * C + B * NH * T) },
  });
}

/** dqkv (=|+= when accumulate) [B, T, 3C] given dout [B, T, C]; scratch ≥ attentionScratchElements floats. */
export async function recordAttentionBackward(
  rec: Recorder,
  label: string,
  a: {
    dout: View;
    qkv: View;
    out: View;
    lse: View;
    dqkv: View;
    scratch: View;
    B: number;
    T: number;
    C: number;
    NH: number;
    accumulate: boolean;
  },
): Promise<void> {
  const { B, T, C, NH } = a;
  const HS = headSize(label, C, NH);
  if (a.scratch.size < 4 * attentionScratchElements(B, T, NH)) {
    throw new Error(`${label}: scratch holds ${a.scratch.size / 4} floats, needs ${attentionScratchElements(B, T, NH)}`);
  }
  const pairs = (B * NH * T * (T + 1)) / 2;
  const common = {
    shader: 'attention',
    bindings: ['read', 'read', 'read', 'read', 'write', 'write'] as const,
    defines: defines(HS, a.accumulate),
    uniform: [
      ['u32', T],
      ['u32', C],
      ['u32', NH],
      ['f32', 1 / Math.sqrt(HS)],
    ] as Array<['u32' | 'f32', number]>,
    resources: [a.dout, a.qkv, a.out, a.lse, a.dqkv, a.scratch],
    workgroups: grid(label, B, T, NH),
  };
  const rw = a.accumulate ? 2 : 1;
  await rec.dispatch({
    ...common,
    label: `${label} dq`,
    entry: 'backward_dq',
    cost: { flops: 6 * pairs * HS, bytes: 4 * ((4 + rw) * B * T * C + 2 * B * NH * T) },
  });
  await rec.dispatch({
    ...common,
    label: `${label} dk/dv`,
    entry: 'backward_dkdv',
    cost: { flops: 8 * pairs * HS, bytes: 4 * ((4 + 2 * rw) * B * T * C + 2 * B * NH * T) },
  });
}
