// add.wgsl: the residual add and the gradient copy (assign and accumulate).
import { describe, it, expect } from 'vitest';
import { testRuntime, upload, zeros, runRecorded, read, randn, expectClose, Recorder } from '../helpers.ts';
import { recordAdd, recordCopyGrad } from '../../src/ops/add.ts';

const rt = await testRuntime();

// n = 1, odd, just past a 256-thread workgroup, and a larger case.
const SIZES = [1, 7, 257, 1000, 70001];

describe.skipIf(!rt)('add kernel', () => {
  for (const n of SIZES) {
    it(`out = x + y, n = ${n} (the element past n untouched)`, async () => {
      const x = randn(n, n);
      const y = randn(n, n + 1);
      const rec = new Recorder(rt!);
      const out = upload(rt!, new Float32Array(n + 1).fill(9));
      await recordAdd(rec, 'add', { x: upload(rt!, x), y: upload(rt!, y), out, n });
      await runRecorded(rt!, rec);
      // One f32 addition: correctly rounded, so exact against Math.fround.
      const want = [...Array.from(x, (v, i) => Math.fround(v + y[i])), 9];
      expectClose(await read(rt!, out), want, { atol: 0, rtol: 0 }, 'out');
    });

    it(`copy grad, assign then accumulate, n = ${n}`, async () => {
      const src = randn(n, n + 2);
      const src2 = randn(n, n + 3);
      const rec = new Recorder(rt!);
      const dst = upload(rt!, new Float32Array(n + 1).fill(5));
      await recordCopyGrad(rec, 'copy', { src: upload(rt!, src), dst, n, accumulate: false });
      await recordCopyGrad(rec, 'acc', { src: upload(rt!, src2), dst, n, accumulate: true });
      await runRecorded(rt!, rec);
      const want = [...Array.from(src, (v, i) => Math.fround(v + src2[i])), 5];
      expectClose(await read(rt!, dst), want, { atol: 0, rtol: 0 }, 'dst');
    });
  }

  it('refuses an output in the same buffer as an input', async () => {
    const rec = new Recorder(rt!);
    const x = zeros(rt!, 4);
    expect(() => recordAdd(rec, 'bad add', { x, y: zeros(rt!, 4), out: x, n: 4 })).toThrow(/shares a buffer/);
    expect(() => recordCopyGrad(rec, 'bad copy', { src: x, dst: x, n: 4, accumulate: true })).toThrow(/shares a buffer/);
  });
});
