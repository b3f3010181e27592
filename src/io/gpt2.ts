// Hugging Face GPT-2 checkpoints: config.json parsing/writing and model.safetensors loading/saving.
//
// Canonical parameter names are Hugging Face's without the `transformer.` prefix, with Conv1D weights
// kept in their (in, out) layout:
//   wte.weight [V, C]   wpe.weight [n_positions, C]
//   h.{i}.ln_1.weight|bias [C]
//   h.{i}.attn.c_attn.weight [C, 3C]  h.{i}.attn.c_attn.bias [3C]
//   h.{i}.attn.c_proj.weight [C, C]   h.{i}.attn.c_proj.bias [C]
//   h.{i}.ln_2.weight|bias [C]
//   h.{i}.mlp.c_fc.weight [C, I]      h.{i}.mlp.c_fc.bias [I]        (I = n_inner ?? 4C)
//   h.{i}.mlp.c_proj.weight [I, C]    h.{i}.mlp.c_proj.bias [C]
//   ln_f.weight|bias [C]
//   lm_head.weight [V, C]             only when tie_word_embeddings is false
import type { GPTConfig } from '../nn/gpt.ts';
import { parseSafetensors, serializeSafetensors, type Dtype, type SafetensorsFile, type TensorToWrite } from './safetensors.ts';

export type CheckpointErrorCode =
  | 'CONFIG_INVALID' // a config field is missing, of the wrong type, or inconsistent
  | 'MISSING_TENSOR' // an expected tensor is absent
  | 'SHAPE_MISMATCH' // a tensor's shape differs from what the config implies
  | 'UNEXPECTED_TENSOR' // the file holds tensors that are not part of the model
  | 'DUPLICATE_TENSOR' // a tensor is present both with and without the `transformer.` prefix
  | 'DTYPE_UNSUPPORTED' // a parameter is stored in a dtype other than F32/F16/BF16
  | 'FILE_MISSING' // a model folder lacks config.json or model.safetensors
  | 'FILE_MALFORMED'; // a model folder file cannot be parsed

export class CheckpointError extends Error {
  override readonly name = 'CheckpointError';
  constructor(readonly code: CheckpointErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface GPT2Config {
  vocab_size: number;
  n_positions: number;
  n_embd: number;
  n_layer: number;
  n_head: number;
  /** MLP hidden size; null means 4 × n_embd. */
  n_inner: number | null;
  layer_norm_epsilon: number;
  tie_word_embeddings: boolean;
  activation_function: string;
  /** Dropout probabilities; undefined when the config does not give them (written as 0). */
  resid_pdrop?: number;
  embd_pdrop?: number;
  attn_pdrop?: number;
  initializer_range: number;
  scale_attn_weights: boolean;
  scale_attn_by_inverse_layer_idx: boolean;
  reorder_and_upcast_attn: boolean;
  bos_token_id?: number;
  eos_token_id?: number;
}

/** The MLP hidden size, n_inner or 4 × n_embd. */
export const gpt2Inner = (c: GPT2Config): number => c.n_inner ?? 4 * c.n_embd;

const GPT2_VOCAB = 50257;
const GPT2_EOS = 50256;

function configError(field: string, message: string): CheckpointError {
  return new CheckpointError('CONFIG_INVALID', `GPT-2 config: "${field}" ${message}`);
}

/** Validates a parsed config.json (transformers' GPT2Config) and fills in the defaults. */
export function parseGPT2Config(json: unknown): GPT2Config {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new CheckpointError('CONFIG_INVALID', `GPT-2 config must be a JSON object, but it is ${json === null ? 'null' : Array.isArray(json) ? 'an array' : typeof json}`);
  }
  const o = json as Record<string, unknown>;
  if (o.model_type !== undefined && o.model_type !== 'gpt2') {
    throw configError('model_type', `is ${JSON.stringify(o.model_type)}, not "gpt2"`);
  }
  // transformers' GPT2Config.attribute_map aliases.
  const aliases: Record<string, string> = { n_positions: 'max_position_embeddings', n_embd: 'hidden_size', n_layer: 'num_hidden_layers', n_head: 'num_attention_heads' };
  const posInt = (field: string, min = 1): number => {
    let v = o[field];
    if (v === undefined && aliases[field] !== undefined) v = o[aliases[field]];
    if (v === undefined) throw configError(field, 'is missing');
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
      throw configError(field, `must be an integer ≥ ${min}, but it is ${JSON.stringify(v)}`);
    }
    return v;
  };
  const optNumber = (field: string, def: number | undefined, lo: number, hi: number, openLo = false): number | undefined => {
    const v = o[field];
    if (v === undefined || v === null) return def;
    if (typeof v !== 'number' || !Number.isFinite(v) || (openLo ? v <= lo : v < lo) || v > hi) {
      throw configError(field, `must be a number in ${openLo ? '(' : '['}${lo}, ${hi}], but it is ${JSON.stringify(v)}`);
    }
    return v;
  };
  const optBool = (field: string, def: boolean): boolean => {
    const v = o[field];
    if (v === undefined || v === null) return def;
    if (typeof v !== 'boolean') throw configError(field, `must be true or false, but it is ${JSON.stringify(v)}`);
    return v;
  };
  const optTokenId = (field: string): number | undefined => {
    const v = o[field];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw configError(field, `must be a non-negative integer, but it is ${JSON.stringify(v)}`);
    return v;
  };

