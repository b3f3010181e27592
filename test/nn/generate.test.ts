// Generation with the key/value cache: the logits of each decoded position equal those of a full forward
// pass over the whole sequence (the cache is a faithful shortcut), and sampling obeys temperature and top-k.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { testRuntime, relL2 } from '../helpers.ts';
import { GPT, Trainer, type GPTConfig } from '../../src/index.ts';
import { Generator, sample } from '../../src/nn/generate.ts';
import { parseSafetensors } from '../../src/io/safetensors.ts';
import { prng } from '../../src/train/random.ts';

const rt = await testRuntime();

describe.skipIf(!rt)('KV-cache decoding', () => {
  it('each position matches the full forward pass (awkward config: HS 10, V 67)', async () => {
    const dir = new URL('../fixtures/gpt2/awkward/', import.meta.url);
    const cfg = JSON.parse(readFileSync(new URL('config.json', dir)).toString()) as GPTConfig;
    // The trained weights: biases and LayerNorm gains are no longer trivial.
    const f = parseSafetensors(new Uint8Array(readFileSync(new URL('final.safetensors', dir))));
    const T = 11;
    const t = await Trainer.create(rt!, new GPT(cfg), { inputShape: [T], loss: 'cross-entropy', batchSize: 1, optimizer: { type: 'sgd', lr: 0 } });
    t.writeParams(new Map(f.names.map((n) => [n.replace(/^transformer\./, ''), f.tensorF32(n)])));
    const tokens = Int32Array.from({ length: T }, (_, i) => (i * 37 + 5) % cfg.vocab_size);
    const full = await t.predict(tokens);
    const gen = await Generator.create(rt!, cfg, t.store);
    try {
      const V = cfg.vocab_size;
      for (let pos = 0; pos < T; pos++) {
        const logits = await gen.next(tokens[pos]);
        expect(relL2(logits, full.subarray(pos * V, (pos + 1) * V)), `position ${pos}`).toBeLessThan(1e-5);
      }
      await expect(gen.next(V)).rejects.toThrow(/token id 67 is out of range \[0, 67\)/);
      // Greedy generation is deterministic and continues from the prompt.
      const a = await gen.generate(tokens.subarray(0, 4), { maxNewTokens: 5, temperature: 0 });
      const b = await gen.generate(tokens.subarray(0, 4), { maxNewTokens: 5, temperature: 0 });
      expect(a).toEqual(b);
      expect(a.length).toBe(5);
      const s1 = await gen.generate(tokens.subarray(0, 2), { maxNewTokens: 6, temperature: 1, topK: 5, seed: 7 });
      const s2 = await gen.generate(tokens.subarray(0, 2), { maxNewTokens: 6, temperature: 1, topK: 5, seed: 7 });
      expect(s1).toEqual(s2);
    } finally {
      gen.destroy();
      t.destroy();
    }
  });
});

describe('sampling', () => {
  const logits = new Float32Array([0.1, 3, 2.9, -1, 0.5]);
  it('temperature 0 is argmax; top-k keeps only the k best', () => {
    expect(sample(logits, 0, 0, prng(1))).toBe(1);
    const r = prng(2);
    const seen = new Set<number>();
    for (let i = 0; i < 300; i++) seen.add(sample(logits, 1, 2, r));
    expect([...seen].sort()).toEqual([1, 2]);
  });
  it('frequencies follow softmax(logits / temperature)', () => {
    const r = prng(3);
    const counts = [0, 0, 0, 0, 0];
    const n = 20000;
    for (let i = 0; i < n; i++) counts[sample(logits, 2, 0, r)]++;
    const w = Array.from(logits, (l) => Math.exp(l / 2));
    const z = w.reduce((a, b) => a + b, 0);
    counts.forEach((c, i) => expect(Math.abs(c / n - w[i] / z)).toBeLessThan(0.015));
  });
});
