// Records the causal multi-head self-attention kernels (shaders/attention.wgsl): one forward dispatch
// (out and the per-row log-sum-exp), and a backward of two dispatches: dq (which also writes D = dout·out
// per query row into `scratch`), then dk and dv. Nothing of size T×T is ever stored.
// Two kernels with one contract (bench/lab/attention.mjs times them):
//   'tiled'    64 rows per workgroup, the other rows staged in workgroup memory; right for real GPUs.
//   'subgroup' 8 rows per workgroup, no workgroup memory or barriers, rows shared by subgroupBroadcast;
//              ~2× faster than 'tiled' on CPU drivers (lavapipe/llvmpipe), forward and backward. `sgRows`
//              (rows per workgroup) and `sgVec4` (vec4 or scalar loads) override its settings, for the lab.
// Both are bitwise repeatable. The 'subgroup' kernel is chosen on a software adapter with subgroups of
// at least 8 lanes (as recordMatmul chooses its kernel), 'tiled' elsewhere; `kernel` forces one.
import type { Recorder } from '../gpu/program.ts';
import { sharedTypeDefines, type View } from '../gpu/buffers.ts';
import type { Runtime } from '../gpu/device.ts';
import { isSoftwareAdapter, knownSubgroupSize } from './matmul.ts';

export type AttentionKernel = 'tiled' | 'subgroup';

/** Settings of the 'subgroup' kernel that the lab varies (bench/lab/attention.mjs); production uses the defaults. */
export interface SubgroupAttentionSettings {
  /** Rows per workgroup (WG), a multiple of 8; default 8. */
  sgRows?: number;
  /** vec4 bindings (needs HS and C multiples of 4) or scalar loads; default vec4 where they fit. */
  sgVec4?: boolean;
}

/** Rows per workgroup of the 'tiled' kernel (shaders/attention.wgsl: BQ) and the 'subgroup' kernel's default (WG). */
const TILED_ROWS = 64;
const SUBGROUP_ROWS = 8;

function headSize(label: string, C: number, NH: number): number {
  if (!(NH >= 1) || C % NH !== 0) throw new Error(`${label}: C = ${C} is not a multiple of NH = ${NH}`);
  return C / NH;
}

/** Rows of the other index staged per step in workgroup memory: 2·TILE·⌈HS/4⌉ vec4s stay ≤ 8 KiB. */
function tileRows(HS: number): number {
  return Math.max(1, Math.min(32, Math.floor(256 / Math.ceil(HS / 4))));
}

/** The kernel recordAttentionForward/Backward use on this runtime when the caller does not force one. */
export function chooseAttentionKernel(rt: Runtime): AttentionKernel {
  return isSoftwareAdapter(rt) && knownSubgroupSize(rt) >= 8 ? 'subgroup' : 'tiled';
}

function pickKernel(rec: Recorder, label: string, forced: AttentionKernel | undefined): AttentionKernel {
  const kernel = forced ?? chooseAttentionKernel(rec.rt);
  if (kernel === 'subgroup' && knownSubgroupSize(rec.rt) < 8) {
    throw new Error(
      `${label}: the 'subgroup' attention needs subgroups of at least 8 lanes; this adapter's subgroup size is ` +
        `${knownSubgroupSize(rec.rt) || 'unknown'}`,
    );
  }
  return kernel;
}

/** The kernel's defines and rows per workgroup. VEC4 (vec4 bindings of qkv, out, dout, dqkv) needs whole vec4s per head and per row. */
function kernelSetup(label: string, kernel: AttentionKernel, HS: number, C: number, accumulate: boolean, s: SubgroupAttentionSettings) {
  const SUBGROUPS = kernel === 'subgroup';
  const WG = s.sgRows ?? SUBGROUP_ROWS;
  if (!(Number.isInteger(WG) && WG >= 8 && WG <= 256 && WG % 8 === 0)) throw new Error(`${label}: sgRows = ${WG} must be a multiple of 8 from 8 to 256`);
  const fits = HS % 4 === 0 && C % 4 === 0;
  if (s.sgVec4 && !fits) throw new Error(`${label}: sgVec4 needs HS = ${HS} and C = ${C} to be multiples of 4`);
  const VEC4 = SUBGROUPS && (s.sgVec4 ?? fits);
  const defines = { HS, HS4: Math.ceil(HS / 4), TILE: tileRows(HS), WG, ACCUMULATE: accumulate, SUBGROUPS, VEC4 };
  return { defines, rows: SUBGROUPS ? WG : TILED_ROWS };
}

function grid(label: string, rows: number, B: number, T: number, NH: number): [number, number, number] {
  if (T < 1 || B < 1) throw new Error(`${label}: B = ${B}, T = ${T} must be at least 1`);
  return [Math.ceil(T / rows), NH, B];
}

/** Floats of `scratch` that recordAttentionBackward needs: D [B, NH, T]. */
export function attentionScratchElements(B: number, T: number, NH: number): number {
  return B * NH * T;
}

/** out [B, T, C] and lse [B, NH, T] from qkv [B, T, 3C]; causal, scale 1/√HS. */
export async function recordAttentionForward(
  rec: Recorder,
  label: string,
  a: { qkv: View; out: View; lse: View; B: number; T: number; C: number; NH: number; kernel?: AttentionKernel } & SubgroupAttentionSettings,
): Promise<void> {
  const { B, T, C, NH } = a;
  const HS = headSize(label, C, NH);
  const kernel = pickKernel(rec, label, a.kernel);
  const { defines, rows } = kernelSetup(label, kernel, HS, C, false, a);
  const pairs = (B * NH * T * (T + 1)) / 2;
  await rec.dispatch({
    label,
    shader: 'attention',
    entry: 'forward',
    bindings: ['read', 'write', 'write'],
    defines: { ...defines, ...sharedTypeDefines('ACT_T', label, [a.qkv, a.out]) },
    f16: true,
    uniform: [
      ['u32', T],
      ['u32', C],
      ['u32', NH],
      ['f32', 1 / Math.sqrt(HS)],
    ],
    resources: [a.qkv, a.out, a.lse],
    workgroups: grid(label, rows, B, T, NH),
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
    /** Force a kernel (default chooseAttentionKernel(rt)); 'subgroup' needs subgroups of ≥ 8 lanes. */
    kernel?: AttentionKernel;
  } & SubgroupAttentionSettings,
): Promise<void> {
  const { B, T, C, NH } = a;
  const HS = headSize(label, C, NH);
  const kernel = pickKernel(rec, label, a.kernel);
  const { defines, rows } = kernelSetup(label, kernel, HS, C, a.accumulate, a);
  if (a.scratch.size < 4 * attentionScratchElements(B, T, NH)) {
    throw new Error(`${label}: scratch holds ${a.scratch.size / 4} floats, needs ${attentionScratchElements(B, T, NH)}`);
  }
  const pairs = (B * NH * T * (T + 1)) / 2;
  const common = {
    shader: 'attention',
    bindings: ['read', 'read', 'read', 'read', 'write', 'write'] as const,
    defines: { ...defines, ...sharedTypeDefines('ACT_T', label, [a.dout, a.qkv, a.out, a.dqkv]) },
    f16: true,
    uniform: [
      ['u32', T],
      ['u32', C],
      ['u32', NH],
      ['f32', 1 / Math.sqrt(HS)],
    ] as Array<['u32' | 'f32', number]>,
    resources: [a.dout, a.qkv, a.out, a.lse, a.dqkv, a.scratch],
    workgroups: grid(label, rows, B, T, NH),
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
