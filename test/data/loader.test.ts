// TokenLoader: llm.c's sequential DataLoader exactly (including wrap-around), seeded shuffled epochs that
// visit every window once, determinism, bit-identical resume from JSON state, and errors.
import { describe, it, expect } from 'vitest';
import { TokenLoader, LoaderError, type LoaderOptions, type TokenBatch } from '../../src/data/loader.ts';
import { SeededRandom } from '../../src/data/rng.ts';
import { prng, shuffled } from '../../src/train/random.ts';

const iota = (n: number) => Int32Array.from({ length: n }, (_, i) => i);

/** llm.c's single-file DataLoader (train_gpt2.c): wrap when the next B·T+1 tokens would pass the end. */
function llmcBatches(tokens: ArrayLike<number>, B: number, T: number, steps: number): TokenBatch[] {
  const out: TokenBatch[] = [];
  let pos = 0;
  for (let s = 0; s < steps; s++) {
    if (pos + B * T + 1 > tokens.length) pos = 0;
    const inputs = new Int32Array(B * T);
    const targets = new Int32Array(B * T);
    for (let i = 0; i < B * T; i++) {
      inputs[i] = tokens[pos + i];
      targets[i] = tokens[pos + i + 1];
    }
    out.push({ inputs, targets });
    pos += B * T;
  }
  return out;
}

const take = (l: TokenLoader, k: number) => Array.from({ length: k }, () => l.next());
const starts = (bs: TokenBatch[]) => bs.map((b) => b.inputs[0]); // with iota data, a batch's first input is its position

