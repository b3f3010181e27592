// `wgsl-train train | generate | inspect`: fine-tune or train a GPT-2 from text or token files, generate from
// it, and look inside checkpoints. Thin over the library; every error is one line naming the problem.
import { createRuntime, adapterName, type Runtime } from '../gpu/device.ts';
import { GPT, type GPTConfig, type LoraOptions } from '../nn/gpt.ts';
import { mergeLora } from '../nn/lora.ts';
import { Generator } from '../nn/generate.ts';
import { Trainer, type StepStatus, type TrainingState } from '../train/trainer.ts';
import { ParamStore } from '../train/params.ts';
import { buildGraph } from '../train/compile.ts';
import type { OptimizerConfig, Schedule } from '../optim/optimizer.ts';
import { parseGPT2Config, describeSafetensors, gptModelConfig, type GPT2Config } from '../io/gpt2.ts';
import { readModelFolder, writeModelFolder } from '../io/files.ts';
import { parseSafetensors, serializeSafetensors } from '../io/safetensors.ts';
import { getTokenizer, type Tokenizer } from '../data/tokenizer.ts';
import { readTokens, checkTokens } from '../data/tokens.ts';
import { TokenLoader, type LoaderState } from '../data/loader.ts';
import { parseFlags, UsageError, type Flags } from './flags.ts';

// The whole training state is one file (moments, exact parameters, and the step and data position in its
// metadata), written atomically, so a save interrupted anywhere never leaves a state from two steps.
const STATE_TENSORS = 'training_state.safetensors';
const STATE_META = 'wgsl_train_state';
const ADAPTERS = 'adapter_model.safetensors';

async function node() {
  const [fs, path] = await Promise.all([import('node:fs/promises'), import('node:path')]);
  return { fs, path };
}

const TRAIN_FLAGS = {
  init: 'string', config: 'string', data: 'string', tokenizer: 'string', batch: 'number', seq: 'number', steps: 'number',
  optimizer: 'string', lr: 'number', beta1: 'number', beta2: 'number', eps: 'number', 'weight-decay': 'number',
  'grad-clip': 'number', warmup: 'number', schedule: 'string', accum: 'number', seed: 'number', 'no-shuffle': 'boolean',
  log: 'string', save: 'string', resume: 'string', 'lora-rank': 'number', 'lora-alpha': 'number', 'lora-targets': 'string',
  freeze: 'string', 'log-every': 'number', autotune: 'boolean', precision: 'string', 'loss-scale': 'number',
} as const;

function int(f: Flags, k: string, d?: number): number {
  const v = f[k] === undefined ? d : Number(f[k]);
  if (v === undefined) throw new UsageError(`--${k} is required`);
  if (!Number.isInteger(v) || v < 0) throw new UsageError(`--${k} must be a non-negative integer, got ${f[k]}`);
  return v;
}

/** The tokenizer named by --tokenizer, else GPT-2's for a 50257-token vocabulary and bytes otherwise. */
async function loadTokenizer(f: Flags, vocab: number, check = true): Promise<Tokenizer> {
  const name = (f.tokenizer as string | undefined) ?? (vocab >= 50257 ? 'gpt2' : 'byte');
  const tok = await getTokenizer(name);
  if (check && tok.vocabSize > vocab) throw new UsageError(`the ${name} tokenizer has ${tok.vocabSize} tokens but the model's vocab_size is ${vocab}`);
  return tok;
}

