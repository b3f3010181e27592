// GPT-2 checkpoints: config.json parsing and writing, loading the PyTorch-written fixtures (F32, F16,
// BF16; with and without the `transformer.` prefix) against the values recorded by the fixture script,
// every mismatch between config and weights named precisely, the save → load round trip bit-exact, and
// the Node model-folder helpers (atomic writes, errors naming the file).
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { parseSafetensors, serializeSafetensors, type SafetensorsFile, type TensorToWrite } from '../../src/io/safetensors.ts';
import {
  parseGPT2Config, gpt2ConfigJson, loadGPT2Weights, saveGPT2Weights, gpt2ParamShapes, describeSafetensors, CheckpointError,
  type CheckpointErrorCode,
} from '../../src/io/gpt2.ts';
import { readModelFolder, writeModelFolder } from '../../src/io/files.ts';

const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`../fixtures/safetensors/${name}`, import.meta.url)));
const expected = JSON.parse(new TextDecoder().decode(fixture('expected.json')));
const configJson = JSON.parse(new TextDecoder().decode(fixture('config.json')));
const config = parseGPT2Config(configJson);
const sha256 = (b: ArrayBufferView) => createHash('sha256').update(new Uint8Array(b.buffer, b.byteOffset, b.byteLength)).digest('hex');
const jnum = (x: number | string) => (x === 'Infinity' ? Infinity : x === '-Infinity' ? -Infinity : x === 'NaN' ? NaN : (x as number));

