import { it } from 'vitest';
import { testRuntime, zeros, upload, randn, runRecorded, Recorder } from '../helpers.ts';
import { recordAttentionForward, recordAttentionBackward } from '../../src/ops/attention.ts';
import { recordLayerNormForward, recordLayerNormBackward } from '../../src/ops/layernorm.ts';
const rt = await testRuntime();
it('timing', async () => {
  const [B, T, C, NH] = [1, 1024, 768, 12];
  const qkv = upload(rt!, randn(B * T * 3 * C, 1));
  const out = zeros(rt!, B * T * C), lse = zeros(rt!, B * NH * T);
  const f = new Recorder(rt!);
  await recordAttentionForward(f, 'f', { qkv, out, lse, B, T, C, NH });
  const b = new Recorder(rt!);
  await recordAttentionBackward(b, 'b', { dout: upload(rt!, randn(B * T * C, 2)), qkv, out, lse, dqkv: zeros(rt!, B * T * 3 * C), scratch: zeros(rt!, B * NH * T), B, T, C, NH, accumulate: false });
  const ln = new Recorder(rt!);
  const R = B * T;
  const x = upload(rt!, randn(R * C, 3)), w = upload(rt!, randn(C, 4)), mean = zeros(rt!, R), rstd = zeros(rt!, R);
  await recordLayerNormForward(ln, 'ln', { inp: x, weight: w, bias: zeros(rt!, C), out: zeros(rt!, R * C), mean, rstd, R, C, eps: 1e-5 });
  await recordLayerNormBackward(ln, 'lnb', { dout: upload(rt!, randn(R * C, 5)), inp: x, weight: w, mean, rstd, dinp: zeros(rt!, R * C), dweight: zeros(rt!, C), dbias: zeros(rt!, C), R, C, accumulate: false });
  for (const [name, rec] of [['attn fwd', f], ['attn bwd', b], ['ln fwd+bwd', ln]] as const) {
    await runRecorded(rt!, rec);
    const t = performance.now();
    for (let i = 0; i < 3; i++) await runRecorded(rt!, rec);
    const ms = (performance.now() - t) / 3;
    const fl = rec.cost().flops;
    console.log(`${name}: ${ms.toFixed(1)} ms, ${(fl / ms / 1e6).toFixed(2)} GFLOP/s`);
  }
});
