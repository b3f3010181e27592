// LoRA: the adapted model equals the base model with merged weights W + (alpha/r)·A·B (forward), its adapter
// gradients are the chain rule through that merge (dA = s·dW'·Bᵀ, dB = s·Aᵀ·dW'), only adapters train, and
// fine-tuning a pre-trained model on new text lowers the held-out loss there; the merged export gives the
// same logits as adapter + base.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { testRuntime, relL2, randn } from '../helpers.ts';
import { GPT, Trainer, Generator, mergeLora, type GPTConfig, type LoraOptions } from '../../src/index.ts';
import { parseSafetensors } from '../../src/io/safetensors.ts';
import { byteTokenizer } from '../../src/data/tokenizer.ts';
import { TokenLoader } from '../../src/data/loader.ts';

const rt = await testRuntime();

function fixtureWeights(name: string) {
  const f = parseSafetensors(new Uint8Array(readFileSync(new URL(`../fixtures/gpt2/${name}/final.safetensors`, import.meta.url))));
  return new Map(f.names.map((n) => [n.replace(/^transformer\./, ''), f.tensorF32(n)]));
}

describe.skipIf(!rt)('LoRA', () => {
  it('forward equals the merged model; adapter gradients follow the chain rule; base weights stay frozen', async () => {
    const cfg = JSON.parse(readFileSync(new URL('../fixtures/gpt2/awkward/config.json', import.meta.url)).toString()) as GPTConfig;
    const lora: LoraOptions = { rank: 3, alpha: 6, targets: ['c_attn', 'c_proj', 'c_fc'] };
    const s = lora.alpha / lora.rank;
    const [B, T] = [2, 7];
    const opts = { inputShape: [T], loss: 'cross-entropy' as const, batchSize: B, optimizer: { type: 'adamw' as const, lr: 1e-2, weightDecay: 0.1 } };
    const base = fixtureWeights('awkward');
    const adapted = await Trainer.create(rt!, new GPT(cfg, lora), { ...opts, trainOnly: ['*.lora_A', '*.lora_B'] });
    const plain = await Trainer.create(rt!, new GPT(cfg), opts);
    try {
      adapted.writeParams(base);
      // Non-zero B so that every adapter term matters.
      const all = await adapted.readParams();
      const withB = new Map([...all].map(([n, v]) => [n, n.endsWith('.lora_B') ? randn(v.length, v.length + 1, 0.05) : v]));
      adapted.writeParams(withB);
      const merged = mergeLora(withB, lora);
      plain.writeParams(merged);
      const x = Int32Array.from({ length: B * T }, (_, i) => (i * 13 + 1) % cfg.vocab_size);
      const y = Int32Array.from({ length: B * T }, (_, i) => (i * 7 + 3) % cfg.vocab_size);
      expect(relL2(await adapted.predict(x), await plain.predict(x))).toBeLessThan(1e-5);

      const la = await adapted.step({ x, y }, { readLoss: true });
      const lp = await plain.step({ x, y }, { readLoss: true });
      expect(Math.abs(la - lp)).toBeLessThan(1e-5);
      const ga = await adapted.readGrads();
      const gp = await plain.readGrads();
      let checked = 0;
      for (const [name, A] of withB) {
        if (!name.endsWith('.lora_A')) continue;
        const layer = name.slice(0, -7);
        const Bm = withB.get(`${layer}.lora_B`)!;
        const dW = gp.get(`${layer}.weight`)!;
        const r = lora.rank;
        const inF = A.length / r;
        const outF = Bm.length / r;
        const dA = new Float64Array(inF * r);
        const dB = new Float64Array(r * outF);
        for (let i = 0; i < inF; i++)
          for (let k = 0; k < r; k++)
            for (let j = 0; j < outF; j++) {
              dA[i * r + k] += s * dW[i * outF + j] * Bm[k * outF + j];
              dB[k * outF + j] += s * A[i * r + k] * dW[i * outF + j];
            }
        expect(relL2(ga.get(`${layer}.lora_A`)!, dA), `${layer}.lora_A`).toBeLessThan(1e-4);
        expect(relL2(ga.get(`${layer}.lora_B`)!, dB), `${layer}.lora_B`).toBeLessThan(1e-4);
        checked++;
      }
      expect(checked).toBe(cfg.n_layer * 4);
      // Only the adapters moved.
      const after = await adapted.readParams();
      for (const [n, v] of withB) {
        const moved = relL2(after.get(n)!, v) > 0;
        expect(moved, n).toBe(/\.lora_[AB]$/.test(n));
      }
      expect(adapted.isTrained('h.0.attn.c_attn.weight')).toBe(false);
      expect(adapted.isTrained('h.0.attn.c_attn.lora_A')).toBe(true);
    } finally {
      adapted.destroy();
      plain.destroy();
    }
  });

  it('fine-tuning a pre-trained model lowers held-out loss on new text; the merged export matches', async () => {
    const tok = byteTokenizer();
    const cfg: GPTConfig = { vocab_size: 256, n_positions: 32, n_embd: 32, n_layer: 2, n_head: 2, layer_norm_epsilon: 1e-5 };
    const [B, T] = [4, 16];
    const base = 'the quick brown fox jumps over the lazy dog while the cat sleeps. ';
    const fresh = 'she sells sea shells by the sea shore and the shells she sells are surely sea shells. ';
    const opts = { inputShape: [T], loss: 'cross-entropy' as const, batchSize: B, seed: 1 };
    // 1. "Pre-train" on the base text.
    const pre = await Trainer.create(rt!, new GPT(cfg), { ...opts, optimizer: { type: 'adamw', lr: 3e-3 } });
    const baseLoader = new TokenLoader(tok.encode(base.repeat(20)), { batchSize: B, seqLen: T, seed: 1 });
    for (let i = 0; i < 60; i++) {
      const b = baseLoader.next();
      await pre.step({ x: b.inputs, y: b.targets });
    }
    const pretrained = await pre.readParams();
    pre.destroy();
    // 2. LoRA on the new text; held-out = a different stretch of it.
    const lora: LoraOptions = { rank: 4, alpha: 8, targets: ['c_attn', 'c_fc'] };
    const ft = await Trainer.create(rt!, new GPT(cfg, lora), { ...opts, optimizer: { type: 'adamw', lr: 1e-2 }, trainOnly: ['*.lora_A', '*.lora_B'] });
    ft.writeParams(pretrained);
    const freshTokens = tok.encode(fresh.repeat(12));
    const train = freshTokens.subarray(0, 700);
    const held = freshTokens.subarray(700);
    const heldLoader = new TokenLoader(held, { batchSize: B, seqLen: T, shuffle: false });
    const heldBatch = heldLoader.next();
    const heldLoss = async () => (await ft.evaluate({ x: heldBatch.inputs, y: heldBatch.targets })).loss;
    const before = await heldLoss();
    const loader = new TokenLoader(train, { batchSize: B, seqLen: T, seed: 2 });
    for (let i = 0; i < 40; i++) {
      const b = loader.next();
      await ft.step({ x: b.inputs, y: b.targets });
    }
    const after = await heldLoss();
    expect(after).toBeLessThan(before * 0.8);
    // 3. Merged export: same logits as adapter + base.
    const params = await ft.readParams();
    const merged = mergeLora(params, lora);
    expect([...merged.keys()].some((n) => n.includes('lora'))).toBe(false);
    const plain = await Trainer.create(rt!, new GPT(cfg), { ...opts, optimizer: { type: 'sgd', lr: 0 } });
    plain.writeParams(merged);
    expect(relL2(await plain.predict(heldBatch.inputs), await ft.predict(heldBatch.inputs))).toBeLessThan(1e-5);
    // Generation with the adapters (KV-cache path) equals generation from the merged weights.
    const genLora = await Generator.create(rt!, cfg, ft.store, lora);
    const genMerged = await Generator.create(rt!, cfg, plain.store);
    for (const token of heldBatch.inputs.subarray(0, 6)) {
      expect(relL2(await genLora.next(token), await genMerged.next(token))).toBeLessThan(1e-5);
    }
    genLora.destroy();
    genMerged.destroy();
    plain.destroy();
    ft.destroy();
  });
});
