// embedding.wgsl (token + position embedding) and the host bucketing (embeddingBuckets) against
// src/reference/transformer.ts; the backward's bucket-count scheme with stale buffers; determinism.
import { describe, it, expect } from 'vitest';
import { testRuntime, upload, zeros, runRecorded, read, randn, prng, expectClose, Recorder } from '../helpers.ts';
import {
  recordEmbeddingForward,
  recordEmbeddingBackward,
  embeddingBuckets,
  embeddingBucketElements,
} from '../../src/ops/embedding.ts';
import * as ref from '../../src/reference/transformer.ts';
import { createStorage, writeArray, type View } from '../../src/gpu/buffers.ts';
import type { Runtime } from '../../src/gpu/device.ts';

const rt = await testRuntime();

/** Tokens drawn from the first `distinct` ids of V (repeats when distinct < B·T), both ends of V used. */
function tokensFor(N: number, V: number, seed: number, distinct = V): Int32Array {
  const r = prng(seed);
  const t = new Int32Array(N);
  for (let i = 0; i < N; i++) t[i] = Math.min(distinct - 1, Math.floor(r() * distinct));
  if (N > 2) (t[0] = V - 1), (t[N - 1] = 0);
  return t;
}

function intBuffer(rt: Runtime, n: number, label: string): View {
  return { buffer: createStorage(rt.device, n * 4, label), offset: 0, size: Math.max(4, n * 4) };
}

describe('embeddingBuckets', () => {
  it('groups positions by token: ids ascending, positions ascending, sentinel-padded offsets', () => {
    const b = embeddingBuckets(new Int32Array([5, 2, 5, 0, 2, 5]), 7);
    expect([...b.ids]).toEqual([0, 2, 5]);
    expect([...b.offsets]).toEqual([0, 1, 3, 6, 6, 6, 6]);
    expect([...b.positions]).toEqual([3, 1, 4, 0, 2, 5]);
    expect(b.offsets.length).toBe(embeddingBucketElements(2, 3));
  });

  it('one token everywhere, and every token distinct', () => {
    const one = embeddingBuckets(new Int32Array(4).fill(3), 4);
    expect([...one.ids]).toEqual([3]);
    expect([...one.offsets]).toEqual([0, 4, 4, 4, 4]);
    expect([...one.positions]).toEqual([0, 1, 2, 3]);
    const all = embeddingBuckets(new Int32Array([2, 0, 1]), 3);
    expect([...all.ids]).toEqual([0, 1, 2]);
    expect([...all.offsets]).toEqual([0, 1, 2, 3]);
    expect([...all.positions]).toEqual([1, 2, 0]);
  });

  it('rejects tokens outside 0…V−1', () => {
    expect(() => embeddingBuckets(new Int32Array([0, 3]), 3)).toThrow(/token 3 at position 1/);
    expect(() => embeddingBuckets(new Int32Array([-1]), 3)).toThrow(/token -1/);
  });
});

interface Case {
  B: number;
  T: number;
  C: number;
  V: number;
  maxT: number;
  distinct: number;
}

// T = 1, C = 1, C not a multiple of 4 or of the 64-thread row loop (65, 96 + odd), heavy repeats
// (distinct ≪ B·T), all-distinct-ish, wpe with more rows than T; the last is the larger case.
const CASES: Case[] = [
  { B: 1, T: 1, C: 1, V: 1, maxT: 1, distinct: 1 },
  { B: 2, T: 3, C: 5, V: 7, maxT: 4, distinct: 7 },
  { B: 3, T: 1, C: 13, V: 11, maxT: 2, distinct: 2 },
  { B: 3, T: 17, C: 65, V: 300, maxT: 20, distinct: 300 },
  { B: 4, T: 16, C: 30, V: 50, maxT: 16, distinct: 3 },
  { B: 8, T: 96, C: 96, V: 300, maxT: 128, distinct: 40 },
];

