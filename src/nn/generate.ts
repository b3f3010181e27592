// Text generation from a GPT with a key/value cache: each new token runs the model on that token alone
// (shaders/decode.wgsl for the embedding, the cache append and the attention; the usual matmul kernels and
// LayerNorm kernels, each residual add fused with the LayerNorm after it, for the rest), recorded once and
// replayed per token. Sampling (temperature, top-k, seeded) happens on the host from the logits of the newest position.
import { Recorder, encodeCommands } from '../gpu/program.ts';
import { createStorage, writeArray, type View } from '../gpu/buffers.ts';
import { recordMatmul } from '../ops/matmul.ts';
import { recordLayerNormForward } from '../ops/layernorm.ts';
import type { Runtime } from '../gpu/device.ts';
import type { GPTConfig, LoraOptions } from './gpt.ts';
import { recordActivationForward } from '../ops/activation.ts';
import { prng } from '../train/random.ts';
import { vocabChunk, vocabRanges } from './vocab.ts';

/** Where the generator finds parameter values by name (a Trainer's store, or one made for inference). */
export interface ParamSource {
  params: GPUBuffer;
  layout: { view(buffer: GPUBuffer, name: string): View };
}

export interface SampleOptions {
  maxNewTokens?: number;
  /** 0 picks the most likely token (greedy). Default 1. */
  temperature?: number;
  /** Sample only among the k most likely tokens (0 or absent: all). */
  topK?: number;
  seed?: number;
  /** Called with each new token as it is produced. */
  onToken?: (token: number) => void;
}

export class Generator {
  private readonly rec: Recorder;
  private readonly state: GPUBuffer;
  private readonly logits: View;
  private readonly staging: GPUBuffer;
  private readonly owned: GPUBuffer[] = [];
  private pos = 0;