  const vocab_size = posInt('vocab_size');
  const n_positions = posInt('n_positions');
  const n_embd = posInt('n_embd');
  const n_layer = posInt('n_layer');
  const n_head = posInt('n_head');
  if (n_embd % n_head !== 0) throw configError('n_embd', `(${n_embd}) must be divisible by n_head (${n_head})`);
  let n_inner: number | null = null;
  if (o.n_inner !== undefined && o.n_inner !== null) n_inner = posInt('n_inner');
  const activation_function = o.activation_function ?? 'gelu_new';
  if (typeof activation_function !== 'string') throw configError('activation_function', `must be a string, but it is ${JSON.stringify(activation_function)}`);
  if (o.n_ctx !== undefined && o.n_ctx !== null && (typeof o.n_ctx !== 'number' || !Number.isSafeInteger(o.n_ctx) || o.n_ctx < 1)) {
    throw configError('n_ctx', `must be a positive integer, but it is ${JSON.stringify(o.n_ctx)}`);
  }
  const config: GPT2Config = {
    vocab_size,
    n_positions,
    n_embd,
    n_layer,
    n_head,
    n_inner,
    layer_norm_epsilon: optNumber('layer_norm_epsilon', 1e-5, 0, 1, true)!,
    tie_word_embeddings: optBool('tie_word_embeddings', true),
    activation_function,
    resid_pdrop: optNumber('resid_pdrop', undefined, 0, 1),
    embd_pdrop: optNumber('embd_pdrop', undefined, 0, 1),
    attn_pdrop: optNumber('attn_pdrop', undefined, 0, 1),
    initializer_range: optNumber('initializer_range', 0.02, 0, Infinity)!,
    scale_attn_weights: optBool('scale_attn_weights', true),
    scale_attn_by_inverse_layer_idx: optBool('scale_attn_by_inverse_layer_idx', false),
    reorder_and_upcast_attn: optBool('reorder_and_upcast_attn', false),
  };
  const bos = optTokenId('bos_token_id');
  const eos = optTokenId('eos_token_id');
  if (bos !== undefined) config.bos_token_id = bos;
  if (eos !== undefined) config.eos_token_id = eos;
  for (const [k, v] of [['resid_pdrop', config.resid_pdrop], ['embd_pdrop', config.embd_pdrop], ['attn_pdrop', config.attn_pdrop]] as const) {
    if (v === undefined) delete config[k];
  }
  return config;
}