export async function train(args: string[]): Promise<void> {
  const f = parseFlags(args, TRAIN_FLAGS);
  if (!f.data) throw new UsageError('--data FILE is required');
  const sources = [f.init, f.config, f.resume].filter(Boolean).length;
  if (sources !== 1) throw new UsageError('give exactly one of --init DIR, --config config.json, --resume DIR');
  const { fs, path } = await node();

  let hf: GPT2Config;
  let weights: Map<string, Float32Array> | undefined;
  let saved: { state: TrainingState; loader: LoaderState; options: Record<string, unknown> } | undefined;
  if (f.config) {
    let text: string;
    try {
      text = await fs.readFile(f.config as string, 'utf8');
    } catch {
      throw new UsageError(`cannot read ${f.config}`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new UsageError(`${f.config} is not valid JSON (${(e as Error).message})`);
    }
    hf = parseGPT2Config(json);
  } else {
    const folder = await readModelFolder((f.init ?? f.resume) as string);
    hf = folder.config;
    weights = folder.weights;
    if (f.resume) saved = await readState(f.resume as string, weights);
  }
  const { config, notes } = gptModelConfig(hf);
  notes.forEach((n) => console.error(n));

  const B = int(f, 'batch');
  const T = int(f, 'seq');
  const N = int(f, 'steps');
  const K = int(f, 'accum', 1);
  if (B < 1 || T < 1 || K < 1) throw new UsageError('--batch, --seq and --accum must be at least 1');
  if (T > config.n_positions) throw new UsageError(`--seq ${T} is longer than the model's n_positions = ${config.n_positions}`);
  // Token files (.bin) are already token ids: only their range is checked, not the tokenizer's vocabulary.
  const tokenizer = await loadTokenizer(f, config.vocab_size, !/\.bin$/i.test(f.data as string));
  const tokens = await readTokens(f.data as string, tokenizer);
  checkTokens(tokens, config.vocab_size);

  const type = (f.optimizer as string | undefined) ?? 'adamw';
  if (!['adamw', 'adam', 'sgd'].includes(type)) throw new UsageError(`--optimizer must be adamw, adam or sgd, got '${type}'`);
  const lr = f.lr === undefined ? 3e-4 : Number(f.lr);
  const wd = f['weight-decay'] === undefined ? 0 : Number(f['weight-decay']);
  const optimizer: OptimizerConfig =
    type === 'sgd'
      ? { type: 'sgd', lr, weightDecay: wd }
      : { type: type as 'adam' | 'adamw', lr, beta1: num(f, 'beta1', 0.9), beta2: num(f, 'beta2', 0.999), eps: num(f, 'eps', 1e-8), weightDecay: wd };
  const schedName = (f.schedule as string | undefined) ?? 'constant';
  if (!['constant', 'cosine'].includes(schedName)) throw new UsageError(`--schedule must be constant or cosine, got '${schedName}'`);
  const warmupSteps = int(f, 'warmup', 0);
  const schedule: Schedule = schedName === 'cosine' ? { type: 'cosine', warmupSteps, totalSteps: N } : { type: 'constant', warmupSteps };
  const seed = int(f, 'seed', 0);
  const lora = loraOptions(f);

  const shuffle = !f['no-shuffle'];
  const loaderOpts = { batchSize: B, seqLen: T, shuffle, seed };
  const loader = saved ? TokenLoader.restore(tokens, loaderOpts, saved.loader) : new TokenLoader(tokens, loaderOpts);

  const precision = (f.precision as string | undefined) ?? 'f32';
  if (precision !== 'f32' && precision !== 'f16') throw new UsageError(`--precision must be f32 or f16, got '${precision}'`);

  const rt = await createRuntime({ autotune: !!f.autotune });
  try {
    console.error(`adapter: ${adapterName(rt.adapterInfo)}`);
    if (precision === 'f16' && !rt.features.has('shader-f16')) throw new UsageError(`--precision f16 needs the adapter feature 'shader-f16', which this adapter does not offer`);
    const trainer = await Trainer.create(rt, new GPT(config, lora), {
      inputShape: [T], loss: 'cross-entropy', batchSize: B, accumSteps: K, optimizer, schedule, seed, precision,
      lossScale: f['loss-scale'] === undefined ? undefined : { initial: Number(f['loss-scale']) },
      gradClip: f['grad-clip'] === undefined ? undefined : Number(f['grad-clip']),
      decay: 'matrices',
      freeze: f.freeze ? String(f.freeze).split(',') : undefined,
      trainOnly: lora ? ['*.lora_A', '*.lora_B'] : undefined,
    });
    if (weights) trainer.writeParams(lora ? new Map([...weights].filter(([n]) => !/\.lora_[AB]$/.test(n))) : weights);
    if (saved) trainer.loadState(saved.state);
    if (trainer.stepCount >= N) throw new UsageError(`the run in ${f.resume} is already at step ${trainer.stepCount}; --steps ${N} asks for no more`);
    const params = trainer.parameters;
    const trained = params.filter((p) => trainer.isTrained(p.name));
    const count = (ps: { shape: readonly number[] }[]) => ps.reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0);
    console.error(
      `model: GPT-2 ${config.n_layer} layers, n_embd ${config.n_embd}, ${config.n_head} heads, vocab ${config.vocab_size}: ` +
        `${count(params)} parameters, ${count(trained)} trained${lora ? ` (LoRA rank ${lora.rank}, alpha ${lora.alpha} on ${lora.targets.join(', ')})` : ''}`,
    );
    console.error(`data: ${tokens.length} tokens (${tokenizer.name} tokenizer), ${loader.windows} batches of ${B}×${T} per epoch${shuffle ? ', shuffled' : ''}`);

    const log = f.log ? await fs.open(f.log as string, saved ? 'a' : 'w') : null;
    const tokensPerStep = B * T * K;
    const logEvery = int(f, 'log-every', Math.max(1, Math.round(N / 20)));
    const tty = process.stderr.isTTY;
    const start = performance.now();
    const first = trainer.stepCount;
    let last = start;
    const pending: { step: number; lr: number; read: Promise<StepStatus> }[] = [];
    const x = new Int32Array(K * B * T);
    const y = new Int32Array(K * B * T);
    const report = async (p: (typeof pending)[number]) => {
      const r = await p.read;
      const loss = r.loss;
      const now = performance.now();
      const ms = now - last;
      last = now;
      const line = {
        step: p.step, loss, lr: p.lr, ms: round(ms), tokens_per_s: round((tokensPerStep * 1000) / ms),
        ...(precision === 'f16' ? { loss_scale: r.lossScale, skipped_steps: r.skippedSteps } : {}),
      };
      await log?.write(JSON.stringify(line) + '\n');
      const done = p.step - first;
      const eta = ((now - start) / done) * (N - p.step);
      const text = `step ${p.step}/${N}  loss ${loss.toFixed(4)}  ${line.tokens_per_s.toFixed(0)} tok/s  ETA ${fmtTime(eta)}`;
      if (tty) process.stderr.write(`\r${text}  `);
      if (!tty && (p.step % logEvery === 0 || p.step === N)) console.error(text);
      if (!Number.isFinite(loss)) throw new Error(`the loss became ${loss} at step ${p.step}; stopping (lower --lr or set --grad-clip)`);
    };
    while (trainer.stepCount < N) {
      for (let k = 0; k < K; k++) {
        const b = loader.next();
        x.set(b.inputs, k * B * T);
        y.set(b.targets, k * B * T);
      }
      const lrNow = trainer.lr;
      pending.push({ step: trainer.stepCount + 1, lr: lrNow, read: trainer.step({ x, y }, { readLoss: true, status: true }) });
      if (pending.length > 2) await report(pending.shift()!);
    }
    while (pending.length) await report(pending.shift()!);
    if (tty) process.stderr.write('\n');
    await log?.close();
    const secs = (performance.now() - start) / 1000;
    console.error(`trained ${N - first} steps in ${secs.toFixed(1)} s: ${(((N - first) * tokensPerStep) / secs).toFixed(0)} tokens/s`);

    for (const line of rt.tuner?.report() ?? []) console.error(`autotune: ${line}`);
    if (f.save) await saveRun(f.save as string, hf, trainer, loader, lora, { ...f });
  } finally {
    rt.destroy();
  }
}