describe.skipIf(!rt)('embedding forward', () => {
  for (const { B, T, C, V, maxT, distinct } of CASES) {
    it(`B=${B}, T=${T}, C=${C}, V=${V}, maxT=${maxT}`, async () => {
      const tokens = tokensFor(B * T, V, B * T + C, distinct);
      const wte = randn(V * C, V + C);
      const wpe = randn(maxT * C, maxT + C + 1);
      const rec = new Recorder(rt!);
      const out = zeros(rt!, B * T * C);
      await recordEmbeddingForward(rec, 'emb', { tokens: upload(rt!, tokens), wte: upload(rt!, wte), wpe: upload(rt!, wpe), out, B, T, C });
      await runRecorded(rt!, rec);
      // One f32 addition of two f32 values: the correctly rounded sum, so exact against fround.
      const want = ref.embeddingForward(tokens, wte, wpe, B, T, C).map(Math.fround);
      expectClose(await read(rt!, out), want, { atol: 0, rtol: 0 }, 'out');
    });
  }
});

async function backward(rt: Runtime, c: Case, dout: Float32Array, tokens: Int32Array, dwte0: Float32Array, dwpe0: Float32Array) {
  const { B, T, C } = c;
  const n = embeddingBucketElements(B, T);
  const bk = embeddingBuckets(tokens, c.V);
  const offsets = intBuffer(rt, n, 'offsets');
  const ids = intBuffer(rt, n, 'ids');
  const positions = intBuffer(rt, n, 'positions');
  writeArray(rt.device, offsets.buffer, 0, bk.offsets);
  if (bk.ids.length) writeArray(rt.device, ids.buffer, 0, bk.ids);
  writeArray(rt.device, positions.buffer, 0, bk.positions);
  const dwte = upload(rt, dwte0);
  const dwpe = upload(rt, dwpe0);
  const rec = new Recorder(rt);
  await recordEmbeddingBackward(rec, 'emb back', { dout: upload(rt, dout), offsets, ids, positions, dwte, dwpe, B, T, C });
  await runRecorded(rt, rec);
  return { dwte: await read(rt, dwte), dwpe: await read(rt, dwpe) };
}

describe.skipIf(!rt)('embedding backward', () => {
  for (const c of CASES) {
    const { B, T, C, V, maxT, distinct } = c;
    it(`B=${B}, T=${T}, C=${C}, V=${V}, maxT=${maxT}, ${distinct} distinct tokens: accumulates into dwte and dwpe`, async () => {
      const tokens = tokensFor(B * T, V, B * T + C + 1, distinct);
      const dout = randn(B * T * C, B + T + C);
      const dwte0 = randn(V * C, 3);
      const dwpe0 = randn(maxT * C, 4);
      const got = await backward(rt!, c, dout, tokens, dwte0, dwpe0);
      const want = ref.embeddingBackward(dout, tokens, B, T, C, V);
      // Sums of up to B·T unit-variance f32 terms in sequence: error ≲ k·eps·Σ|x|; rows of dwpe past T stay as they were.
      const tol = { atol: 1e-6 * B * T, rtol: 1e-6 };
      expectClose(got.dwte, want.dwte.map((v, i) => v + dwte0[i]), tol, 'dwte');
      const wantPe = Float64Array.from(dwpe0, (v, i) => v + (i < T * C ? want.dwpe[i] : 0));
      expectClose(got.dwpe, wantPe, tol, 'dwpe');
    });
  }

  it('one recorded program, two batches with fewer distinct tokens the second time (stale ids ignored), bitwise repeatable', async () => {
    const c: Case = { B: 3, T: 20, C: 37, V: 90, maxT: 20, distinct: 90 };
    const { B, T, C, V } = c;
    const n = embeddingBucketElements(B, T);
    const offsets = intBuffer(rt!, n, 'offsets');
    const ids = intBuffer(rt!, n, 'ids');
    const positions = intBuffer(rt!, n, 'positions');
    const dout = upload(rt!, new Float32Array(B * T * C));
    const dwte = zeros(rt!, V * C);
    const dwpe = zeros(rt!, T * C);
    const rec = new Recorder(rt!);
    await recordEmbeddingBackward(rec, 'emb back', { dout, offsets, ids, positions, dwte, dwpe, B, T, C });
    const step = async (tokens: Int32Array, g: Float32Array) => {
      const bk = embeddingBuckets(tokens, V);
      writeArray(rt!.device, offsets.buffer, 0, bk.offsets);
      writeArray(rt!.device, ids.buffer, 0, bk.ids); // only U entries: the rest keeps the previous batch's ids
      writeArray(rt!.device, positions.buffer, 0, bk.positions);
      writeArray(rt!.device, dout.buffer, 0, g);
      rt!.device.queue.writeBuffer(dwte.buffer, 0, new Float32Array(V * C));
      rt!.device.queue.writeBuffer(dwpe.buffer, 0, new Float32Array(T * C));
      await runRecorded(rt!, rec);
      return { dwte: await read(rt!, dwte), dwpe: await read(rt!, dwpe), U: bk.ids.length };
    };
    const t1 = tokensFor(B * T, V, 1, 90);
    const g1 = randn(B * T * C, 2);
    const t2 = tokensFor(B * T, V, 3, 4);
    const g2 = randn(B * T * C, 4);
    const a = await step(t1, g1);
    const b = await step(t2, g2);
    expect(b.U).toBeLessThan(a.U);
    const tol = { atol: 1e-6 * B * T, rtol: 1e-6 };
    const w1 = ref.embeddingBackward(g1, t1, B, T, C, V);
    const w2 = ref.embeddingBackward(g2, t2, B, T, C, V);
    expectClose(a.dwte, w1.dwte, tol, 'batch 1 dwte');
    expectClose(b.dwte, w2.dwte, tol, 'batch 2 dwte (fewer buckets than batch 1)');
    expectClose(b.dwpe, w2.dwpe, tol, 'batch 2 dwpe');
    const again = await step(t2, g2);
    expect(Buffer.from(again.dwte.buffer).equals(Buffer.from(b.dwte.buffer))).toBe(true);
    expect(Buffer.from(again.dwpe.buffer).equals(Buffer.from(b.dwpe.buffer))).toBe(true);
  });
});