/** config.json text that transformers' GPT2Config / AutoConfig accepts (keys sorted, 2-space indent). */
export function gpt2ConfigJson(config: GPT2Config): string {
  const c = parseGPT2Config(config as unknown); // validate what we write
  const out: Record<string, unknown> = {
    activation_function: c.activation_function,
    architectures: ['GPT2LMHeadModel'],
    attn_pdrop: c.attn_pdrop ?? 0,
    embd_pdrop: c.embd_pdrop ?? 0,
    initializer_range: c.initializer_range,
    layer_norm_epsilon: c.layer_norm_epsilon,
    model_type: 'gpt2',
    n_ctx: c.n_positions,
    n_embd: c.n_embd,
    n_head: c.n_head,
    n_inner: c.n_inner,
    n_layer: c.n_layer,
    n_positions: c.n_positions,
    reorder_and_upcast_attn: c.reorder_and_upcast_attn,
    resid_pdrop: c.resid_pdrop ?? 0,
    scale_attn_by_inverse_layer_idx: c.scale_attn_by_inverse_layer_idx,
    scale_attn_weights: c.scale_attn_weights,
    tie_word_embeddings: c.tie_word_embeddings,
    torch_dtype: 'float32',
    use_cache: true,
    vocab_size: c.vocab_size,
  };
  const gpt2Vocab = c.vocab_size === GPT2_VOCAB;
  const bos = c.bos_token_id ?? (gpt2Vocab ? GPT2_EOS : undefined);
  const eos = c.eos_token_id ?? (gpt2Vocab ? GPT2_EOS : undefined);
  if (bos !== undefined) out.bos_token_id = bos;
  if (eos !== undefined) out.eos_token_id = eos;
  const sorted = Object.fromEntries(Object.keys(out).sort().map((k) => [k, out[k]]));
  return `${JSON.stringify(sorted, null, 2)}\n`;
}

/** Canonical parameter names and shapes of a GPT-2 with this config, in model order. */
export function gpt2ParamShapes(config: GPT2Config): Map<string, number[]> {
  const { vocab_size: V, n_positions: P, n_embd: C, n_layer: L } = config;
  const I = gpt2Inner(config);
  const m = new Map<string, number[]>();
  m.set('wte.weight', [V, C]);
  m.set('wpe.weight', [P, C]);
  for (let i = 0; i < L; i++) {
    const p = `h.${i}.`;
    m.set(`${p}ln_1.weight`, [C]);
    m.set(`${p}ln_1.bias`, [C]);
    m.set(`${p}attn.c_attn.weight`, [C, 3 * C]);
    m.set(`${p}attn.c_attn.bias`, [3 * C]);
    m.set(`${p}attn.c_proj.weight`, [C, C]);
    m.set(`${p}attn.c_proj.bias`, [C]);
    m.set(`${p}ln_2.weight`, [C]);
    m.set(`${p}ln_2.bias`, [C]);
    m.set(`${p}mlp.c_fc.weight`, [C, I]);
    m.set(`${p}mlp.c_fc.bias`, [I]);
    m.set(`${p}mlp.c_proj.weight`, [I, C]);
    m.set(`${p}mlp.c_proj.bias`, [C]);
  }
  m.set('ln_f.weight', [C]);
  m.set('ln_f.bias', [C]);
  if (!config.tie_word_embeddings) m.set('lm_head.weight', [V, C]);
  return m;
}

const PREFIX = 'transformer.';
const BUFFER = /^h\.\d+\.attn\.(?:bias|masked_bias)$/;
const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;
const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((x, i) => x === b[i]);
const list = (names: string[], max = 8) => names.slice(0, max).join(', ') + (names.length > max ? `, … (${names.length} in all)` : '');

/** Where the config's expected shape comes from, for error messages. */
function shapeSource(name: string): string {
  if (name === 'wte.weight' || name === 'lm_head.weight') return 'vocab_size × n_embd';
  if (name === 'wpe.weight') return 'n_positions × n_embd';
  if (/c_fc|mlp\.c_proj\.weight/.test(name)) return 'n_embd, n_inner';
  return 'n_embd';
}

/**
 * Checks a GPT-2 safetensors file against the config and returns its parameters under canonical names,
 * converted to float32 (F32, F16 and BF16 accepted). Names may carry the `transformer.` prefix or not;
 * the attn.bias / attn.masked_bias buffers are ignored, and so is lm_head.weight when tied.
 */