  private constructor(
    readonly rt: Runtime,
    readonly config: GPTConfig,
    /** The model's LoRA adapters, applied as in training (the source must hold lora_A and lora_B). */
    readonly lora?: LoraOptions,
  ) {
    this.rec = new Recorder(rt);
    this.state = createStorage(rt.device, 16, 'decode state [token, pos]');
    this.logits = this.buffer(config.vocab_size, 'decode logits');
    this.staging = rt.device.createBuffer({ label: 'logits readback', size: this.logits.size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    this.owned.push(this.state, this.staging);
  }

  private buffer(elements: number, label: string): View {
    const b = createStorage(this.rt.device, elements * 4, label);
    this.owned.push(b);
    return { buffer: b, offset: 0, size: elements * 4 };
  }

  /**
   * o.maxBindingBytes: the largest binding to plan for (default: the device's maxStorageBufferBindingSize);
   * a wte above it is bound one vocabulary chunk at a time.
   */
  static async create(rt: Runtime, config: GPTConfig, source: ParamSource, lora?: LoraOptions, o: { maxBindingBytes?: number } = {}): Promise<Generator> {
    const gen = new Generator(rt, config, lora);
    await gen.record(source, Math.min(o.maxBindingBytes ?? Infinity, rt.device.limits.maxStorageBufferBindingSize));
    return gen;
  }

  private async record(src: ParamSource, maxBindingBytes: number) {
    const { n_embd: C, n_head: NH, n_layer: L, vocab_size: V, n_positions: maxT, layer_norm_epsilon: eps } = this.config;
    const rec = this.rec;
    const p = (name: string) => src.layout.view(src.params, name);
    const state: View = { buffer: this.state, offset: 0, size: 16 };
    const decode = (entry: string, resources: View[], workgroups: [number, number, number], range: [number, number] = [0, 0xffffffff]) =>
      rec.dispatch({
        label: `decode ${entry}`, shader: 'decode', entry, defines: { MAXT: maxT },
        bindings: ['read', 'read', 'read', 'read', 'write', 'write'],
        uniform: [['u32', C], ['u32', C / NH], ['u32', range[0]], ['u32', range[1]]],
        resources, workgroups, cost: { flops: 0, bytes: 0 },
      });
    const r = rec.dummy('read');
    const w = rec.dummy('write');
    const one = (name: string, n: number) => this.buffer(n, name);
    const mean = one('mean', 1), rstd = one('rstd', 1);
    let x = one('x', C);
    const h = one('ln', C), qkv = one('qkv', 3 * C), att = one('att', C), proj = one('proj', C), fc = one('fc', 4 * C);
    const xNext = one('x2', C);
    const ln = (inp: View, name: string, out: View) =>
      recordLayerNormForward(rec, `${name} (decode)`, { inp, weight: p(`${name}.weight`), bias: p(`${name}.bias`), out, mean, rstd, R: 1, C, eps });
    // sum = a + b (the residual), out = LayerNorm `name` of sum, in one dispatch as in training.
    const addLn = (a: View, b: View, sum: View, name: string, out: View) =>
      recordLayerNormForward(rec, `residual + ${name} (decode)`, { inp: a, residual: { y: b, sum }, weight: p(`${name}.weight`), bias: p(`${name}.bias`), out, mean, rstd, R: 1, C, eps });
    const lora = this.lora;
    const rank = lora?.rank ?? 1;
    const u = one('lora u', rank);
    const z = one('lora z', 4 * C);
    const linear = async (A: View, name: string, K: number, N: number, out: View, act?: 'gelu') => {
      if (!lora?.targets.some((t) => name.endsWith(`.${t}`))) {
        return recordMatmul(rec, { label: `${name} (decode)`, A, B: p(`${name}.weight`), bias: p(`${name}.bias`), C: out, M: 1, N, K, act });
      }
      // With an adapter: z = x·W + b + (alpha/rank)·(x·A)·B, then the activation (see lora.ts).
      const zn = { ...z, size: N * 4 };
      await recordMatmul(rec, { label: `${name} lora x·A (decode)`, A, B: p(`${name}.lora_A`), C: u, M: 1, N: rank, K });
      await recordMatmul(rec, { label: `${name} (decode)`, A, B: p(`${name}.weight`), bias: p(`${name}.bias`), C: act ? zn : out, M: 1, N, K });
      await recordMatmul(rec, { label: `${name} lora += s·u·B (decode)`, A: u, B: p(`${name}.lora_B`), C: act ? zn : out, M: 1, N, K: rank, alpha: lora.alpha / rank, accumulate: true });
      if (act) await recordActivationForward(rec, `${name} ${act} (decode)`, act, zn, out, N);
    };
    const wg = (n: number): [number, number, number] => [Math.ceil(n / 256), 1, 1];
    // A wte above one binding is read one vocabulary chunk at a time (by embed_one and the lm_head matmul).
    const Vc = vocabChunk(V, C, 1, maxBindingBytes);
    const wte = p('wte.weight');
    const ranges: [number, number][] = Vc ? vocabRanges(V, Vc) : [[0, V]];
    const rows = (v: View, v0: number, v1: number, width: number): View => ({ buffer: v.buffer, offset: v.offset + v0 * width * 4, size: (v1 - v0) * width * 4 });
    for (const [v0, v1] of ranges) {
      const range: [number, number] | undefined = Vc ? [v0, v1] : undefined;
      await decode('embed_one', [state, Vc ? rows(wte, v0, v1, C) : wte, p('wpe.weight'), r as unknown as View, x, w as unknown as View], wg(C), range);
    }
    // h: the LayerNorm feeding the next sublayer; each residual add is fused with it (the last with ln_f).
    await ln(x, 'h.0.ln_1', h);
    for (let i = 0; i < L; i++) {
      const kc = one(`k cache ${i}`, maxT * C), vc = one(`v cache ${i}`, maxT * C);
      await linear(h, `h.${i}.attn.c_attn`, C, 3 * C, qkv);
      await decode('kv_append', [state, qkv, r as unknown as View, r as unknown as View, kc, vc], wg(C));
      await decode('attend_one', [state, qkv, kc, vc, att, w as unknown as View], [NH, 1, 1]);
      await linear(att, `h.${i}.attn.c_proj`, C, C, proj);
      await addLn(x, proj, xNext, `h.${i}.ln_2`, h);
      await linear(h, `h.${i}.mlp.c_fc`, C, 4 * C, fc, 'gelu');
      await linear(fc, `h.${i}.mlp.c_proj`, 4 * C, C, proj);
      await addLn(xNext, proj, x, i + 1 < L ? `h.${i + 1}.ln_1` : 'ln_f', h);
    }
    if (!Vc) await recordMatmul(rec, { label: 'lm_head (decode)', A: h, B: wte, C: this.logits, M: 1, N: V, K: C, transB: true });
    else {
      for (const [c, [v0, v1]] of ranges.entries()) {
        await recordMatmul(rec, { label: `lm_head ${c} (decode)`, A: h, B: rows(wte, v0, v1, C), C: rows(this.logits, v0, v1, 1), M: 1, N: v1 - v0, K: C, transB: true });
      }
    }
    x = h;
  }

  /** Runs the model on `token` at the next position; returns the logits for the position after it. */
  async next(token: number): Promise<Float32Array> {
    const { vocab_size: V, n_positions } = this.config;
    if (!Number.isInteger(token) || token < 0 || token >= V) throw new Error(`token id ${token} is out of range [0, ${V}) (vocab_size)`);
    if (this.pos >= n_positions) throw new Error(`the sequence is longer than n_positions = ${n_positions}`);
    this.rt.assertAlive('generate');
    const device = this.rt.device;
    writeArray(device, this.state, 0, new Uint32Array([token, this.pos, 0, 0]));
    const enc = device.createCommandEncoder({ label: `decode position ${this.pos}` });
    encodeCommands(enc, this.rec.commands, this.rt.debug);
    enc.copyBufferToBuffer(this.logits.buffer, 0, this.staging, 0, this.logits.size);
    device.queue.submit([enc.finish()]);
    this.pos++;
    await this.staging.mapAsync(GPUMapMode.READ);
    const out = new Float32Array(this.staging.getMappedRange().slice(0));
    this.staging.unmap();
    return out.subarray(0, V);
  }

  /** Forgets the cache: the next token is at position 0. */
  reset(): void {
    this.pos = 0;
  }

  /** Continues `prompt` with up to maxNewTokens sampled tokens (stops at n_positions). */
  async generate(prompt: ArrayLike<number>, o: SampleOptions = {}): Promise<number[]> {
    if (prompt.length === 0) throw new Error('generate: the prompt must have at least one token');
    this.reset();
    const random = prng(o.seed ?? 0);
    let logits!: Float32Array;
    for (let i = 0; i < prompt.length; i++) logits = await this.next(prompt[i]);
    const out: number[] = [];
    const max = Math.min(o.maxNewTokens ?? 64, this.config.n_positions - prompt.length);
    for (let i = 0; i < max; i++) {
      const token = sample(logits, o.temperature ?? 1, o.topK ?? 0, random);
      out.push(token);
      o.onToken?.(token);
      if (i + 1 < max) logits = await this.next(token);
    }
    return out;
  }

  destroy(): void {
    for (const b of [...this.owned, ...this.rec.owned]) b.destroy();
  }
}

/** Samples a token id from logits with temperature and top-k (temperature 0: argmax). */
export function sample(logits: Float32Array, temperature: number, topK: number, random: () => number): number {
  if (!(temperature >= 0)) throw new Error(`temperature must be ≥ 0, got ${temperature}`);
  let ids = Array.from(logits.keys());
  if (temperature === 0) return ids.reduce((a, b) => (logits[b] > logits[a] ? b : a), 0);
  if (topK > 0 && topK < ids.length) ids = ids.sort((a, b) => logits[b] - logits[a] || a - b).slice(0, topK);
  const mx = Math.max(...ids.map((i) => logits[i]));
  const w = ids.map((i) => Math.exp((logits[i] - mx) / temperature));
  const total = w.reduce((a, b) => a + b, 0);
  let u = random() * total;
  for (let k = 0; k < ids.length; k++) {
    u -= w[k];
    if (u <= 0) return ids[k];
  }
  return ids[ids.length - 1];
}
