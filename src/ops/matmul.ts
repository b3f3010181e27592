// Records the matmul kernels and the bias-gradient column reduction (shaders/bias_grad.wgsl).
// Three matmul kernels with one contract (C (=|+=) act(op(A)·op(B) + bias), transposes, batch):
//   'tiled'     shaders/matmul.wgsl: shared-memory tiles, register-blocked; right for real GPUs.
//   'subgroup'  shaders/matmul_sg.wgsl: no workgroup memory or barriers, B shared by subgroupBroadcast;
//               ~4–10× faster than 'tiled' on CPU drivers (lavapipe/llvmpipe), where every
//               non-uniform load is a per-lane scalar loop and barriers switch coroutines.
//   'registers' shaders/matmul_rb.wgsl: no workgroup memory, barriers or subgroup operations; a TM×TN
//               block of C per invocation, B loads uniform across lanes. For CPU drivers whose subgroups
//               are too narrow for 'subgroup' (SwiftShader: 4 lanes), where it beats 'tiled' by ~3×.
// recordMatmul picks 'subgroup' on a software adapter that has subgroups of ≥ 8 lanes, 'registers' on
// other software adapters, else 'tiled'.
import type { Recorder } from '../gpu/program.ts';
import { floatType, typeDefines, type View } from '../gpu/buffers.ts';
import type { Runtime } from '../gpu/device.ts';
import { ACT_CODE, type Activation } from './activation.ts';

/** Tile shape of the matmul kernel: a BM×BN output tile per workgroup, BK deep, TM×TN per thread. */
export interface MatmulTile {
  BM: number;
  BN: number;
  BK: number;
  TM: number;
  TN: number;
}

/** The default tile: 64×64 outputs, 16 deep, 4×4 per thread (256 threads). */
export const DEFAULT_TILE: MatmulTile = { BM: 64, BN: 64, BK: 16, TM: 4, TN: 4 };
/** For narrow outputs (N ≤ 32, e.g. a classifier head): 64×32 tile, 128 threads. */
export const NARROW_TILE: MatmulTile = { BM: 64, BN: 32, BK: 16, TM: 4, TN: 4 };

export function chooseTile(M: number, N: number): MatmulTile {
  return N <= 32 && M >= 64 ? NARROW_TILE : DEFAULT_TILE;
}

export type MatmulKernel = 'tiled' | 'subgroup' | 'registers';

/** Block of C per invocation of the 'registers' kernel: TM rows (1, 2 or 4) × TN columns (4 or 8). */
export interface RegisterBlock {
  TM: 1 | 2 | 4;
  TN: 4 | 8;
}
/** 4×8: the fastest block on SwiftShader at every MLP shape (bench/lab/matmul.mjs versions 16–19). */
export const DEFAULT_REGISTER_BLOCK: RegisterBlock = { TM: 4, TN: 8 };

/** A CPU implementation of WebGPU (lavapipe/llvmpipe, SwiftShader, WARP), where GPU-style tiling is slow. */
export function isSoftwareAdapter(rt: Runtime): boolean {
  const i = rt.adapterInfo;
  return i.isFallback || /^(software|swiftshader)$/i.test(i.architecture) || /llvmpipe|lavapipe|swiftshader/i.test(`${i.device} ${i.description}`);
}

/**
 * The subgroup size the 'subgroup' kernel can count on, 0 if unknown. llvmpipe's subgroup is its SIMD
 * vector (device "llvmpipe-…-256-bits": 8 lanes); others report nothing we can read here.
 */
export function knownSubgroupSize(rt: Runtime): number {
  if (!rt.features.has('subgroups')) return 0;
  if (rt.adapterInfo.subgroupMinSize > 0) return rt.adapterInfo.subgroupMinSize;
  const bits = /llvmpipe.*?(\d+)-bits/i.exec(rt.adapterInfo.device);
  return bits ? Number(bits[1]) / 32 : 0;
}

/** The kernel recordMatmul uses on this runtime when the caller does not force one. */
export function chooseKernel(rt: Runtime): MatmulKernel {
  if (!isSoftwareAdapter(rt)) return 'tiled';
  return knownSubgroupSize(rt) >= 8 ? 'subgroup' : 'registers';
}

/**
 * Invocations per workgroup of the 'subgroup' kernel (rows per workgroup = 2·WG), a multiple of the subgroup
 * size `lanes`: the largest of 64, 56, … 32 that wastes the fewest padded rows (M = 784: 56, 7 × 112 rows,
 * where 64 would compute 896), fewer for small M·N so both/all CPU threads get work.
 */