export function loadGPT2Weights(file: SafetensorsFile, config: GPT2Config): Map<string, Float32Array> {
  const expected = gpt2ParamShapes(config);
  const found = new Map<string, string>(); // canonical → name in file
  const unexpected: string[] = [];
  for (const name of file.names) {
    const canonical = name.startsWith(PREFIX) ? name.slice(PREFIX.length) : name;
    if (BUFFER.test(canonical)) continue;
    if (canonical === 'lm_head.weight' && config.tie_word_embeddings) {
      const shape = file.info(name).shape;
      const want = [config.vocab_size, config.n_embd];
      if (!sameShape(shape, want)) {
        throw new CheckpointError('SHAPE_MISMATCH', `GPT-2 weights: ${name} (tied to wte.weight) should be ${fmt(want)} (vocab_size × n_embd) but is ${fmt(shape)}`);
      }
      continue;
    }
    if (!expected.has(canonical)) {
      unexpected.push(name);
      continue;
    }
    const prev = found.get(canonical);
    if (prev !== undefined) {
      throw new CheckpointError('DUPLICATE_TENSOR', `GPT-2 weights: ${canonical} is present twice, as ${prev} and as ${name}`);
    }
    found.set(canonical, name);
  }
  const missing = [...expected.keys()].filter((k) => !found.has(k));
  if (missing.length > 0) {
    const layers = new Set(file.names.map((n) => /(?:^|\.)h\.(\d+)\./.exec(n)?.[1]).filter((x) => x !== undefined));
    const hint = layers.size > 0 && layers.size !== config.n_layer ? ` (the file has ${layers.size} layers, the config n_layer = ${config.n_layer})` : '';
    const also = unexpected.length > 0 ? `; the file also has unexpected tensor(s): ${list(unexpected, 4)}` : '';
    throw new CheckpointError('MISSING_TENSOR', `GPT-2 weights: missing ${missing.length} tensor(s): ${list(missing)}${hint}${also}`);
  }
  if (unexpected.length > 0) {
    const layers = new Set(file.names.map((n) => /(?:^|\.)h\.(\d+)\./.exec(n)?.[1]).filter((x) => x !== undefined));
    const hint = layers.size > config.n_layer ? ` (the file has ${layers.size} layers, the config n_layer = ${config.n_layer})` : '';
    throw new CheckpointError('UNEXPECTED_TENSOR', `GPT-2 weights: unexpected tensor(s) not in a GPT-2 with this config: ${list(unexpected)}${hint}`);
  }
  const out = new Map<string, Float32Array>();
  for (const [canonical, want] of expected) {
    const name = found.get(canonical)!;
    const info = file.info(name);
    if (!sameShape(info.shape, want)) {
      throw new CheckpointError('SHAPE_MISMATCH', `GPT-2 weights: ${name} should be ${fmt(want)} (from the config's ${shapeSource(canonical)}) but the file has ${fmt(info.shape)}`);
    }
    if (info.dtype !== 'F32' && info.dtype !== 'F16' && info.dtype !== 'BF16') {
      throw new CheckpointError('DTYPE_UNSUPPORTED', `GPT-2 weights: ${name} is ${info.dtype}; only F32, F16 and BF16 parameters are supported`);
    }
    out.set(canonical, file.tensorF32(name));
  }
  return out;
}

/** model.safetensors bytes as transformers' GPT2LMHeadModel.save_pretrained writes them (F32). */
export function saveGPT2Weights(params: ReadonlyMap<string, Float32Array>, config: GPT2Config): Uint8Array {
  const expected = gpt2ParamShapes(config);
  const extra = [...params.keys()].filter((k) => !expected.has(k));
  if (extra.length > 0) throw new CheckpointError('UNEXPECTED_TENSOR', `saveGPT2Weights: parameter(s) not in a GPT-2 with this config: ${list(extra)}`);
  const tensors: TensorToWrite[] = [];
  for (const [name, shape] of expected) {
    const data = params.get(name);
    if (data === undefined) throw new CheckpointError('MISSING_TENSOR', `saveGPT2Weights: parameter ${name} ${fmt(shape)} is missing`);
    if (!(data instanceof Float32Array)) throw new CheckpointError('DTYPE_UNSUPPORTED', `saveGPT2Weights: parameter ${name} must be a Float32Array`);
    const numel = shape.reduce((a, b) => a * b, 1);
    if (data.length !== numel) {
      throw new CheckpointError('SHAPE_MISMATCH', `saveGPT2Weights: parameter ${name} should be ${fmt(shape)} (${numel} values) but has ${data.length} values`);
    }
    tensors.push({ name: name === 'lm_head.weight' ? name : PREFIX + name, dtype: 'F32', shape, data });
  }
  return serializeSafetensors(tensors, { format: 'pt' });
}