function throwsCode(fn: () => unknown, code: CheckpointErrorCode, message: RegExp) {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected ${code}`).toBeInstanceOf(CheckpointError);
  expect((caught as CheckpointError).code).toBe(code);
  expect((caught as CheckpointError).message).toMatch(message);
}

/** A new file from `src` with tensors renamed (null drops one) and extra tensors added. */
function rewrite(src: SafetensorsFile, rename: (name: string) => string | null, extra: TensorToWrite[] = []): SafetensorsFile {
  const tensors: TensorToWrite[] = [];
  for (const n of src.names) {
    const to = rename(n);
    if (to !== null) tensors.push({ name: to, dtype: src.info(n).dtype, shape: src.info(n).shape, data: src.tensorBytes(n) });
  }
  return parseSafetensors(serializeSafetensors([...tensors, ...extra], src.metadata ?? undefined));
}

const f32File = parseSafetensors(fixture('gpt2-tiny-f32.safetensors'));

describe('config', () => {
  it('parses the fixture config.json and fills defaults', () => {
    expect(config).toMatchObject({ vocab_size: 37, n_positions: 16, n_embd: 12, n_layer: 2, n_head: 3, n_inner: null, layer_norm_epsilon: 1e-5, tie_word_embeddings: true, activation_function: 'gelu_new' });
    const minimal = parseGPT2Config({ vocab_size: 10, n_positions: 8, n_embd: 4, n_layer: 1, n_head: 2 });
    expect(minimal.layer_norm_epsilon).toBe(1e-5);
    expect(minimal.tie_word_embeddings).toBe(true);
    expect(minimal.activation_function).toBe('gelu_new');
    expect(minimal.resid_pdrop).toBeUndefined();
    // transformers' attribute aliases.
    expect(parseGPT2Config({ vocab_size: 10, max_position_embeddings: 8, hidden_size: 4, num_hidden_layers: 1, num_attention_heads: 2 })).toMatchObject({ n_positions: 8, n_embd: 4, n_layer: 1, n_head: 2 });
  });
  it('errors name the bad field', () => {
    const base = { vocab_size: 10, n_positions: 8, n_embd: 6, n_layer: 1, n_head: 2 };
    throwsCode(() => parseGPT2Config({ ...base, n_embd: undefined }), 'CONFIG_INVALID', /"n_embd" is missing/);
    throwsCode(() => parseGPT2Config({ ...base, n_head: 4 }), 'CONFIG_INVALID', /"n_embd" \(6\) must be divisible by n_head \(4\)/);
    throwsCode(() => parseGPT2Config({ ...base, n_layer: 1.5 }), 'CONFIG_INVALID', /"n_layer" must be an integer ≥ 1, but it is 1.5/);
    throwsCode(() => parseGPT2Config({ ...base, vocab_size: '10' }), 'CONFIG_INVALID', /"vocab_size" must be an integer ≥ 1, but it is "10"/);
    throwsCode(() => parseGPT2Config({ ...base, layer_norm_epsilon: -1 }), 'CONFIG_INVALID', /"layer_norm_epsilon" must be a number in \(0, 1\]/);
    throwsCode(() => parseGPT2Config({ ...base, tie_word_embeddings: 'yes' }), 'CONFIG_INVALID', /"tie_word_embeddings" must be true or false/);
    throwsCode(() => parseGPT2Config({ ...base, attn_pdrop: 2 }), 'CONFIG_INVALID', /"attn_pdrop" must be a number in \[0, 1\]/);
    throwsCode(() => parseGPT2Config({ ...base, model_type: 'llama' }), 'CONFIG_INVALID', /"model_type" is "llama", not "gpt2"/);
    throwsCode(() => parseGPT2Config([]), 'CONFIG_INVALID', /must be a JSON object, but it is an array/);
  });
  it('gpt2ConfigJson writes what transformers expects, and reads back', () => {
    const text = gpt2ConfigJson(config);
    const j = JSON.parse(text);
    expect(j).toMatchObject({
      model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], activation_function: 'gelu_new', vocab_size: 37, n_positions: 16, n_ctx: 16,
      n_embd: 12, n_layer: 2, n_head: 3, n_inner: null, layer_norm_epsilon: 1e-5, resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0, tie_word_embeddings: true,
    });
    expect(j).not.toHaveProperty('bos_token_id'); // not GPT-2's vocabulary
    expect(parseGPT2Config(j)).toEqual(parseGPT2Config({ ...configJson }));
    // The fixture config.json (written in the transformers layout) has the same fields and values.
    for (const [k, v] of Object.entries(configJson)) expect(j[k], k).toEqual(v);
    const real = JSON.parse(gpt2ConfigJson(parseGPT2Config({ vocab_size: 50257, n_positions: 1024, n_embd: 768, n_layer: 12, n_head: 12, attn_pdrop: 0.1 })));
    expect(real).toMatchObject({ bos_token_id: 50256, eos_token_id: 50256, attn_pdrop: 0.1, resid_pdrop: 0 });
    expect(JSON.parse(gpt2ConfigJson({ ...config, bos_token_id: 1, eos_token_id: 2 }))).toMatchObject({ bos_token_id: 1, eos_token_id: 2 });
    expect(text.endsWith('}\n')).toBe(true);
  });
});

describe('loading the PyTorch-written GPT-2', () => {
  const shapes = gpt2ParamShapes(config);
  for (const tag of ['f32', 'f16', 'bf16'] as const) {
    it(`${tag.toUpperCase()}: every parameter, converted to float32 exactly as torch converts`, () => {
      const file = parseSafetensors(fixture(`gpt2-tiny-${tag}.safetensors`));
      const w = loadGPT2Weights(file, config);
      expect([...w.keys()]).toEqual([...shapes.keys()]);
      const exp = expected.gpt2[tag] as Record<string, { sha256: string; first: (number | string)[]; sum: number | string; shape: number[] }>;
      for (const [name, data] of w) {
        const e = exp[`transformer.${name}`];
        expect(e, name).toBeDefined();
        expect(data.length, name).toBe(shapes.get(name)!.reduce((a, b) => a * b, 1));
        expect(sha256(data), name).toBe(e.sha256);
        expect([...data.subarray(0, e.first.length)], name).toEqual(e.first.map(jnum));
        const sum = data.reduce((a, b) => a + b, 0);
        if (typeof e.sum === 'number') expect(sum, name).toBeCloseTo(e.sum, 4);
        else expect(sum, name).toBe(jnum(e.sum));
      }
      // The conversions were exercised: F16 overflow to Inf, subnormals, BF16 rounding.
      const wte = w.get('wte.weight')!;
      if (tag === 'f16') expect(wte[2]).toBe(Infinity);
      if (tag === 'bf16') expect(wte[2]).toBe(70144);
      if (tag === 'f32') expect(wte[2]).toBe(70000);
    });
  }

  it('names without the transformer. prefix (as the Hub gpt2 files are) load the same', () => {
    const plain = rewrite(f32File, (n) => n.replace(/^transformer\./, ''));
    expect(plain.names.some((n) => n.startsWith('transformer.'))).toBe(false);
    const a = loadGPT2Weights(f32File, config);
    const b = loadGPT2Weights(plain, config);
    for (const [k, v] of a) expect(b.get(k), k).toEqual(v);
    // ... and without the attn.bias buffers (newer transformers do not save them).
    const bare = rewrite(f32File, (n) => (/\.attn\.(bias|masked_bias)$/.test(n) ? null : n));
    expect(loadGPT2Weights(bare, config).size).toBe(a.size);
  });

  it('a name both with and without the prefix is an error', () => {
    const both = rewrite(f32File, (n) => n, [{ name: 'ln_f.bias', dtype: 'F32', shape: [12], data: new Float32Array(12) }]);
    throwsCode(() => loadGPT2Weights(both, config), 'DUPLICATE_TENSOR', /ln_f\.bias is present twice, as (ln_f\.bias and as transformer\.ln_f\.bias|transformer\.ln_f\.bias and as ln_f\.bias)$/);
  });

  it('a missing tensor is named', () => {
    const missing = rewrite(f32File, (n) => (n === 'transformer.h.1.mlp.c_fc.bias' ? null : n));
    throwsCode(() => loadGPT2Weights(missing, config), 'MISSING_TENSOR', /missing 1 tensor\(s\): h\.1\.mlp\.c_fc\.bias$/);
  });

  it('a wrong shape names the tensor, the expected and the actual shape', () => {
    const wrong = rewrite(f32File, (n) => n, []);
    const tensors: TensorToWrite[] = wrong.names.map((n) => ({ name: n, dtype: wrong.info(n).dtype, shape: n === 'transformer.h.0.attn.c_attn.weight' ? [36, 12] : wrong.info(n).shape, data: wrong.tensorBytes(n) }));
    const file = parseSafetensors(serializeSafetensors(tensors));
    throwsCode(() => loadGPT2Weights(file, config), 'SHAPE_MISMATCH', /transformer\.h\.0\.attn\.c_attn\.weight should be \[12, 36\] \(from the config's n_embd\) but the file has \[36, 12\]/);
  });

  it('config and weights that disagree: the first tensor that differs is named with both shapes', () => {
    const wider = parseGPT2Config({ ...configJson, n_embd: 16, n_head: 4 });
    throwsCode(() => loadGPT2Weights(f32File, wider), 'SHAPE_MISMATCH', /transformer\.wte\.weight should be \[37, 16\] \(from the config's vocab_size × n_embd\) but the file has \[37, 12\]/);
    throwsCode(() => loadGPT2Weights(f32File, { ...config, vocab_size: 50 }), 'SHAPE_MISMATCH', /wte\.weight should be \[50, 12\].*\[37, 12\]/);
    throwsCode(() => loadGPT2Weights(f32File, { ...config, n_positions: 32 }), 'SHAPE_MISMATCH', /wpe\.weight should be \[32, 12\] \(from the config's n_positions × n_embd\) but the file has \[16, 12\]/);
    throwsCode(() => loadGPT2Weights(f32File, { ...config, n_inner: 24 }), 'SHAPE_MISMATCH', /h\.0\.mlp\.c_fc\.weight should be \[12, 24\].*\[12, 48\]/);
    throwsCode(() => loadGPT2Weights(f32File, { ...config, n_layer: 3 }), 'MISSING_TENSOR', /missing 12 tensor\(s\): h\.2\.ln_1\.weight, .*\(the file has 2 layers, the config n_layer = 3\)/);
    throwsCode(() => loadGPT2Weights(f32File, { ...config, n_layer: 1 }), 'UNEXPECTED_TENSOR', /transformer\.h\.1\.ln_1\.weight.*\(the file has 2 layers, the config n_layer = 1\)/);
  });

  it('an extra tensor is named', () => {
    const extra = rewrite(f32File, (n) => n, [{ name: 'transformer.h.0.attn.rotary.inv_freq', dtype: 'F32', shape: [2], data: new Float32Array(2) }, { name: 'score.weight', dtype: 'F32', shape: [1], data: new Float32Array(1) }]);
    throwsCode(() => loadGPT2Weights(extra, config), 'UNEXPECTED_TENSOR', /unexpected tensor\(s\) not in a GPT-2 with this config: score\.weight, transformer\.h\.0\.attn\.rotary\.inv_freq$/);
  });

  it('lm_head.weight: ignored when tied (shape checked), required when not', () => {
    const wte = f32File.tensorBytes('transformer.wte.weight');
    const withHead = rewrite(f32File, (n) => n, [{ name: 'lm_head.weight', dtype: 'F32', shape: [37, 12], data: wte }]);
    expect(loadGPT2Weights(withHead, config).has('lm_head.weight')).toBe(false);
    const badHead = rewrite(f32File, (n) => n, [{ name: 'lm_head.weight', dtype: 'F32', shape: [12, 37], data: wte }]);
    throwsCode(() => loadGPT2Weights(badHead, config), 'SHAPE_MISMATCH', /lm_head\.weight \(tied to wte\.weight\) should be \[37, 12\] \(vocab_size × n_embd\) but is \[12, 37\]/);
    const untied = { ...config, tie_word_embeddings: false };
    throwsCode(() => loadGPT2Weights(f32File, untied), 'MISSING_TENSOR', /lm_head\.weight/);
    const w = loadGPT2Weights(withHead, untied);
    expect(w.get('lm_head.weight')).toEqual(w.get('wte.weight'));
  });

  it('parameters in an integer dtype are refused', () => {
    const ints = rewrite(f32File, (n) => (n === 'transformer.ln_f.bias' ? null : n), [{ name: 'transformer.ln_f.bias', dtype: 'I32', shape: [12], data: new Int32Array(12) }]);
    throwsCode(() => loadGPT2Weights(ints, config), 'DTYPE_UNSUPPORTED', /transformer\.ln_f\.bias is I32/);
  });
});

describe('saving', () => {
  const params = loadGPT2Weights(parseSafetensors(fixture('gpt2-tiny-bf16.safetensors')), config);

  it('save → load is bit-exact in F32 (NaN payloads, -0, subnormals and Inf included)', () => {
    const p = new Map(params);
    const odd = new Float32Array(p.get('ln_f.bias')!);
    new Uint32Array(odd.buffer).set([0x7fc00001, 0xffc12345, 0x80000000, 0x00000001, 0x7f800000, 0xff800000]);
    p.set('ln_f.bias', odd);
    const bytes = saveGPT2Weights(p, config);
    const file = parseSafetensors(bytes);
    const back = loadGPT2Weights(file, config);
    for (const [k, v] of p) expect(sha256(back.get(k)!), k).toBe(sha256(v));
    expect(sha256(saveGPT2Weights(back, config))).toBe(sha256(bytes)); // deterministic
  });

  it('writes what GPT2LMHeadModel.save_pretrained writes: transformer.* F32 names, no tied lm_head, format pt', () => {
    const file = parseSafetensors(saveGPT2Weights(params, config));
    expect(file.metadata).toEqual({ format: 'pt' });
    expect(new Set(file.names)).toEqual(new Set([...gpt2ParamShapes(config).keys()].map((k) => `transformer.${k}`)));
    expect(file.names.every((n) => file.info(n).dtype === 'F32')).toBe(true);
    expect(file.headerLength % 8).toBe(0);
    // Same names, shapes and layout as the PyTorch-written F32 file minus the attn buffers.
    const ref = rewrite(f32File, (n) => (/\.attn\.(bias|masked_bias)$/.test(n) ? null : n));
    expect(file.names).toEqual(ref.names);
    for (const n of file.names) expect(file.info(n).dataOffsets, n).toEqual(ref.info(n).dataOffsets);
    // Untied: lm_head.weight is written without the prefix.
    const untied = { ...config, tie_word_embeddings: false };
    const p = new Map(params).set('lm_head.weight', new Float32Array(37 * 12).fill(0.5));
    const f2 = parseSafetensors(saveGPT2Weights(p, untied));
    expect(f2.has('lm_head.weight')).toBe(true);
    expect(f2.tensorF32('lm_head.weight')[0]).toBe(0.5);
  });

  it('refuses missing, mis-sized and unknown parameters, naming them', () => {
    const p = new Map(params);
    p.delete('h.1.ln_2.bias');
    throwsCode(() => saveGPT2Weights(p, config), 'MISSING_TENSOR', /h\.1\.ln_2\.bias \[12\] is missing/);
    throwsCode(() => saveGPT2Weights(new Map(params).set('wpe.weight', new Float32Array(5)), config), 'SHAPE_MISMATCH', /wpe\.weight should be \[16, 12\] \(192 values\) but has 5 values/);
    throwsCode(() => saveGPT2Weights(new Map(params).set('h.0.attn.q.weight', new Float32Array(1)), config), 'UNEXPECTED_TENSOR', /h\.0\.attn\.q\.weight/);
  });

  it('describeSafetensors of a saved file counts the parameters', () => {
    const d = describeSafetensors(parseSafetensors(saveGPT2Weights(params, config)));
    expect(d.totalParams).toBe(4428);
    expect(d.tensors.length).toBe(gpt2ParamShapes(config).size);
    expect(d.lines.at(-2)).toMatch(/^28 tensors, 4,428 parameters \(F32 4,428\), 17,712 data bytes/);
  });
});

describe('model folders (Node)', () => {
  const params = loadGPT2Weights(f32File, config);
  const tmp = () => mkdtemp(join(tmpdir(), 'wgsl-train-io-'));

  it('write → read round trip, atomic (no temp files left), extra files', async () => {
    const dir = await tmp();
    try {
      await writeModelFolder(dir, config, params, { 'README.md': '# tiny\n', 'merges.txt': new Uint8Array([35, 10]) });
      expect((await readdir(dir)).sort()).toEqual(['README.md', 'config.json', 'merges.txt', 'model.safetensors']);
      const { config: c, weights, file } = await readModelFolder(dir);
      expect(c).toEqual(parseGPT2Config(JSON.parse(gpt2ConfigJson(config))));
      for (const [k, v] of params) expect(sha256(weights.get(k)!), k).toBe(sha256(v));
      expect(file.metadata).toEqual({ format: 'pt' });
      // Overwriting keeps the folder valid and leaves no temporaries.
      await writeModelFolder(dir, config, params);
      expect((await readdir(dir)).filter((n) => n.includes('.tmp-'))).toEqual([]);
      // A save that fails validation touches nothing.
      const before = await readFile(join(dir, 'model.safetensors'));
      await expect(writeModelFolder(dir, config, new Map([['wte.weight', new Float32Array(1)]]))).rejects.toThrow(CheckpointError);
      expect(sha256(await readFile(join(dir, 'model.safetensors')))).toBe(sha256(before));
      await expect(writeModelFolder(dir, config, params, { '../x': 'no' })).rejects.toThrow(/must be a plain file name/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('errors name the missing or malformed file', async () => {
    const dir = await tmp();
    try {
      await expect(readModelFolder(dir)).rejects.toMatchObject({ code: 'FILE_MISSING', message: expect.stringMatching(/has no config\.json/) });
      await writeFile(join(dir, 'config.json'), '{"n_embd": 12,');
      await expect(readModelFolder(dir)).rejects.toMatchObject({ code: 'FILE_MALFORMED', message: expect.stringMatching(/config\.json is not valid JSON/) });
      await writeFile(join(dir, 'config.json'), JSON.stringify({ ...configJson, n_head: 5 }));
      await expect(readModelFolder(dir)).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringMatching(/config\.json: GPT-2 config: "n_embd" \(12\) must be divisible by n_head \(5\)/) });
      await writeFile(join(dir, 'config.json'), JSON.stringify(configJson));
      await expect(readModelFolder(dir)).rejects.toMatchObject({ code: 'FILE_MISSING', message: expect.stringMatching(/has no model\.safetensors/) });
      await writeFile(join(dir, 'model.safetensors.index.json'), '{}');
      await expect(readModelFolder(dir)).rejects.toThrow(/sharded checkpoints are not supported/);
      await writeFile(join(dir, 'model.safetensors'), fixture('gpt2-tiny-f32.safetensors').subarray(0, 1000));
      await expect(readModelFolder(dir)).rejects.toMatchObject({ code: 'FILE_MALFORMED', message: expect.stringMatching(/model\.safetensors: safetensors header length \d+ runs past the end of the 1000-byte file .*\[HEADER_PAST_END\]$/) });
      await copyFile(fileURLPath('gpt2-tiny-f16.safetensors'), join(dir, 'model.safetensors'));
      await writeFile(join(dir, 'config.json'), JSON.stringify({ ...configJson, n_layer: 3 }));
      await expect(readModelFolder(dir)).rejects.toMatchObject({ code: 'MISSING_TENSOR', message: expect.stringMatching(/model\.safetensors does not match config\.json: .*h\.2\.ln_1\.weight/) });
      await writeFile(join(dir, 'config.json'), JSON.stringify(configJson));
      const ok = await readModelFolder(dir);
      expect(ok.file.info('transformer.wte.weight').dtype).toBe('F16');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

function fileURLPath(name: string) {
  return new URL(`../fixtures/safetensors/${name}`, import.meta.url);
}