describe('TokenLoader, shuffle: false (llm.c semantics)', () => {
  it('serves consecutive B·T+1 windows at stride B·T and wraps to 0', () => {
    const l = new TokenLoader(iota(23), { batchSize: 2, seqLen: 3, shuffle: false });
    expect(l.windows).toBe(3); // ⌊22 / 6⌋
    const b = take(l, 4);
    expect(Array.from(b[0].inputs)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(Array.from(b[0].targets)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(Array.from(b[1].inputs)).toEqual([6, 7, 8, 9, 10, 11]);
    expect(Array.from(b[1].targets)).toEqual([7, 8, 9, 10, 11, 12]);
    expect(Array.from(b[2].inputs)).toEqual([12, 13, 14, 15, 16, 17]);
    expect(Array.from(b[2].targets)).toEqual([13, 14, 15, 16, 17, 18]);
    // position 18: 18 + 7 > 23, so back to 0
    expect(Array.from(b[3].inputs)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(l.epoch).toBe(1);
  });

  it('uses the last window when it ends exactly at the last token', () => {
    const l = new TokenLoader(iota(19), { batchSize: 2, seqLen: 3, shuffle: false });
    expect(l.windows).toBe(3);
    expect(starts(take(l, 4))).toEqual([0, 6, 12, 0]);
    const m = new TokenLoader(iota(18), { batchSize: 2, seqLen: 3, shuffle: false });
    expect(starts(take(m, 3))).toEqual([0, 6, 0]);
  });

  it('matches a reference llm.c loop over many sizes', () => {
    for (const [n, B, T] of [[7, 2, 3], [8, 1, 1], [100, 4, 8], [101, 4, 8], [97, 3, 5], [1000, 2, 16]]) {
      const tokens = Int32Array.from({ length: n }, (_, i) => (i * 37 + 11) % 50257);
      const l = new TokenLoader(tokens, { batchSize: B, seqLen: T, shuffle: false });
      const got = take(l, 40);
      const want = llmcBatches(tokens, B, T, 40);
      for (let s = 0; s < 40; s++) {
        expect(got[s].inputs).toEqual(want[s].inputs);
        expect(got[s].targets).toEqual(want[s].targets);
      }
    }
  });

  it('reads Uint16Array token files and returns Int32Array batches', () => {
    const l = new TokenLoader(Uint16Array.from([65535, 1, 2, 3]), { batchSize: 1, seqLen: 3, shuffle: false });
    const b = l.next();
    expect(b.inputs).toBeInstanceOf(Int32Array);
    expect(Array.from(b.inputs)).toEqual([65535, 1, 2]);
    expect(Array.from(b.targets)).toEqual([1, 2, 3]);
  });
});

describe('TokenLoader, shuffled (default)', () => {
  const opts: LoaderOptions = { batchSize: 2, seqLen: 4, seed: 7 };
  const tokens = iota(10 * 8 + 1); // exactly 10 windows

  it('visits every window exactly once per epoch, in a new order each epoch', () => {
    const l = new TokenLoader(tokens, opts);
    expect(l.windows).toBe(10);
    const orders: number[][] = [];
    for (let e = 0; e < 4; e++) {
      expect(l.epoch).toBe(e);
      const epoch = take(l, 10);
      for (const b of epoch) {
        // each batch is still one contiguous window: targets are inputs shifted by one
        for (let i = 0; i < 8; i++) {
          expect(b.inputs[i]).toBe(b.inputs[0] + i);
          expect(b.targets[i]).toBe(b.inputs[i] + 1);
        }
      }
      const s = starts(epoch);
      expect([...s].sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, i) => i * 8));
      orders.push(s);
    }
    expect(l.epoch).toBe(4);
    expect(new Set(orders.map((o) => o.join())).size).toBe(4);
  });

  it('draws each epoch’s order by Fisher–Yates from one mulberry32 stream seeded with `seed`', () => {
    const l = new TokenLoader(tokens, opts);
    const random = prng(7);
    for (let e = 0; e < 3; e++) {
      const want = Array.from(shuffled(10, random), (w) => w * 8);
      expect(starts(take(l, 10))).toEqual(want);
    }
  });

  it('is deterministic by seed', () => {
    const a = starts(take(new TokenLoader(tokens, opts), 30));
    const b = starts(take(new TokenLoader(tokens, opts), 30));
    const c = starts(take(new TokenLoader(tokens, { ...opts, seed: 8 }), 30));
    expect(a).toEqual(b);
    expect(c).not.toEqual(a);
    expect(starts(take(new TokenLoader(tokens, { batchSize: 2, seqLen: 4 }), 10))).toEqual(
      starts(take(new TokenLoader(tokens, { batchSize: 2, seqLen: 4, seed: 0 }), 10)),
    );
  });

  it('drops the tail that does not fill a window, as llm.c does', () => {
    const l = new TokenLoader(iota(10 * 8 + 8), opts); // 8 extra tokens: not enough for an 11th window
    expect(l.windows).toBe(10);
    expect(Math.max(...starts(take(l, 10)))).toBe(72);
  });
});

describe('TokenLoader resume', () => {
  const tokens = Int32Array.from({ length: 7 * 12 + 5 }, (_, i) => (i * 7919) % 50257); // 7 windows
  for (const shuffle of [true, false]) {
    it(`continues bit-identically after state() → JSON → restore (shuffle: ${shuffle})`, () => {
      const opts: LoaderOptions = { batchSize: 3, seqLen: 4, seed: 123, shuffle };
      const straight = take(new TokenLoader(tokens, opts), 10);

      const first = new TokenLoader(tokens, opts);
      const a = take(first, 5);
      const saved = JSON.stringify(first.state());
      const resumed = TokenLoader.restore(tokens, opts, JSON.parse(saved));
      const b = take(resumed, 5);
      expect([...a, ...b]).toEqual(straight);

      // and from every step, across epoch boundaries (7 windows per epoch)
      for (let k = 0; k <= 20; k++) {
        const l = new TokenLoader(tokens, opts);
        const head = take(l, k);
        const r = TokenLoader.restore(tokens, opts, JSON.parse(JSON.stringify(l.state())));
        expect(r.epoch).toBe(l.epoch);
        expect(r.position).toBe(l.position);
        const tail = take(r, 24 - k);
        expect([...head, ...tail]).toEqual(take(new TokenLoader(tokens, opts), 24));
      }
    });
  }

  it('state is plain JSON data', () => {
    const l = new TokenLoader(tokens, { batchSize: 3, seqLen: 4, seed: 5 });
    take(l, 9);
    const s = l.state();
    expect(JSON.parse(JSON.stringify(s))).toEqual(s);
    expect(s).toMatchObject({ epoch: 1, index: 2, tokens: tokens.length, batchSize: 3, seqLen: 4, shuffle: true, seed: 5 });
  });

  it('refuses a state taken with other data or options', () => {
    const opts: LoaderOptions = { batchSize: 3, seqLen: 4, seed: 1 };
    const s = new TokenLoader(tokens, opts).state();
    expect(() => TokenLoader.restore(tokens.subarray(1), opts, s)).toThrow(/taken with tokens 89, but the loader has 88/);
    expect(() => TokenLoader.restore(tokens, { ...opts, seed: 2 }, s)).toThrow(/taken with seed 1, but the loader has 2/);
    expect(() => TokenLoader.restore(tokens, { ...opts, shuffle: false }, s)).toThrow(/shuffle true/);
    expect(() => TokenLoader.restore(tokens, opts, { ...s, index: 7 })).toThrow(/index 7 is outside \[0, 7\)/);
    expect(() => TokenLoader.restore(tokens, opts, { ...s, rng: -1 })).toThrow(/uint32/);
  });
});

describe('TokenLoader errors', () => {
  it('says how many tokens a batch needs', () => {
    expect(() => new TokenLoader(iota(6), { batchSize: 2, seqLen: 3 })).toThrow(LoaderError);
    expect(() => new TokenLoader(iota(6), { batchSize: 2, seqLen: 3 })).toThrow(
      /6 tokens are too few for batchSize 2 × seqLen 3: one batch needs B·T\+1 = 7 tokens/,
    );
    expect(() => new TokenLoader(iota(7), { batchSize: 2, seqLen: 3 })).not.toThrow();
  });
  it('rejects bad sizes and seeds', () => {
    expect(() => new TokenLoader(iota(100), { batchSize: 0, seqLen: 3 })).toThrow(/batchSize must be a positive integer, got 0/);
    expect(() => new TokenLoader(iota(100), { batchSize: 2, seqLen: 1.5 })).toThrow(/seqLen must be a positive integer, got 1\.5/);
    expect(() => new TokenLoader(iota(100), { batchSize: 2, seqLen: 3, seed: 0.5 })).toThrow(/seed must be an integer/);
  });
});

describe('SeededRandom', () => {
  it('draws the same stream as prng(seed) and can be saved and restored mid-stream', () => {
    for (const seed of [0, 1, 42, 0xffffffff, -5]) {
      const ref = prng(seed);
      const r = new SeededRandom(seed);
      for (let i = 0; i < 100; i++) expect(r.next()).toBe(ref());
      const copy = new SeededRandom(0);
      copy.state = r.state;
      expect(SeededRandom.advance(seed >>> 0, 100)).toBe(r.state);
      for (let i = 0; i < 10; i++) expect(copy.next()).toBe(ref());
    }
  });
});