export function subgroupWorkgroupSize(M: number, N: number, batch = 1, lanes = 8): number {
  const step = Math.max(8, lanes);
  const padded = (wg: number) => Math.ceil(M / (2 * wg)) * 2 * wg;
  let wg = 64;
  for (let c = 64 - step; c >= 32; c -= step) if (padded(c) < padded(wg)) wg = c;
  while (wg > step && Math.ceil(M / (2 * wg)) * Math.ceil(N / 8) * batch < 8) wg = Math.max(step, Math.floor(wg / 2 / step) * step);
  return wg;
}

/**
 * Invocations per workgroup of the 'registers' kernel (rows per workgroup = TM·WG): the size among 64, 32,
 * 16 that pads M least, halved (down to 4) while there are fewer than 8 workgroups, so both/all CPU
 * threads get work.
 */
export function registersWorkgroupSize(M: number, N: number, batch = 1, block: RegisterBlock = DEFAULT_REGISTER_BLOCK): number {
  const padded = (wg: number) => Math.ceil(M / (block.TM * wg)) * block.TM * wg;
  let wg = 64;
  for (const c of [32, 16]) if (padded(c) < padded(wg)) wg = c;
  while (wg > 4 && Math.ceil(M / (block.TM * wg)) * Math.ceil(N / block.TN) * batch < 8) wg /= 2;
  return wg;
}

export interface MatmulArgs {
  label: string;
  A: View;
  B: View;
  C: View;
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
  bias?: View;
  act?: Activation;
  /** Also store the pre-activation here (the backward of gelu/silu needs it). */
  pre?: View;
  /** C += result instead of C = result. */
  accumulate?: boolean;
  /** Scales the product before the bias: C (=|+=) act(alpha·op(A)·op(B) + bias). Default 1. */
  alpha?: number;
  /** Batched product: `batch` independent products, operands `stride*` elements apart. */
  batch?: number;
  strideA?: number;
  strideB?: number;
  strideC?: number;
  /** Tile of the 'tiled' kernel (default chooseTile(M, N)). */
  tile?: MatmulTile;
  /** Force a kernel (default chooseKernel(rt)); 'subgroup' needs the subgroups feature with ≥ 8 lanes; 'tiled' and 'registers' run anywhere. */
  kernel?: MatmulKernel;
  /** The 'subgroup' kernel's workgroup size (default subgroupWorkgroupSize). */
  sgWorkgroup?: number;
  /** The 'registers' kernel's block per invocation (default DEFAULT_REGISTER_BLOCK) and workgroup size (default registersWorkgroupSize). */
  rbBlock?: RegisterBlock;
  rbWorkgroup?: number;
}

/** What autotuning decides for a shape (see src/gpu/autotune.ts). */
export interface MatmulShape {
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
}
export interface MatmulChoice {
  kernel: MatmulKernel;
  tile?: MatmulTile;
  sgWorkgroup?: number;
  rbBlock?: RegisterBlock;
  rbWorkgroup?: number;
}

const choosers = new WeakMap<Runtime, (s: MatmulShape) => Promise<MatmulChoice>>();

/** Lets an autotuner decide the kernel of every matmul recorded on `rt` without an explicit kernel or tile. */
export function setMatmulChooser(rt: Runtime, chooser: ((s: MatmulShape) => Promise<MatmulChoice>) | null): void {
  if (chooser) choosers.set(rt, chooser);
  else choosers.delete(rt);
}