function loraOptions(f: Flags): LoraOptions | undefined {
  if (f['lora-rank'] === undefined) {
    if (f['lora-alpha'] !== undefined || f['lora-targets'] !== undefined) throw new UsageError('--lora-alpha and --lora-targets need --lora-rank');
    return undefined;
  }
  const rank = int(f, 'lora-rank');
  if (rank < 1) throw new UsageError('--lora-rank must be at least 1');
  const targets = String(f['lora-targets'] ?? 'c_attn').split(',');
  for (const t of targets) if (!['c_attn', 'c_proj', 'c_fc'].includes(t)) throw new UsageError(`--lora-targets: '${t}' is not one of c_attn, c_proj, c_fc`);
  return { rank, alpha: num(f, 'lora-alpha', rank), targets: targets as LoraOptions['targets'] };
}

function num(f: Flags, k: string, d: number): number {
  return f[k] === undefined ? d : Number(f[k]);
}

const round = (x: number) => Number(x.toPrecision(6));
const fmtTime = (ms: number) => (ms < 60_000 ? `${(ms / 1000).toFixed(0)}s` : `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`);

/** Model in the Hugging Face layout (LoRA merged), adapters alone, and the training state beside them. */
async function saveRun(dir: string, hf: GPT2Config, trainer: Trainer, loader: TokenLoader, lora: LoraOptions | undefined, flags: Flags) {
  const state = await trainer.readState();
  const model = lora ? mergeLora(state.params, lora) : state.params;
  const meta = { step: state.step, loader: loader.state(), options: flags, ...(state.lossScale ? { lossScale: state.lossScale } : {}) };
  const stateTensors = serializeSafetensors(
    [
      ...[...state.params].map(([n, d]) => ({ name: `param.${n}`, dtype: 'F32' as const, shape: [d.length], data: d })),
      ...[...state.m].map(([n, d]) => ({ name: `m.${n}`, dtype: 'F32' as const, shape: [d.length], data: d })),
      ...[...state.v].map(([n, d]) => ({ name: `v.${n}`, dtype: 'F32' as const, shape: [d.length], data: d })),
    ],
    { [STATE_META]: JSON.stringify(meta) },
  );
  const extra: Record<string, string | Uint8Array> = { [STATE_TENSORS]: stateTensors };
  if (lora) {
    const adapters = [...state.params].filter(([n]) => /\.lora_[AB]$/.test(n));
    extra[ADAPTERS] = serializeSafetensors(adapters.map(([n, d]) => ({ name: n, dtype: 'F32' as const, shape: trainer.parameters.find((p) => p.name === n)!.shape as number[], data: d })), { lora_rank: String(lora.rank), lora_alpha: String(lora.alpha), lora_targets: lora.targets.join(',') });
  }
  await writeModelFolder(dir, hf, model, extra);
  console.error(`saved ${dir}: config.json, model.safetensors${lora ? `, ${ADAPTERS}` : ''}, ${STATE_TENSORS} (step ${state.step})`);
}

