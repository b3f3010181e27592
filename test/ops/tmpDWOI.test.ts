import { it } from 'vitest';
import { testRuntime, zeros, runRecorded, Recorder } from '../helpers.ts';
import { recordAttentionForward, recordAttentionBackward } from '../../src/ops/attention.ts';
const rt = await testRuntime();
it('compile times', async () => {
  for (const [C, NH] of [[60, 3], [36, 3], [128, 2]]) {
    const v = zeros(rt!, 3 * C * 4);
    let rec = new Recorder(rt!);
    let t = performance.now();
    await recordAttentionForward(rec, 'f', { qkv: v, out: zeros(rt!, 3 * C * 4), lse: zeros(rt!, 16), B: 1, T: 2, C, NH });
    await runRecorded(rt!, rec);
    console.log(C / NH, 'forward', (performance.now() - t).toFixed(0), 'ms');
    for (const acc of [false]) {
      rec = new Recorder(rt!);
      t = performance.now();
      await recordAttentionBackward(rec, 'b', { dout: zeros(rt!, 3 * C * 4), qkv: v, out: zeros(rt!, 3 * C * 4), lse: zeros(rt!, 16), dqkv: zeros(rt!, 3 * C * 4), scratch: zeros(rt!, 16), B: 1, T: 2, C, NH, accumulate: acc });
      rec.commands.pop();
      await runRecorded(rt!, rec);
      console.log(C / NH, 'dq', (performance.now() - t).toFixed(0), 'ms');
      rec = new Recorder(rt!);
      t = performance.now();
      await recordAttentionBackward(rec, 'b', { dout: zeros(rt!, 3 * C * 4), qkv: v, out: zeros(rt!, 3 * C * 4), lse: zeros(rt!, 16), dqkv: zeros(rt!, 3 * C * 4), scratch: zeros(rt!, 16), B: 1, T: 2, C, NH, accumulate: acc });
      rec.commands.shift();
      await runRecorded(rt!, rec);
      console.log(C / NH, 'dkdv', (performance.now() - t).toFixed(0), 'ms');
    }
  }
});
