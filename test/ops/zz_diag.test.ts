import { it } from 'vitest';
import { testRuntime, upload, zeros, runRecorded, read, Recorder } from '../helpers.ts';
import { recordActivationForward, recordActivationBackward } from '../../src/ops/activation.ts';
import * as ref from '../../src/reference/ops.ts';
const rt = (await testRuntime())!;
it('diag', async () => {
  const xs: number[] = [];
  for (let v = -9; v <= 3; v += 0.25) xs.push(v);
  const x = new Float32Array(xs);
  const rec = new Recorder(rt);
  const y = zeros(rt, x.length), dx = zeros(rt, x.length), t = zeros(rt, x.length);
  await recordActivationForward(rec, 'f', 'gelu', upload(rt, x), y, x.length);
  await recordActivationBackward(rec, 'b', 'gelu', upload(rt, new Float32Array(x.length).fill(1)), upload(rt, x), dx, x.length, false);
  await recordActivationForward(rec, 't', 'tanh', upload(rt, x), t, x.length);
  await runRecorded(rt, rec);
  const Y = await read(rt, y), DX = await read(rt, dx), T = await read(rt, t);
  const fr = Math.fround;
  for (let i = 0; i < x.length; i++) {
    const s = x[i];
    const z = fr(0.7978845608028654 * fr(s + fr(0.044715 * s * s * s)));
    const tt = fr(Math.tanh(Math.max(-10, Math.min(10, z))));
    const emu = fr(0.5 * (1 + tt)) + fr(0.5 * s * fr(1 - tt * tt) * 0.7978845608028654 * (1 + 3 * 0.044715 * s * s));
    console.log(s.toFixed(2), 'y', Y[i], ref.actForward('gelu', s).toExponential(4), 'dx', DX[i].toExponential(4), ref.actDerivative('gelu', s).toExponential(4), 'emu', emu.toExponential(4), 'tanh err', (T[i] - Math.tanh(s)).toExponential(2));
  }
});