async function readState(dir: string, weights: Map<string, Float32Array>) {
  const { fs, path } = await node();
  let meta: { step: number; loader: LoaderState; options: Record<string, unknown>; lossScale?: { scale: number; goodSteps: number } };
  let file;
  try {
    file = parseSafetensors(new Uint8Array(await fs.readFile(path.join(dir, STATE_TENSORS))));
    const text = file.metadata?.[STATE_META];
    if (!text) throw new Error(`its metadata has no '${STATE_META}' entry`);
    meta = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`--resume ${dir}: no readable training state in ${STATE_TENSORS}: ${(e as Error).message}`);
  }
  const pick = (prefix: string) => new Map(file.names.filter((n) => n.startsWith(prefix)).map((n) => [n.slice(prefix.length), file.tensorF32(n)]));
  // The exact parameters (LoRA adapters included) come from the state: model.safetensors may hold merged
  // weights, or (after an interrupted save) another step's.
  const params = pick('param.');
  for (const [n, w] of weights) if (!params.has(n)) params.set(n, w);
  return { state: { step: meta.step, params, m: pick('m.'), v: pick('v.'), lossScale: meta.lossScale }, loader: meta.loader, options: meta.options };
}

export async function generate(args: string[]): Promise<void> {
  const f = parseFlags(args, { init: 'string', prompt: 'string', 'max-new-tokens': 'number', temperature: 'number', 'top-k': 'number', seed: 'number', tokenizer: 'string' });
  if (!f.init) throw new UsageError('--init DIR is required');
  if (f.prompt === undefined) throw new UsageError('--prompt TEXT is required');
  const folder = await readModelFolder(f.init as string);
  const { config, notes } = gptModelConfig(folder.config);
  notes.filter((n) => !n.includes('dropout')).forEach((n) => console.error(n));
  const tokenizer = await loadTokenizer(f, config.vocab_size);
  const prompt = tokenizer.encode(String(f.prompt));
  if (prompt.length === 0) throw new UsageError('--prompt is empty after tokenization');
  if (prompt.length >= config.n_positions) throw new UsageError(`the prompt has ${prompt.length} tokens; n_positions is ${config.n_positions}`);
  const rt: Runtime = await createRuntime();
  try {
    const { graph } = buildGraph(new GPT(config), [1], 1, 'cross-entropy');
    const store = new ParamStore(rt, graph.params, { stateArenas: 0, weightDecay: 0 });
    for (const [n, w] of folder.weights) store.write(n, w);
    const gen = await Generator.create(rt, config, store);
    process.stdout.write(String(f.prompt));
    const ids: number[] = [];
    let shown = '';
    await gen.generate(prompt, {
      maxNewTokens: int(f, 'max-new-tokens', 64),
      temperature: num(f, 'temperature', 1),
      topK: int(f, 'top-k', 0),
      seed: int(f, 'seed', 0),
      onToken: (t) => {
        ids.push(t);
        const text = tokenizer.decode(ids);
        const stable = text.endsWith('\uFFFD') ? text.slice(0, text.lastIndexOf('\uFFFD')) : text;
        if (stable.length > shown.length) process.stdout.write(stable.slice(shown.length));
        shown = stable.length > shown.length ? stable : shown;
      },
    });
    const text = tokenizer.decode(ids);
    if (text.length > shown.length) process.stdout.write(text.slice(shown.length));
    process.stdout.write('\n');
    gen.destroy();
    store.destroy();
  } finally {
    rt.destroy();
  }
}

export async function inspect(args: string[]): Promise<void> {
  if (args.length !== 1) throw new UsageError('usage: wgsl-train inspect FILE.safetensors|DIR');
  const { fs, path } = await node();
  let target = args[0];
  let stat;
  try {
    stat = await fs.stat(target);
  } catch {
    throw new UsageError(`${target}: no such file or folder`);
  }
  if (stat.isDirectory()) {
    const folder = await readModelFolder(target);
    const c = folder.config;
    console.log(`config: GPT-2, ${c.n_layer} layers, n_embd ${c.n_embd}, ${c.n_head} heads, vocab ${c.vocab_size}, n_positions ${c.n_positions}`);
    target = path.join(target, 'model.safetensors');
  }
  const bytes = new Uint8Array(await fs.readFile(target));
  const file = parseSafetensors(bytes);
  for (const line of describeSafetensors(file).lines) console.log(line);
}