describe('embedding reference', () => {
  it('backward matches central finite differences of Σ out·G', () => {
    const [B, T, C, V] = [2, 3, 2, 4];
    const tokens = new Int32Array([1, 3, 1, 0, 1, 2]);
    const wte = Float64Array.from(randn(V * C, 1));
    const wpe = Float64Array.from(randn(T * C, 2));
    const G = Float64Array.from(randn(B * T * C, 3));
    const loss = () => ref.embeddingForward(tokens, wte, wpe, B, T, C).reduce((s, v, i) => s + v * G[i], 0);
    const g = ref.embeddingBackward(G, tokens, B, T, C, V);
    const fd = (x: Float64Array, i: number) => {
      const x0 = x[i];
      x[i] = x0 + 1e-6;
      const lp = loss();
      x[i] = x0 - 1e-6;
      const lm = loss();
      x[i] = x0;
      return (lp - lm) / 2e-6;
    };
    // A linear function: central differences are exact up to rounding (~1e-10).
    expectClose(g.dwte, Array.from(wte, (_, i) => fd(wte, i)), { atol: 1e-8, rtol: 1e-8 }, 'dwte');
    expectClose(g.dwpe, Array.from(wpe, (_, i) => fd(wpe, i)), { atol: 1e-8, rtol: 1e-8 }, 'dwpe');
  });
});

describe('embeddingBucketsInto', () => {
  it('buckets a window of a larger batch into reused arrays, as embeddingBuckets does on that window', async () => {
    const { embeddingBuckets, embeddingBucketsInto, bucketArrays } = await import('../../src/ops/embedding.ts');
    const tokens = Int32Array.from([9, 2, 7, 2, 0, 7, 7, 3, 9, 1, 2]);
    const arrays = bucketArrays(10, 5);
    for (const start of [0, 3, 6]) {
      const want = embeddingBuckets(tokens.slice(start, start + 5), 10);
      const U = embeddingBucketsInto(tokens, start, 5, 10, arrays);
      expect(U).toBe(want.ids.length);
      expect([...arrays.ids.subarray(0, U)]).toEqual([...want.ids]);
      expect([...arrays.offsets]).toEqual([...want.offsets]);
      expect([...arrays.positions]).toEqual([...want.positions]);
    }
  });
});
