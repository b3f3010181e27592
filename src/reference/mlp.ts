// A plain-TypeScript MLP (Linear layers with activations, then a loss), forward and backward in float64:
// the reference the whole-model tests hold the engine to.
import { actDerivative, actForward, crossEntropy, type Activation } from './ops.ts';

export interface RefLayer {
  name: string;
  inF: number;
  outF: number;
  act: Activation;
  bias: boolean;
}

/** Mean loss and gradients (by parameter name) of the MLP on a batch; weights are [in, out] as the engine stores them. */
export function mlpLossAndGrads(
  layers: RefLayer[],
  params: Map<string, ArrayLike<number>>,
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  rows: number,
  loss: 'cross-entropy' | 'mse',
): { loss: number; grads: Map<string, Float64Array>; output: Float64Array } {
  const pres: Float64Array[] = [];
  const acts: Float64Array[] = [Float64Array.from(x)];
  for (const L of layers) {
    const W = params.get(`${L.name}.weight`)!;
    const b = L.bias ? params.get(`${L.name}.bias`)! : null;
    const inp = acts[acts.length - 1];
    const pre = new Float64Array(rows * L.outF);
    for (let r = 0; r < rows; r++) {
      for (let n = 0; n < L.outF; n++) {
        let s = b ? b[n] : 0;
        for (let k = 0; k < L.inF; k++) s += inp[r * L.inF + k] * W[k * L.outF + n];
        pre[r * L.outF + n] = s;
      }
    }
    pres.push(pre);
    acts.push(pre.map((v) => actForward(L.act, v)));
  }
  const out = acts[acts.length - 1];
  const D = layers[layers.length - 1].outF;
  let value: number;
  let dout: Float64Array;
  if (loss === 'cross-entropy') {
    const ce = crossEntropy(out, y, rows, D);
    value = ce.loss;
    // Recompute the gradient in float64 rather than taking the float32 one.
    dout = new Float64Array(rows * D);
    for (let r = 0; r < rows; r++) {
      let mx = -Infinity;
      for (let v = 0; v < D; v++) mx = Math.max(mx, out[r * D + v]);
      let s = 0;
      for (let v = 0; v < D; v++) s += Math.exp(out[r * D + v] - mx);
      for (let v = 0; v < D; v++) dout[r * D + v] = (Math.exp(out[r * D + v] - mx) / s - (v === y[r] ? 1 : 0)) / rows;
    }
  } else {
    const n = rows * D;
    value = 0;
    dout = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const e = out[i] - y[i];
      value += (e * e) / n;
      dout[i] = (2 * e) / n;
    }
  }
  const grads = new Map<string, Float64Array>();
  for (let l = layers.length - 1; l >= 0; l--) {
    const L = layers[l];
    const pre = pres[l];
    const inp = acts[l];
    const W = params.get(`${L.name}.weight`)!;
    const dpre = dout.map((g, i) => g * actDerivative(L.act, pre[i]));
    const dW = new Float64Array(L.inF * L.outF);
    for (let r = 0; r < rows; r++) {
      for (let k = 0; k < L.inF; k++) {
        const a = inp[r * L.inF + k];
        for (let n = 0; n < L.outF; n++) dW[k * L.outF + n] += a * dpre[r * L.outF + n];
      }
    }
    grads.set(`${L.name}.weight`, dW);
    if (L.bias) {
      const db = new Float64Array(L.outF);
      for (let r = 0; r < rows; r++) for (let n = 0; n < L.outF; n++) db[n] += dpre[r * L.outF + n];
      grads.set(`${L.name}.bias`, db);
    }
    const dinp = new Float64Array(rows * L.inF);
    for (let r = 0; r < rows; r++) {
      for (let k = 0; k < L.inF; k++) {
        let s = 0;
        for (let n = 0; n < L.outF; n++) s += dpre[r * L.outF + n] * W[k * L.outF + n];
        dinp[r * L.inF + k] = s;
      }
    }
    dout = dinp;
  }
  return { loss: value, grads, output: out };
}
