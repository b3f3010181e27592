// Records the matmul kernel (shaders/matmul.wgsl) and the bias-gradient column reduction (shaders/bias_grad.wgsl).
import type { Recorder } from '../gpu/program.ts';
import type { View } from '../gpu/buffers.ts';
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
  /** Batched product: `batch` independent products, operands `stride*` elements apart. */
  batch?: number;
  strideA?: number;
  strideB?: number;
  strideC?: number;
  tile?: MatmulTile;
}

export function recordMatmul(rec: Recorder, a: MatmulArgs): Promise<void> {
  const { M, N, K } = a;
  const batch = a.batch ?? 1;
  const tile = a.tile ?? chooseTile(M, N);
  const act = a.act ?? 'none';
  return rec.dispatch({
    label: a.label,
    shader: 'matmul',
    entry: 'main',
    bindings: ['read', 'read', 'read', 'write', 'write'],
    defines: {
      ...tile,
      TRANS_A: !!a.transA,
      TRANS_B: !!a.transB,
      HAS_BIAS: !!a.bias,
      STORE_PRE: !!a.pre,
      ACCUMULATE: !!a.accumulate,
      ACT: ACT_CODE[act],
    },
    uniform: [
      ['u32', M],
      ['u32', N],
      ['u32', K],
      ['u32', a.strideA ?? M * K],
      ['u32', a.strideB ?? K * N],
      ['u32', a.strideC ?? M * N],
    ],
    resources: [a.A, a.B, a.bias ?? rec.dummy('read'), a.C, a.pre ?? rec.dummy('write')],
    workgroups: [Math.ceil(N / tile.BN), Math.ceil(M / tile.BM), batch],
    cost: {
      flops: 2 * M * N * K * batch,
      bytes: 4 * batch * (M * K + K * N + M * N * (a.accumulate ? 2 : 1) + (a.pre ? M * N : 0)),
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
    resources: [dout, dbias],
    workgroups: [Math.ceil(N / 64), 1, 1],
    cost: { flops: M * N, bytes: 4 * (M * N + 2 * N) },
  });
}
