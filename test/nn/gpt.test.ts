// GPT-2 against PyTorch: fixtures made by scripts/fixtures/make_gpt2_fixtures.py (a plain-PyTorch
// GPT2LMHeadModel) for three configs, including awkward ones (vocab not a multiple of 4, T not a multiple
// of any tile, head size not a power of two, a non-default LayerNorm eps). Tolerances, as the contract states:
// loss at step 0 within 1e-5 relative; every gradient within 1e-3 relative L2; each of the 10 AdamW losses
// (decay on rank ≥ 2, clipping at 1.0) within 2e-4 absolute; final weights within 1e-3 relative L2.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { testRuntime, relL2 } from '../helpers.ts';
import { GPT, Graph, Trainer, type GPTConfig } from '../../src/index.ts';
import { gpt2ParamShapes, parseGPT2Config } from '../../src/io/gpt2.ts';
import { parseSafetensors } from '../../src/io/safetensors.ts';

const rt = await testRuntime();
const fixture = (name: string, file: string) => readFileSync(new URL(`../fixtures/gpt2/${name}/${file}`, import.meta.url));
const weights = (name: string, file: string, prefix = 'transformer.') => {
  const f = parseSafetensors(new Uint8Array(fixture(name, file)));
  return new Map(f.names.filter((n) => n.startsWith(prefix)).map((n) => [n.slice(prefix.length), f.tensorF32(n)]));
};

for (const name of ['tiny', 'awkward', 'eps']) {
  describe.skipIf(!rt)(`GPT-2 parity with PyTorch: ${name}`, () => {
    it('logits, loss and gradients at step 0, ten AdamW steps, final weights', async () => {
      const cfg = JSON.parse(fixture(name, 'config.json').toString()) as GPTConfig;
      const batches = JSON.parse(fixture(name, 'batches.json').toString());
      const expected = JSON.parse(fixture(name, 'expected.json').toString());
      const { B, T } = batches;
      const o = expected.optimizer;
      const t = await Trainer.create(rt!, new GPT(cfg), {
        inputShape: [T], loss: 'cross-entropy', batchSize: B, decay: 'matrices', gradClip: o.grad_clip_max_norm,
        optimizer: { type: 'adamw', lr: o.lr, beta1: o.betas[0], beta2: o.betas[1], eps: o.eps, weightDecay: o.weight_decay },
      });
      try {
        t.writeParams(weights(name, 'model.safetensors'));
        const batch = (k: number) => ({ x: Int32Array.from(batches.inputs[k].flat()), y: Int32Array.from(batches.targets[k].flat()) });
        const step0 = parseSafetensors(new Uint8Array(fixture(name, 'step0.safetensors')));
        const logits = await t.predict(batch(0).x);
        expect(relL2(logits, step0.tensorF32('logits')), 'logits').toBeLessThan(1e-5);

        const loss0 = await t.step(batch(0), { readLoss: true });
        expect(Math.abs(loss0 - expected.loss0) / expected.loss0, `loss0 ${loss0} vs ${expected.loss0}`).toBeLessThan(1e-5);
        const grads = await t.readGrads();
        const gradNames = step0.names.filter((n) => n.startsWith('grad.'));
        expect(gradNames.length).toBe(grads.size);
        for (const g of gradNames) expect(relL2(grads.get(g.slice(5))!, step0.tensorF32(g)), g).toBeLessThan(1e-3);

        const losses = [loss0];
        for (let k = 1; k < expected.losses.length; k++) losses.push(await t.step(batch(k), { readLoss: true }));
        for (let k = 0; k < losses.length; k++) expect(Math.abs(losses[k] - expected.losses[k]), `loss ${k}`).toBeLessThan(2e-4);

        const final = weights(name, 'final.safetensors');
        const params = await t.readParams();
        for (const [n, w] of final) expect(relL2(params.get(n)!, w), `final ${n}`).toBeLessThan(1e-3);
      } finally {
        t.destroy();
      }
    });
  });
}

describe.skipIf(!rt)('GPT gradient accumulation', () => {
  it('2 micro-batches of 1 row equal 1 batch of 2 rows (the embedding buckets follow each micro-batch)', async () => {
    const cfg = JSON.parse(fixture('tiny', 'config.json').toString()) as GPTConfig;
    const batches = JSON.parse(fixture('tiny', 'batches.json').toString());
    const { B, T } = batches;
    const x = Int32Array.from(batches.inputs[0].flat());
    const y = Int32Array.from(batches.targets[0].flat());
    const run = async (batchSize: number, accumSteps: number) => {
      const t = await Trainer.create(rt!, new GPT(cfg), { inputShape: [T], loss: 'cross-entropy', batchSize, accumSteps, optimizer: { type: 'sgd', lr: 0 } });
      try {
        t.writeParams(weights('tiny', 'model.safetensors'));
        const loss = await t.step({ x, y }, { readLoss: true });
        return { loss, grads: await t.readGrads() };
      } finally {
        t.destroy();
      }
    };
    const whole = await run(B, 1);
    const split = await run(1, B);
    expect(Math.abs(split.loss - whole.loss)).toBeLessThan(1e-6);
    for (const [n, g] of whole.grads) expect(relL2(split.grads.get(n)!, g), n).toBeLessThan(1e-5);
  });
});

describe('GPT graph', () => {
  it('fuses each residual with the LayerNorm after it; parameters keep GPT-2\'s names, shapes and order', () => {
    const cfg: GPTConfig = { vocab_size: 11, n_positions: 8, n_embd: 12, n_layer: 2, n_head: 3, layer_norm_epsilon: 1e-5 };
    const g = new Graph();
    new GPT(cfg).apply(g, g.tensor('tokens', [2, 8], 'input', 'i32'));
    expect(g.ops.map((o) => o.name).filter((n) => /residual|ln_/.test(n))).toEqual([
      'h.0.ln_1', 'h.0.residual_1 + h.0.ln_2', 'h.0.residual_2 + h.1.ln_1', 'h.1.residual_1 + h.1.ln_2', 'h.1.residual_2 + ln_f',
    ]);
    const want = gpt2ParamShapes(parseGPT2Config(cfg));
    expect(g.params.map((p) => [p.tensor.name, p.tensor.shape])).toEqual([...want]);
  });
});
