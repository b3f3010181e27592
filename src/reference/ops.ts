// Plain-TypeScript references for every kernel: the math the tests hold the WGSL to.
// Float64 accumulation throughout; layouts and conventions are those of the shaders' header comments.

export type Activation = 'none' | 'relu' | 'gelu' | 'silu' | 'tanh' | 'sigmoid';

/** C[M,N] = alpha·op(A)·op(B) (+ bias[n]), A stored [M,K] or [K,M] (transA), B stored [K,N] or [N,K] (transB). */
export function matmul(
  A: ArrayLike<number>,
  B: ArrayLike<number>,
  M: number,
  N: number,
  K: number,
  opts: { transA?: boolean; transB?: boolean; alpha?: number; bias?: ArrayLike<number> } = {},
): Float32Array {
  const C = new Float32Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) {
        const a = opts.transA ? A[k * M + m] : A[m * K + k];
        const b = opts.transB ? B[n * K + k] : B[k * N + n];
        s += a * b;
      }
      C[m * N + n] = (opts.alpha ?? 1) * s + (opts.bias ? opts.bias[n] : 0);
    }
  }
  return C;
}

const GELU_C = Math.sqrt(2 / Math.PI);
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

export function actForward(act: Activation, x: number): number {
  switch (act) {
    case 'relu':
      return Math.max(x, 0);
    case 'gelu':
      return 0.5 * x * (1 + Math.tanh(GELU_C * (x + 0.044715 * x ** 3)));
    case 'silu':
      return x * sigmoid(x);
    case 'tanh':
      return Math.tanh(x);
    case 'sigmoid':
      return sigmoid(x);
    case 'none':
      return x;
  }
}

/** f'(x), from the input x. */
export function actDerivative(act: Activation, x: number): number {
  switch (act) {
    case 'relu':
      return x > 0 ? 1 : 0;
    case 'gelu': {
      const t = Math.tanh(GELU_C * (x + 0.044715 * x ** 3));
      return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU_C * (1 + 3 * 0.044715 * x * x);
    }
    case 'silu': {
      const g = sigmoid(x);
      return g * (1 + x * (1 - g));
    }
    case 'tanh':
      return 1 - Math.tanh(x) ** 2;
    case 'sigmoid':
      return sigmoid(x) * (1 - sigmoid(x));
    case 'none':
      return 1;
  }
}

export function mapArray(x: ArrayLike<number>, f: (v: number, i: number) => number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = f(x[i], i);
  return out;
}

/** dbias[n] = Σ_m dout[m, n]. */
export function biasGrad(dout: ArrayLike<number>, M: number, N: number): Float32Array {
  const db = new Float32Array(N);
  for (let n = 0; n < N; n++) {
    let s = 0;
    for (let m = 0; m < M; m++) s += dout[m * N + n];
    db[n] = s;
  }
  return db;
}

/** Softmax cross-entropy per row, and the gradient of the MEAN loss (scaled by gradScale, default 1/R). */
export function crossEntropy(
  logits: ArrayLike<number>,
  labels: ArrayLike<number>,
  R: number,
  V: number,
  gradScale = 1 / R,
): { losses: Float64Array; loss: number; dlogits: Float32Array } {
  const losses = new Float64Array(R);
  const dlogits = new Float32Array(R * V);
  for (let r = 0; r < R; r++) {
    let mx = -Infinity;
    for (let v = 0; v < V; v++) mx = Math.max(mx, logits[r * V + v]);
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(logits[r * V + v] - mx);
    losses[r] = Math.log(s) + mx - logits[r * V + labels[r]];
    for (let v = 0; v < V; v++) {
      const p = Math.exp(logits[r * V + v] - mx) / s;
      dlogits[r * V + v] = (p - (v === labels[r] ? 1 : 0)) * gradScale;
    }
  }
  return { losses, loss: losses.reduce((a, b) => a + b, 0) / R, dlogits };
}

/** Mean squared error over every element, and its gradient. */
export function mse(pred: ArrayLike<number>, target: ArrayLike<number>): { loss: number; dpred: Float32Array } {
  const n = pred.length;
  let s = 0;
  const dpred = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const e = pred[i] - target[i];
    s += e * e;
    dpred[i] = (2 * e) / n;
  }
  return { loss: s / n, dpred };
}

export interface AdamHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  decoupled: boolean;
}

/** One torch.optim.Adam / AdamW step at step number t (from 1), in place. */
export function adamStep(p: Float64Array, g: ArrayLike<number>, m: Float64Array, v: Float64Array, t: number, h: AdamHyper) {
  const bc1 = 1 - h.beta1 ** t;
  const bc2 = 1 - h.beta2 ** t;
  for (let i = 0; i < p.length; i++) {
    let gi = g[i];
    if (h.decoupled) p[i] *= 1 - h.lr * h.weightDecay;
    else gi += h.weightDecay * p[i];
    m[i] = h.beta1 * m[i] + (1 - h.beta1) * gi;
    v[i] = h.beta2 * v[i] + (1 - h.beta2) * gi * gi;
    p[i] -= (h.lr / bc1) * (m[i] / (Math.sqrt(v[i]) / Math.sqrt(bc2) + h.eps));
  }
}

export interface SgdHyper {
  lr: number;
  momentum: number;
  dampening: number;
  nesterov: boolean;
  weightDecay: number;
}

/** One torch.optim.SGD step at step number t (from 1), in place; buf is the momentum buffer. */
export function sgdStep(p: Float64Array, g: ArrayLike<number>, buf: Float64Array, t: number, h: SgdHyper) {
  for (let i = 0; i < p.length; i++) {
    let gi = g[i] + h.weightDecay * p[i];
    if (h.momentum !== 0) {
      buf[i] = t === 1 ? gi : h.momentum * buf[i] + (1 - h.dampening) * gi;
      gi = h.nesterov ? gi + h.momentum * buf[i] : buf[i];
    }
    p[i] -= h.lr * gi;
  }
}

/** torch.nn.utils.clip_grad_norm_: the total norm and the factor every gradient is multiplied by. */
export function clipFactor(grads: ArrayLike<number>[], maxNorm: number): { norm: number; scale: number } {
  let s = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) s += g[i] * g[i];
  const norm = Math.sqrt(s);
  return { norm, scale: Math.min(1, maxNorm / (norm + 1e-6)) };
}