export async function recordMatmul(rec: Recorder, a: MatmulArgs): Promise<void> {
  const chooser = !a.kernel && !a.tile ? choosers.get(rec.rt) : undefined;
  if (chooser) a = { ...a, ...(await chooser({ M: a.M, N: a.N, K: a.K, transA: a.transA, transB: a.transB })) };
  const { M, N, K } = a;
  const batch = a.batch ?? 1;
  const act = a.act ?? 'none';
  const strideA = a.strideA ?? M * K;
  const strideB = a.strideB ?? K * N;
  const kernel = a.kernel ?? (a.tile ? 'tiled' : chooseKernel(rec.rt));
  if (kernel === 'subgroup' && knownSubgroupSize(rec.rt) < 8) {
    throw new Error(
      `${a.label}: the 'subgroup' matmul needs subgroups of at least 8 lanes; this adapter's subgroup size is ` +
        `${knownSubgroupSize(rec.rt) || 'unknown'}`,
    );
  }
  // Element types: any operand may be f16 (mixed precision); C and pre share one type.
  const [tA, tB, tC] = [floatType(a.A), floatType(a.B), floatType(a.C)];
  if (a.pre && floatType(a.pre) !== tC) throw new Error(`${a.label}: the pre-activation (${floatType(a.pre)}) and the output (${tC}) must have one type`);
  const eb = (t: 'f32' | 'f16') => (t === 'f16' ? 2 : 4);
  const flags = {
    A_T: tA,
    B_T: tB,
    C_T: tC,
    F16: tA === 'f16' || tB === 'f16' || tC === 'f16',
    TRANS_A: !!a.transA,
    TRANS_B: !!a.transB,
    HAS_BIAS: !!a.bias,
    STORE_PRE: !!a.pre,
    ACCUMULATE: !!a.accumulate,
    ACT: ACT_CODE[act],
  };
  // vec4 bindings ('subgroup', 'registers') where the layout allows: whole vec4s along the contiguous
  // dimension, aligned bases.
  const vecA = !a.transA && K % 4 === 0 && strideA % 4 === 0 && a.A.offset % (4 * eb(tA)) === 0 && a.A.size % (4 * eb(tA)) === 0;
  const vecB = (a.transB ? K % 4 === 0 : N % 4 === 0) && strideB % 4 === 0 && a.B.offset % (4 * eb(tB)) === 0 && a.B.size % (4 * eb(tB)) === 0;
  const strideC = a.strideC ?? M * N;
  const vecC = N % 4 === 0 && strideC % 4 === 0 && [a.C, ...(a.pre ? [a.pre] : [])].every((v) => v.offset % (4 * eb(tC)) === 0 && v.size % (4 * eb(tC)) === 0);
  let shader: string;
  let defines: Record<string, number | boolean | string>;
  let workgroups: [number, number, number];
  if (kernel === 'subgroup') {
    const WG = a.sgWorkgroup ?? subgroupWorkgroupSize(M, N, batch, knownSubgroupSize(rec.rt));
    shader = 'matmul_sg';
    defines = { WG, VEC_A: vecA, VEC_B: vecB, VEC_C: vecC, ...flags };
    workgroups = [Math.ceil(N / 8), Math.ceil(M / (2 * WG)), batch];
  } else if (kernel === 'registers') {
    const block = a.rbBlock ?? DEFAULT_REGISTER_BLOCK;
    if (![1, 2, 4].includes(block.TM) || ![4, 8].includes(block.TN)) throw new Error(`${a.label}: the 'registers' matmul takes TM 1, 2 or 4 and TN 4 or 8, not ${block.TM}×${block.TN}`);
    const WG = a.rbWorkgroup ?? registersWorkgroupSize(M, N, batch, block);
    shader = 'matmul_rb';
    defines = { WG, TM: block.TM, TN: block.TN, TM2: block.TM >= 2, TM4: block.TM === 4, TN8: block.TN === 8, VEC_A: vecA, VEC_B: vecB, VEC_C: vecC, ...flags };
    workgroups = [Math.ceil(N / block.TN), Math.ceil(M / (block.TM * WG)), batch];
  } else {
    const tile = a.tile ?? chooseTile(M, N);
    shader = 'matmul';
    defines = { ...tile, VEC_C: false, ...flags };
    workgroups = [Math.ceil(N / tile.BN), Math.ceil(M / tile.BM), batch];
  }
  return rec.dispatch({
    label: a.label,
    shader,
    entry: 'main',
    bindings: ['read', 'read', 'read', 'write', 'write'],
    defines,
    uniform: [
      ['u32', M],
      ['u32', N],
      ['u32', K],
      ['u32', strideA],
      ['u32', strideB],
      ['u32', a.strideC ?? M * N],
      ['f32', a.alpha ?? 1],
    ],
    resources: [a.A, a.B, a.bias ?? rec.dummy('read'), a.C, a.pre ?? rec.dummy('write')],
    workgroups,
    f16: flags.F16,
    cost: {
      flops: 2 * M * N * K * batch,
      bytes: batch * (eb(tA) * M * K + eb(tB) * K * N + eb(tC) * M * N * ((a.accumulate ? 2 : 1) + (a.pre ? 1 : 0))),
    },
  });
}

/** dbias[n] += Σ_m dout[m, n]. */
export function recordBiasGrad(rec: Recorder, label: string, dout: View, dbias: View, M: number, N: number) {
  return rec.dispatch({
    label,
    shader: 'bias_grad',
    entry: 'main',
    bindings: ['read', 'write'],
    uniform: [
      ['u32', M],
      ['u32', N],
    ],
    defines: typeDefines({ D_T: dout }),
    resources: [dout, dbias],
    workgroups: [Math.ceil(N / 64), 1, 1],
    f16: true,
    cost: { flops: M * N, bytes: 4 * (M * N + 2 * N) },
  });
}
