// Plain-TypeScript float64 references for the GPT-2 transformer kernels: layer norm, causal multi-head
// self-attention (naive, with the full T×T matrix), token + position embedding. The tests hold
// shaders/layernorm.wgsl, attention.wgsl and embedding.wgsl to these; layouts are those of the shaders'
// header comments (row-major; B batch, T time, C channels, NH heads, HS = C/NH, V vocabulary).
// Backward functions return the gradients themselves (not accumulated into anything).

/** LayerNorm over the last axis of inp [R, C], biased variance: out, mean [R], rstd [R]. */
export function layerNormForward(
  inp: ArrayLike<number>,
  weight: ArrayLike<number>,
  bias: ArrayLike<number>,
  R: number,
  C: number,
  eps: number,
): { out: Float64Array; mean: Float64Array; rstd: Float64Array } {
  const out = new Float64Array(R * C);
  const mean = new Float64Array(R);
  const rstd = new Float64Array(R);
  for (let r = 0; r < R; r++) {
    let m = 0;
    for (let c = 0; c < C; c++) m += inp[r * C + c];
    m /= C;
    let v = 0;
    for (let c = 0; c < C; c++) v += (inp[r * C + c] - m) ** 2;
    v /= C;
    const s = 1 / Math.sqrt(v + eps);
    mean[r] = m;
    rstd[r] = s;
    for (let c = 0; c < C; c++) out[r * C + c] = (inp[r * C + c] - m) * s * weight[c] + bias[c];
  }
  return { out, mean, rstd };
}

/** Gradients of layerNormForward given dout [R, C]; mean and rstd are recomputed in float64. */
export function layerNormBackward(
  dout: ArrayLike<number>,
  inp: ArrayLike<number>,
  weight: ArrayLike<number>,
  R: number,
  C: number,
  eps: number,
): { dinp: Float64Array; dweight: Float64Array; dbias: Float64Array } {
  const { mean, rstd } = layerNormForward(inp, weight, new Float64Array(C), R, C, eps);
  const dinp = new Float64Array(R * C);
  const dweight = new Float64Array(C);
  const dbias = new Float64Array(C);
  for (let r = 0; r < R; r++) {
    let s1 = 0;
    let s2 = 0;
    for (let c = 0; c < C; c++) {
      const xhat = (inp[r * C + c] - mean[r]) * rstd[r];
      const dn = dout[r * C + c] * weight[c];
      s1 += dn;
      s2 += dn * xhat;
      dweight[c] += dout[r * C + c] * xhat;
      dbias[c] += dout[r * C + c];
    }
    s1 /= C;
    s2 /= C;
    for (let c = 0; c < C; c++) {
      const xhat = (inp[r * C + c] - mean[r]) * rstd[r];
      const dn = dout[r * C + c] * weight[c];
      dinp[r * C + c] = rstd[r] * (dn - s1 - xhat * s2);
    }
  }
  return { dinp, dweight, dbias };
}

/** A residual add fused with the LayerNorm after it: sum = x + y [R, C], and layerNormForward of sum. */
export function residualLayerNormForward(
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  weight: ArrayLike<number>,
  bias: ArrayLike<number>,
  R: number,
  C: number,
  eps: number,
): { sum: Float64Array; out: Float64Array; mean: Float64Array; rstd: Float64Array } {
  const sum = Float64Array.from(x, (v, i) => v + y[i]);
  return { sum, ...layerNormForward(sum, weight, bias, R, C, eps) };
}

/**
 * Gradients of residualLayerNormForward given dout [R, C] and dsum [R, C], the gradient the sum receives from
 * its other consumers (null: none). x and y get the same gradient, ds = dinp + dsum.
 */
export function residualLayerNormBackward(
  dout: ArrayLike<number>,
  dsum: ArrayLike<number> | null,
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  weight: ArrayLike<number>,
  R: number,
  C: number,
  eps: number,
): { ds: Float64Array; dweight: Float64Array; dbias: Float64Array } {
  const sum = Float64Array.from(x, (v, i) => v + y[i]);
  const { dinp, dweight, dbias } = layerNormBackward(dout, sum, weight, R, C, eps);
  const ds = dsum ? dinp.map((v, i) => v + dsum[i]) : dinp;
  return { ds, dweight, dbias };
}

const qkvIndex = (b: number, t: number, which: number, h: number, d: number, T: number, C: number, HS: number) =>
  (b * T + t) * 3 * C + which * C + h * HS + d;

