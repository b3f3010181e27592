// The wgsl-train command line end to end (in-process): train from a config on a text file with a JSONL log
// and a save, resume bit-identically, generate, inspect, and one-line errors with a non-zero exit status.
import { describe, it, expect, vi, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, writeFileSync, readFileSync, rmSync, copyFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { testRuntime } from '../helpers.ts';
import { main } from '../../src/cli/main.ts';
import { writeTokenFile } from '../../src/data/tokens.ts';
import { parseSafetensors } from '../../src/io/safetensors.ts';

const rt = await testRuntime();
const fixtures = fileURLToPath(new URL('../fixtures/gpt2/', import.meta.url));
let dir = '';

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a) => void out.push(a.join(' ')));
  const error = vi.spyOn(console, 'error').mockImplementation((...a) => void err.push(a.join(' ')));
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
  try {
    const code = await main(argv);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    log.mockRestore();
    error.mockRestore();
    write.mockRestore();
  }
}

const jsonl = (file: string) => readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'wgsl-train-cli-'));
  const text = 'the quick brown fox jumps over the lazy dog. '.repeat(40);
  writeFileSync(join(dir, 'data.txt'), text);
  // A byte-level model: the tiny fixture's architecture with a 256-token vocabulary.
  const cfg = JSON.parse(readFileSync(join(fixtures, 'tiny', 'config.json'), 'utf8'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...cfg, vocab_size: 256 }));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!rt)('wgsl-train train / generate', () => {
  const common = (extra: string[]) => ['--data', join(dir, 'data.txt'), '--batch', '2', '--seq', '8', '--lr', '1e-3', '--weight-decay', '0.1', '--grad-clip', '1', '--warmup', '2', ...extra];

  it('trains from a config, logs every step, saves; 5 + resume + 5 equals 10 straight, bit for bit', async () => {
    const a = await run('train', '--config', join(dir, 'config.json'), ...common(['--steps', '10', '--log', join(dir, 'a.jsonl'), '--save', join(dir, 'a')]));
    expect(a.code, a.err).toBe(0);
    const logA = jsonl(join(dir, 'a.jsonl'));
    expect(logA.map((l) => l.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    for (const l of logA) for (const k of ['loss', 'lr', 'ms', 'tokens_per_s']) expect(Number.isFinite(l[k]), k).toBe(true);
    expect(logA[9].loss).toBeLessThan(logA[0].loss);
    expect(logA[0].lr).toBeCloseTo(5e-4, 10); // warmup: lr·1/2

    const b = await run('train', '--config', join(dir, 'config.json'), ...common(['--steps', '10', '--log', join(dir, 'b.jsonl'), '--save', join(dir, 'b')]).map((x) => (x === '10' ? '5' : x)));
    expect(b.code, b.err).toBe(0);
    const c = await run('train', '--resume', join(dir, 'b'), ...common(['--steps', '10', '--log', join(dir, 'b.jsonl'), '--save', join(dir, 'c')]));
    expect(c.code, c.err).toBe(0);
    const logB = jsonl(join(dir, 'b.jsonl'));
    expect(logB.map((l) => l.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(logB.map((l) => l.loss)).toEqual(logA.map((l) => l.loss));
    expect(readFileSync(join(dir, 'c', 'model.safetensors')).equals(readFileSync(join(dir, 'a', 'model.safetensors')))).toBe(true);

    const g1 = await run('generate', '--init', join(dir, 'a'), '--prompt', 'the qu', '--max-new-tokens', '12', '--seed', '3', '--top-k', '5');
    const g2 = await run('generate', '--init', join(dir, 'a'), '--prompt', 'the qu', '--max-new-tokens', '12', '--seed', '3', '--top-k', '5');
    expect(g1.code, g1.err).toBe(0);
    expect(g1.out.startsWith('the qu')).toBe(true);
    expect(g1.out).toBe(g2.out);

    // LoRA fine-tuning from the saved model: adapters saved alone, merged weights in model.safetensors.
    const l = await run('train', '--init', join(dir, 'a'), ...common(['--steps', '4', '--lora-rank', '2', '--lora-alpha', '4', '--lora-targets', 'c_attn,c_fc', '--save', join(dir, 'lora')]));
    expect(l.code, l.err).toBe(0);
    expect(l.err).toMatch(/LoRA rank 2, alpha 4 on c_attn, c_fc/);
    const adapters = parseSafetensors(new Uint8Array(readFileSync(join(dir, 'lora', 'adapter_model.safetensors'))));
    expect(adapters.names.length).toBe(2 * 2 * 2); // 2 layers × (c_attn, c_fc) × (A, B)
    const mergedFile = parseSafetensors(new Uint8Array(readFileSync(join(dir, 'lora', 'model.safetensors'))));
    expect(mergedFile.names.some((n) => n.includes('lora'))).toBe(false);
    expect((await run('generate', '--init', join(dir, 'lora'), '--prompt', 'the', '--max-new-tokens', '4')).code).toBe(0);

    const i = await run('inspect', join(dir, 'a'));
    expect(i.code, i.err).toBe(0);
    expect(i.out).toMatch(/transformer\.h\.0\.attn\.c_attn\.weight/);
  });

  it.skipIf(!rt?.features.has('shader-f16'))('--precision f16: logs the loss scale; 3 + resume + 3 equals 6 straight, bit for bit (the scale is restored)', async () => {
    // A first loss scale of 2^21 overflows f16 here: the first steps are skipped and halve it until the
    // gradients fit, so the resumed run matches only if the saved state carries the scale.
    const f16 = (steps: string, extra: string[]) => common(['--precision', 'f16', '--loss-scale', String(2 ** 21), '--steps', steps, ...extra]);
    const a = await run('train', '--config', join(dir, 'config.json'), ...f16('6', ['--log', join(dir, 'h.jsonl'), '--save', join(dir, 'h')]));
    expect(a.code, a.err).toBe(0);
    const logA = jsonl(join(dir, 'h.jsonl'));
    // Each line has its own step's status: the scale halves exactly on the skipped steps.
    let [scale, skipped] = [2 ** 21, 0];
    for (const l of logA) {
      const skip = l.skipped_steps - skipped;
      expect(skip === 0 || skip === 1, JSON.stringify(l)).toBe(true);
      expect(l.loss_scale, JSON.stringify(l)).toBe(skip ? scale / 2 : scale);
      [scale, skipped] = [l.loss_scale, l.skipped_steps];
    }
    expect(logA[0].skipped_steps).toBe(1); // 2^21 overflows f16 here
    expect(logA[5].skipped_steps).toBeLessThan(6);
    const b = await run('train', '--config', join(dir, 'config.json'), ...f16('3', ['--log', join(dir, 'i.jsonl'), '--save', join(dir, 'i')]));
    expect(b.code, b.err).toBe(0);
    const c = await run('train', '--resume', join(dir, 'i'), ...f16('6', ['--log', join(dir, 'i.jsonl'), '--save', join(dir, 'j')]));
    expect(c.code, c.err).toBe(0);
    // Had the scale not been restored, the resumed run would skip its first step again and its losses differ.
    expect(jsonl(join(dir, 'i.jsonl')).map((l) => [l.loss, l.loss_scale])).toEqual(logA.map((l) => [l.loss, l.loss_scale]));
    expect(readFileSync(join(dir, 'j', 'model.safetensors')).equals(readFileSync(join(dir, 'h', 'model.safetensors')))).toBe(true);
    expect((await run('train', '--config', join(dir, 'config.json'), ...common(['--precision', 'bf16', '--steps', '1']))).err).toMatch(/--precision must be f32 or f16/);
  });

  it('fails with one line and a non-zero status', async () => {
    const cases: [string[], RegExp][] = [
      [['train', '--config', join(dir, 'config.json'), '--data', join(dir, 'missing.txt'), '--batch', '2', '--seq', '8', '--steps', '1'], /missing\.txt/],
      [['train', '--config', join(dir, 'config.json'), ...common(['--steps', '1']).map((x) => (x === '8' ? '64' : x))], /--seq 64 is longer than the model's n_positions = 32/],
      [['train', '--config', join(dir, 'config.json'), ...common(['--steps', '1', '--optimizer', 'lamb'])], /--optimizer must be adamw, adam or sgd/],
      [['train', '--config', join(dir, 'config.json'), ...common(['--steps', 'x'])], /--steps needs a number/],
      [['generate', '--init', join(dir, 'nowhere'), '--prompt', 'x'], /nowhere/],
      [['inspect', join(dir, 'data.txt')], /./],
      [['frobnicate'], /unknown command 'frobnicate'/],
    ];
    for (const [argv, msg] of cases) {
      const r = await run(...argv);
      expect(r.code, argv.join(' ')).not.toBe(0);
      const lines = r.err.split('\n').filter((l) => l.startsWith('wgsl-train:'));
      expect(lines.length, r.err).toBe(1);
      expect(lines[0]).toMatch(msg);
    }
    // Token ids beyond the vocabulary (an llm.c token file for a 64-token model).
    writeFileSync(join(dir, 'big.bin'), writeTokenFile(Array.from({ length: 100 }, (_, i) => (i === 40 ? 300 : i % 60))));
    const cfg64 = join(dir, 'config64.json');
    writeFileSync(cfg64, readFileSync(join(fixtures, 'tiny', 'config.json')));
    const r = await run('train', '--config', cfg64, '--data', join(dir, 'big.bin'), '--batch', '2', '--seq', '8', '--steps', '1');
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/300/);
    // Config and weights that disagree name the tensor.
    mkdirSync(join(dir, 'bad'), { recursive: true });
    copyFileSync(join(fixtures, 'awkward', 'model.safetensors'), join(dir, 'bad', 'model.safetensors'));
    copyFileSync(join(fixtures, 'tiny', 'config.json'), join(dir, 'bad', 'config.json'));
    const bad = await run('generate', '--init', join(dir, 'bad'), '--prompt', 'x');
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/wte\.weight|shape/);
  });
});
