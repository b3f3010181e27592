// LoRA: a Linear layer with a trainable low-rank adapter beside its (usually frozen) weight.
//   z = x·W + b + s·(x·A)·B,  s = alpha / rank;   y = act(z)
//   x [R, in], W [in, out], A [in, r], B [r, out]; A starts U(−1/√in, 1/√in) and B at zero (as PEFT), so
//   the adapted layer starts equal to the original.
// Forward: u = x·A (kept for the backward); z = x·W + b; z += s·u·B; y = act(z) when there is an activation.
// Backward: dz = dy·f'(·); dW += xᵀ·dz and db += Σ dz (if trained); dB += s·uᵀ·dz; du = s·dz·Bᵀ;
//           dA += xᵀ·du; dx (=|+=) dz·Wᵀ, then dx += du·Aᵀ.
// Merging for export: W' = W + s·A·B (mergeLora).
import type { Graph, Op, OpContext, Tensor } from '../graph/graph.ts';
import { recordMatmul, recordBiasGrad } from '../ops/matmul.ts';
import { recordActivationForward, recordActivationBackward, savesInput, type Activation } from '../ops/activation.ts';
import { constantInit, uniformInit } from './init.ts';

export function loraLinear(
  g: Graph, name: string, x: Tensor, W: Tensor, b: Tensor | null, act: Activation,
  rows: number, K: number, N: number, lora: { rank: number; alpha: number },
): Tensor {
  const r = lora.rank;
  if (!Number.isInteger(r) || r < 1) throw new Error(`${name}: LoRA rank must be a positive integer, got ${r}`);
  const A = g.param(`${name}.lora_A`, [K, r], uniformInit(1 / Math.sqrt(K)));
  const B = g.param(`${name}.lora_B`, [r, N], constantInit(0));
  const shape = [...x.shape.slice(0, -1), N];
  const u = g.tensor(`${name}.lora_u`, [...x.shape.slice(0, -1), r], 'activation');
  const z = act === 'none' ? null : g.tensor(`${name}.pre`, shape, 'activation');
  const y = g.tensor(`${name}.out`, shape, 'activation');
  g.add(new LoraLinearOp(name, x, W, b, A, B, u, z, y, act, rows, K, N, r, lora.alpha / r));
  return y;
}

class LoraLinearOp implements Op {
  readonly inputs: Tensor[];
  readonly params: Tensor[];
  readonly outputs: Tensor[];
  readonly saved: Tensor[];

  constructor(
    readonly name: string,
    private readonly x: Tensor,
    private readonly W: Tensor,
    private readonly b: Tensor | null,
    private readonly A: Tensor,
    private readonly B: Tensor,
    private readonly u: Tensor,
    private readonly z: Tensor | null,
    private readonly y: Tensor,
    private readonly act: Activation,
    private readonly M: number,
    private readonly K: number,
    private readonly N: number,
    private readonly r: number,
    private readonly s: number,
  ) {
    this.inputs = [x];
    this.params = b ? [W, b, A, B] : [W, A, B];
    this.outputs = z ? [u, z, y] : [u, y];
    this.saved = [x, u, ...(act === 'none' ? [] : [savesInput(act) ? z! : y])];
  }

  temps(phase: 'forward' | 'backward'): number[] {
    if (phase === 'forward') return [];
    return [this.act === 'none' ? 0 : this.M * this.N, this.M * this.r]; // dz, du
  }

  async forward(ctx: OpContext): Promise<void> {
    const { x, W, b, A, B, u, M, K, N, r, s, name } = this;
    const z = ctx.value(this.z ?? this.y);
    await recordMatmul(ctx.rec, { label: `${name} lora x·A`, A: ctx.value(x), B: ctx.operand(A), C: ctx.value(u), M, N: r, K });
    await recordMatmul(ctx.rec, { label: `${name} forward`, A: ctx.value(x), B: ctx.operand(W), C: z, M, N, K, bias: b ? ctx.value(b) : undefined });
    await recordMatmul(ctx.rec, { label: `${name} lora += s·u·B`, A: ctx.value(u), B: ctx.operand(B), C: z, M, N, K: r, alpha: s, accumulate: true });
    if (this.act !== 'none') await recordActivationForward(ctx.rec, `${name} ${this.act}`, this.act, z, ctx.value(this.y), M * N);
  }

  async backward(ctx: OpContext): Promise<void> {
    const { x, W, b, A, B, u, y, M, K, N, r, s, name } = this;
    const dy = ctx.grad(y);
    if (!dy) return;
    let dz = dy;
    if (this.act !== 'none') {
      dz = ctx.temp(0);
      const saved = ctx.value(savesInput(this.act) ? this.z! : y);
      await recordActivationBackward(ctx.rec, `${name} ${this.act} backward`, this.act, dy, saved, dz, M * N, false);
    }
    const dW = ctx.grad(W);
    if (dW) await recordMatmul(ctx.rec, { label: `${name} dW`, A: ctx.value(x), B: dz, C: dW, M: K, N, K: M, transA: true, accumulate: true });
    const db = b && ctx.grad(b);
    if (db) await recordBiasGrad(ctx.rec, `${name} db`, dz, db, M, N);
    const dB = ctx.grad(B);
    if (dB) await recordMatmul(ctx.rec, { label: `${name} lora dB`, A: ctx.value(u), B: dz, C: dB, M: r, N, K: M, transA: true, accumulate: true, alpha: s });
    const du = ctx.temp(1);
    await recordMatmul(ctx.rec, { label: `${name} lora du`, A: dz, B: ctx.operand(B), C: du, M, N: r, K: N, transB: true, alpha: s });
    const dA = ctx.grad(A);
    if (dA) await recordMatmul(ctx.rec, { label: `${name} lora dA`, A: ctx.value(x), B: du, C: dA, M: K, N: r, K: M, transA: true, accumulate: true });
    const dx = ctx.grad(x);
    if (dx) {
      await recordMatmul(ctx.rec, { label: `${name} dx`, A: dz, B: ctx.operand(W), C: dx, M, N: K, K: N, transB: true, accumulate: ctx.accumulates(x) });
      await recordMatmul(ctx.rec, { label: `${name} lora dx`, A: du, B: ctx.operand(A), C: dx, M, N: K, K: r, transB: true, accumulate: true });
    }
  }
}

/** W + (alpha / rank) · A·B for every adapted layer; the adapter tensors themselves are dropped. */
export function mergeLora(params: Map<string, Float32Array>, lora: { rank: number; alpha: number }): Map<string, Float32Array> {
  const out = new Map([...params].filter(([n]) => !/\.lora_[AB]$/.test(n)));
  const s = lora.alpha / lora.rank;
  for (const [name, A] of params) {
    if (!name.endsWith('.lora_A')) continue;
    const layer = name.slice(0, -'.lora_A'.length);
    const Bm = params.get(`${layer}.lora_B`)!;
    const W = out.get(`${layer}.weight`)!.slice();
    const r = lora.rank;
    const inF = A.length / r;
    const outF = Bm.length / r;
    for (let i = 0; i < inF; i++) {
      for (let k = 0; k < r; k++) {
        const a = s * A[i * r + k];
        if (a === 0) continue;
        for (let j = 0; j < outF; j++) W[i * outF + j] += a * Bm[k * outF + j];
      }
    }
    out.set(`${layer}.weight`, W);
  }
  return out;
}