/** Parses model.safetensors bytes and loads them as GPT-2 weights (a convenience). */
export function loadGPT2WeightsFromBytes(bytes: Uint8Array, config: GPT2Config): Map<string, Float32Array> {
  return loadGPT2Weights(parseSafetensors(bytes), config);
}

export interface SafetensorsDescription {
  tensors: { name: string; dtype: Dtype; shape: number[]; params: number; bytes: number }[];
  /** Total number of elements over all tensors. */
  totalParams: number;
  /** Elements per dtype. */
  paramsByDtype: Partial<Record<Dtype, number>>;
  headerBytes: number;
  dataBytes: number;
  metadata: Record<string, string> | null;
  /** A human-readable table, one line per tensor plus a summary. */
  lines: string[];
}

/** Names, dtypes, shapes and parameter counts of a safetensors file, for `wgsl-train inspect`. */
export function describeSafetensors(file: SafetensorsFile): SafetensorsDescription {
  const tensors = file.names.map((name) => {
    const t = file.info(name);
    return { name, dtype: t.dtype, shape: [...t.shape], params: t.numel, bytes: t.byteLength };
  });
  const paramsByDtype: Partial<Record<Dtype, number>> = {};
  let totalParams = 0;
  for (const t of tensors) {
    totalParams += t.params;
    paramsByDtype[t.dtype] = (paramsByDtype[t.dtype] ?? 0) + t.params;
  }
  const dataBytes = tensors.reduce((a, t) => a + t.bytes, 0);
  const nameW = Math.max(4, ...tensors.map((t) => t.name.length));
  const shapeW = Math.max(5, ...tensors.map((t) => fmt(t.shape).length));
  const lines = [`${'name'.padEnd(nameW)}  dtype  ${'shape'.padEnd(shapeW)}  params`];
  for (const t of tensors) lines.push(`${t.name.padEnd(nameW)}  ${t.dtype.padEnd(5)}  ${fmt(t.shape).padEnd(shapeW)}  ${t.params.toLocaleString('en-US')}`);
  const byDtype = Object.entries(paramsByDtype).map(([d, n]) => `${d} ${n!.toLocaleString('en-US')}`).join(', ');
  lines.push(`${tensors.length} tensors, ${totalParams.toLocaleString('en-US')} parameters${byDtype ? ` (${byDtype})` : ''}, ${dataBytes.toLocaleString('en-US')} data bytes, ${file.headerLength.toLocaleString('en-US')} header bytes`);
  if (file.metadata) lines.push(`metadata: ${JSON.stringify(file.metadata)}`);
  return { tensors, totalParams, paramsByDtype, headerBytes: file.headerLength, dataBytes, metadata: file.metadata ? { ...file.metadata } : null, lines };
}

/**
 * The model src/nn/gpt.ts implements, from a Hugging Face config; refuses what it does not implement and
 * returns notes on what it does not apply (dropout: this engine has none, and training stays deterministic).
 */
export function gptModelConfig(c: GPT2Config): { config: GPTConfig; notes: string[] } {
  const refuse = (field: string, message: string) => new CheckpointError('CONFIG_INVALID', `GPT-2 config: "${field}" ${message}`);
  if ((c.n_inner ?? 4 * c.n_embd) !== 4 * c.n_embd) throw refuse('n_inner', `${c.n_inner} is not supported (only 4 × n_embd)`);
  if (!['gelu_new', 'gelu_pytorch_tanh'].includes(c.activation_function)) throw refuse('activation_function', `'${c.activation_function}' is not supported (gelu_new)`);
  if (!c.tie_word_embeddings) throw refuse('tie_word_embeddings', 'false is not supported (the head is the token embedding)');
  if (c.scale_attn_by_inverse_layer_idx) throw refuse('scale_attn_by_inverse_layer_idx', 'true is not supported');
  if (!c.scale_attn_weights) throw refuse('scale_attn_weights', 'false is not supported');
  const notes: string[] = [];
  if ([c.resid_pdrop, c.embd_pdrop, c.attn_pdrop].some((p) => (p ?? 0) > 0)) {
    notes.push("note: this engine has no dropout; the config's dropout probabilities are not applied (training is deterministic)");
  }
  const { vocab_size, n_positions, n_embd, n_layer, n_head, layer_norm_epsilon } = c;
  return { config: { vocab_size, n_positions, n_embd, n_layer, n_head, layer_norm_epsilon }, notes };
}
