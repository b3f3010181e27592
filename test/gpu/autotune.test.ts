// Matmul autotuning: the first recording of a shape class times every candidate and keeps the fastest; the
// choice persists in the store (a JSON file here) so that a second tuner times nothing; tuned matmuls are
// still correct.
import { describe, it, expect } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testRuntime, upload, zeros, runRecorded, read, randn, expectClose, Recorder } from '../helpers.ts';
import { enableAutotune, fileTuneStore, matmulCandidates, shapeClass } from '../../src/gpu/autotune.ts';
import { recordMatmul, setMatmulChooser } from '../../src/ops/matmul.ts';
import * as ref from '../../src/reference/ops.ts';

const rt = await testRuntime();

describe.skipIf(!rt)('matmul autotuning', () => {
  it('times the candidates once per shape class, persists the choice, and stays correct', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wgsl-train-tune-'));
    try {
      const path = join(dir, 'autotune.json');
      const tuner = await enableAutotune(rt!, { store: fileTuneStore(path), iterations: 1 });
      const [M, N, K] = [37, 70, 45];
      const A = randn(M * K, 1);
      const B = randn(K * N, 2);
      const C = zeros(rt!, M * N);
      const rec = new Recorder(rt!);
      await recordMatmul(rec, { label: 'tuned', A: upload(rt!, A), B: upload(rt!, B), C, M, N, K });
      // Same class (dimensions round to the same powers of two): no second timing.
      await recordMatmul(rec, { label: 'tuned again', A: upload(rt!, A), B: upload(rt!, B), C, M, N, K });
      expect(tuner.timed).toBe(1);
      await runRecorded(rt!, rec);
      expectClose(await read(rt!, C), ref.matmul(A, B, M, N, K), { atol: 2e-4, rtol: 1e-4 }, 'tuned matmul');

      const saved = JSON.parse(readFileSync(path, 'utf8'));
      const entry = Object.values(saved)[0] as { candidates: { name: string; ms: number }[] };
      expect(Object.keys(saved)[0]).toContain(shapeClass({ M, N, K }));
      expect(entry.candidates.map((c) => c.name).sort()).toEqual(matmulCandidates(rt!).map((c) => c.name).sort());
      expect(tuner.report()[0]).toMatch(/^nn 64x128x64: /);

      // A new tuner on the same store finds the choice and times nothing.
      const again = await enableAutotune(rt!, { store: fileTuneStore(path), iterations: 1 });
      await recordMatmul(new Recorder(rt!), { label: 'cached', A: upload(rt!, A), B: upload(rt!, B), C, M, N, K });
      expect(again.timed).toBe(0);
    } finally {
      setMatmulChooser(rt!, null);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