/** The causal softmax probabilities P [B, NH, T, T] (zero above the diagonal) and the row log-sum-exps. */
function attentionProbs(qkv: ArrayLike<number>, B: number, T: number, C: number, NH: number) {
  const HS = C / NH;
  const scale = 1 / Math.sqrt(HS);
  const P = new Float64Array(B * NH * T * T);
  const lse = new Float64Array(B * NH * T);
  const row = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < NH; h++) {
      for (let t = 0; t < T; t++) {
        let mx = -Infinity;
        for (let j = 0; j <= t; j++) {
          let s = 0;
          for (let d = 0; d < HS; d++) s += qkv[qkvIndex(b, t, 0, h, d, T, C, HS)] * qkv[qkvIndex(b, j, 1, h, d, T, C, HS)];
          row[j] = s * scale;
          mx = Math.max(mx, row[j]);
        }
        let sum = 0;
        for (let j = 0; j <= t; j++) sum += Math.exp(row[j] - mx);
        const base = ((b * NH + h) * T + t) * T;
        for (let j = 0; j <= t; j++) P[base + j] = Math.exp(row[j] - mx) / sum;
        lse[(b * NH + h) * T + t] = mx + Math.log(sum);
      }
    }
  }
  return { P, lse, HS, scale };
}

/** Causal self-attention, qkv [B, T, 3C] → out [B, T, C], lse [B, NH, T]. */
export function attentionForward(
  qkv: ArrayLike<number>,
  B: number,
  T: number,
  C: number,
  NH: number,
): { out: Float64Array; lse: Float64Array } {
  const { P, lse, HS } = attentionProbs(qkv, B, T, C, NH);
  const out = new Float64Array(B * T * C);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < NH; h++) {
      for (let t = 0; t < T; t++) {
        const base = ((b * NH + h) * T + t) * T;
        for (let d = 0; d < HS; d++) {
          let s = 0;
          for (let j = 0; j <= t; j++) s += P[base + j] * qkv[qkvIndex(b, j, 2, h, d, T, C, HS)];
          out[(b * T + t) * C + h * HS + d] = s;
        }
      }
    }
  }
  return { out, lse };
}

/** dqkv [B, T, 3C] of attentionForward given dout [B, T, C], through the full T×T matrices. */
export function attentionBackward(
  dout: ArrayLike<number>,
  qkv: ArrayLike<number>,
  B: number,
  T: number,
  C: number,
  NH: number,
): Float64Array {
  const { P, HS, scale } = attentionProbs(qkv, B, T, C, NH);
  const dqkv = new Float64Array(B * T * 3 * C);
  const dP = new Float64Array(T);
  const dS = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < NH; h++) {
      for (let t = 0; t < T; t++) {
        const base = ((b * NH + h) * T + t) * T;
        // dP[t, j] = dout_t · v_j;  dS = P ⊙ (dP − Σ_j P·dP)  (softmax backward);  scores = scale · q·k.
        let dot = 0;
        for (let j = 0; j <= t; j++) {
          let s = 0;
          for (let d = 0; d < HS; d++) s += dout[(b * T + t) * C + h * HS + d] * qkv[qkvIndex(b, j, 2, h, d, T, C, HS)];
          dP[j] = s;
          dot += P[base + j] * s;
        }
        for (let j = 0; j <= t; j++) dS[j] = P[base + j] * (dP[j] - dot) * scale;
        for (let j = 0; j <= t; j++) {
          for (let d = 0; d < HS; d++) {
            dqkv[qkvIndex(b, t, 0, h, d, T, C, HS)] += dS[j] * qkv[qkvIndex(b, j, 1, h, d, T, C, HS)];
            dqkv[qkvIndex(b, j, 1, h, d, T, C, HS)] += dS[j] * qkv[qkvIndex(b, t, 0, h, d, T, C, HS)];
            dqkv[qkvIndex(b, j, 2, h, d, T, C, HS)] += P[base + j] * dout[(b * T + t) * C + h * HS + d];
          }
        }
      }
    }
  }
  return dqkv;
}

/** out[b, t, :] = wte[tokens[b, t], :] + wpe[t, :]. */
export function embeddingForward(
  tokens: ArrayLike<number>,
  wte: ArrayLike<number>,
  wpe: ArrayLike<number>,
  B: number,
  T: number,
  C: number,
): Float64Array {
  const out = new Float64Array(B * T * C);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const tok = tokens[b * T + t];
      for (let c = 0; c < C; c++) out[(b * T + t) * C + c] = wte[tok * C + c] + wpe[t * C + c];
    }
  }
  return out;
}

/** dwte [V, C] and dwpe [T, C] of embeddingForward given dout [B, T, C]. */
export function embeddingBackward(
  dout: ArrayLike<number>,
  tokens: ArrayLike<number>,
  B: number,
  T: number,
  C: number,
  V: number,
): { dwte: Float64Array; dwpe: Float64Array } {
  const dwte = new Float64Array(V * C);
  const dwpe = new Float64Array(T * C);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const tok = tokens[b * T + t];
      for (let c = 0; c < C; c++) {
        dwte[tok * C + c] += dout[(b * T + t) * C + c];
        dwpe[t * C + c] += dout[(b * T + t) * C + c];
      }
    }
  }
  return { dwte, dwpe };
}
