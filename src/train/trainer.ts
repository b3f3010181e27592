// The Trainer: compiles a model once into a recorded training step and replays it.
//   step(batch): write the batch and the step's values → encode the recorded step → one submit;
//   the loss is read back only when asked for, asynchronously, through a small pool of staging buffers.
// fit() runs epochs over arrays with seeded shuffling, evaluation and progress events.
import type { Layer, Tensor } from '../graph/graph.ts';
import { ShapeError } from '../graph/graph.ts';
import { createStorage, readBuffer, readF32, readFloats, writeArray, writeArrayRange, type View } from '../gpu/buffers.ts';
import { encodeCommands } from '../gpu/program.ts';
import { profileCommands, type KernelTime } from '../gpu/profile.ts';
import { DeviceLostError, adapterName, type Runtime } from '../gpu/device.ts';
import { CLIP_STATUS_FLOATS, learningRate, stateArenas, stepValues, withDefaults, type OptimizerConfig, type Schedule } from '../optim/optimizer.ts';
import type { LossKind } from '../nn/loss.ts';
import { ParamStore } from './params.ts';
import { buildGraph, checkLimits, compileForward, compileTrainingStep, type BatchSlot, type ModelGraph, type Precision, type Program } from './compile.ts';
import { checkBatch, type Batch, type Dataset } from './batch.ts';
import { prng, shuffled } from './random.ts';

export interface TrainerOptions {
  /** Shape of one sample, e.g. [784]. */
  inputShape: number[];
  loss: LossKind;
  optimizer: OptimizerConfig;
  /** Rows per micro-batch. */
  batchSize: number;
  /** Micro-batches per optimizer step (gradient accumulation); a step's batch has batchSize·accumSteps rows. */
  accumSteps?: number;
  /** Clip the global gradient norm to this value (torch.nn.utils.clip_grad_norm_). */
  gradClip?: number;
  schedule?: Schedule;
  /** Which parameters get weight decay: all (torch's default) or only matrices (rank ≥ 2, as nanoGPT). */
  decay?: 'all' | 'matrices';
  /** Names of parameters not to train (exact names, or globs with *). */
  freeze?: string[];
  /** Train only the parameters matching these names or globs (e.g. LoRA adapters: ['*.lora_A', '*.lora_B']). */
  trainOnly?: string[];
  /** Seeds parameter initialisation and shuffling. */
  seed?: number;
  /**
   * What a non-finite loss or gradient (NaN, ±Inf, or a gradient norm that overflows) does. It is detected
   * on the GPU every step (one small reduction over the gradients, no readback) and the optimizer then
   * leaves parameters and moments untouched. 'stop' (default): that step and every later one update
   * nothing, and the next loss read (step with readLoss, fit's logging, checkNonFinite(), readState())
   * rejects with a NonFiniteError naming the step, after which step() throws it. 'skip': only that
   * step's update is skipped and counted in skippedSteps; its loss reads as NaN or Infinity. A skipped
   * step still counts as a step (stepCount, the schedule and Adam's bias correction move on).
   */
  nonFinite?: 'skip' | 'stop';
  /**
   * 'f32' (default) or 'f16': mixed precision where the adapter offers `shader-f16`. Activations, their
   * gradients and the matmuls' operands are f16 (an f16 copy of the weights is refreshed after every
   * update); products and reductions accumulate in f32; parameters, their gradients, the optimizer state
   * and the loss stay f32. The loss gradient is multiplied by a dynamic loss scale, and the gradients are
   * divided by it before clipping and the update: a step whose scaled gradients overflow f16 is skipped
   * and halves the scale, and `growthInterval` good steps in a row double it (torch.cuda.amp.GradScaler's
   * rule). Such skips are part of mixed precision: they are counted in skippedSteps, never an error.
   */
  precision?: Precision;
  /** Mixed precision's loss scale: its first value (default 2^16) and the good steps before it doubles (default 2000). */
  lossScale?: { initial?: number; growthInterval?: number };
}

/**
 * A NaN or infinity in the loss or gradients of `step` (1-based), with nonFinite: 'stop'. The update of
 * that step was not applied: the parameters and optimizer state are those after step − 1.
 */
export class NonFiniteError extends Error {
  override name = 'NonFiniteError';
  constructor(
    readonly step: number,
    message: string,
  ) {
    super(message);
  }
}

/** A step's loss with the status words read back with it (step(batch, { readLoss: true, status: true })). */
export interface StepStatus {
  loss: number;
  /** Mixed precision's loss scale after this step (it halved if this step overflowed); 1 in f32. */
  lossScale: number;
  /** Steps skipped so far, this one included if it was. */
  skippedSteps: number;
}

export interface Progress {
  step: number;
  epoch: number;
  loss: number;
  lr: number;
  /** Mean wall time per optimizer step since the last event. */
  msPerStep: number;
  samplesPerSec: number;
  /** Achieved GFLOP/s: FLOPs counted per dispatch, over the measured wall time. */
  gflops: number;
}

export interface FitOptions {
  epochs?: number;
  /** Stop after this many optimizer steps (overrides epochs when smaller). */
  steps?: number;
  shuffle?: boolean;
  /** Read the loss and report progress every k steps (default 10). */
  logEvery?: number;
  onProgress?: (p: Progress) => void;
  validation?: Dataset;
  onEpoch?: (e: { epoch: number; validation?: { loss: number; accuracy?: number } }) => void;
}

export interface TrainingState {
  /** Optimizer steps taken. */
  step: number;
  params: Map<string, Float32Array>;
  /** Adam's first moments, or SGD's momentum buffers (empty when the optimizer keeps none). */
  m: Map<string, Float32Array>;
  /** Adam's second moments (empty otherwise). */
  v: Map<string, Float32Array>;
  /** Mixed precision's loss scale and its count of good steps since it last changed (absent in f32). */
  lossScale?: { scale: number; goodSteps: number };
}

export interface History {
  losses: { step: number; loss: number }[];
  validation: { epoch: number; loss: number; accuracy?: number }[];
}

const STEP_ENCODER: GPUCommandEncoderDescriptor = { label: 'training step' };
const NO_LOSS: Promise<undefined> = Promise.resolve(undefined);

/** Validates the options, compiles, and returns the Trainer (all pipelines created, params initialised). */
export class Trainer {
  readonly mg: ModelGraph;
  readonly store: ParamStore;
  /** Optimizer steps taken. */
  stepCount = 0;
  private readonly optimizer: Required<OptimizerConfig>;
  private readonly microBatches: number;
  private readonly stepUniform: GPUBuffer;
  private readonly lossScalar: View;
  private readonly clip: View;
  private program!: Program;
  private readonly forwardPrograms = new Map<number, Promise<{ mg: ModelGraph; program: Program }>>();
  private readonly staging: GPUBuffer[] = [];
  private readonly inFlight: Promise<unknown>[] = [];
  private destroyed = false;
  private readonly frozen: ReadonlySet<string>;
  /** Reused every step, so that a step allocates nothing on the JS side beyond the WebGPU objects it must. */
  private readonly stepValues = new Float32Array(4);
  private readonly submitList: GPUCommandBuffer[] = [];
  /** Counts micro-batches written (aux tensors are computed once per stamp). */
  private stamp = 0;
  private readonly nonFinite: 'skip' | 'stop';
  readonly precision: Precision;
  private readonly growthInterval: number;
  /** The loss scale as last read back (1 in f32). */
  private currentScale: number;
  /** Skipped steps as last read back from the GPU. */
  private skipped = 0;
  /** Set once a loss read has reported a non-finite step under 'stop'; step() throws it from then on. */
  private fault: NonFiniteError | null = null;
  /** Bumped by loadState(), which clears a stop: reads of steps submitted before it do not set `fault`. */
  private faultEpoch = 0;

  private constructor(
    readonly rt: Runtime,
    readonly model: Layer,
    readonly options: TrainerOptions,
  ) {
    const o = options;
    if (!Array.isArray(o.inputShape) || o.inputShape.some((d) => !Number.isInteger(d) || d < 1)) {
      throw new ShapeError(`inputShape must be positive integers, got ${JSON.stringify(o.inputShape)}`);
    }
    if (!Number.isInteger(o.batchSize) || o.batchSize < 1) throw new ShapeError(`batchSize must be a positive integer, got ${o.batchSize}`);
    this.microBatches = o.accumSteps ?? 1;
    if (!Number.isInteger(this.microBatches) || this.microBatches < 1) throw new Error(`accumSteps must be a positive integer, got ${o.accumSteps}`);
    if (o.gradClip !== undefined && !(o.gradClip > 0 && Number.isFinite(o.gradClip))) throw new Error(`gradClip must be a finite number > 0, got ${o.gradClip}`);
    this.nonFinite = o.nonFinite ?? 'stop';
    if (this.nonFinite !== 'skip' && this.nonFinite !== 'stop') throw new Error(`nonFinite must be 'skip' or 'stop', got ${JSON.stringify(o.nonFinite)}`);
    this.optimizer = withDefaults(o.optimizer);
    this.precision = o.precision ?? 'f32';
    if (this.precision !== 'f32' && this.precision !== 'f16') throw new Error(`precision must be 'f32' or 'f16', got ${JSON.stringify(o.precision)}`);
    if (this.precision === 'f16' && !rt.features.has('shader-f16')) {
      throw new Error(`precision 'f16' needs the adapter feature 'shader-f16', which ${adapterName(rt.adapterInfo)} does not offer; use precision 'f32'`);
    }
    const initialScale = o.lossScale?.initial ?? 2 ** 16;
    this.growthInterval = o.lossScale?.growthInterval ?? 2000;
    if (!(initialScale > 0 && Number.isFinite(initialScale))) throw new Error(`lossScale.initial must be a finite number > 0, got ${initialScale}`);
    if (!Number.isInteger(this.growthInterval) || this.growthInterval < 1) throw new Error(`lossScale.growthInterval must be a positive integer, got ${this.growthInterval}`);
    this.mg = buildGraph(model, o.inputShape, o.batchSize, o.loss, rt.device.limits.maxStorageBufferBindingSize, this.precision);
    const frozen = frozenSet(this.mg, o.freeze ?? []);
    if (o.trainOnly) {
      const kept = globMatches(this.mg, o.trainOnly, 'trainOnly');
      for (const p of this.mg.graph.params) if (!kept.has(p.tensor)) frozen.add(p.tensor);
    }
    if (frozen.size === this.mg.graph.params.length) throw new Error('every parameter is frozen: nothing to train');
    this.frozen = new Set([...frozen].map((t) => t.name));
    // Every tensor against the binding limit and the arena against the buffer limit, before any allocation.
    checkLimits(rt, this.mg);
    this.store = new ParamStore(rt, this.mg.graph.params, {
      frozen,
      decays: o.decay === 'matrices' ? (t) => t.shape.length >= 2 : () => true,
      stateArenas: stateArenas(this.optimizer),
      weightDecay: this.optimizer.weightDecay,
      f16Operands: this.precision === 'f16',
    });
    const device = rt.device;
    this.stepUniform = device.createBuffer({ label: 'optimizer step values', size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    this.lossScalar = { buffer: createStorage(device, 16, 'loss'), offset: 0, size: 16 };
    // [norm, scale, skip this step, skipped steps, first non-finite step (stop), 0, 0, 0]: see grad_norm.wgsl.
    this.clip = { buffer: createStorage(device, CLIP_STATUS_FLOATS * 4, 'gradient clip and non-finite status'), offset: 0, size: CLIP_STATUS_FLOATS * 4 };
    // Mixed precision: [5] the loss scale, [6] good steps since it last changed (1 and 0 in f32, unused).
    this.currentScale = this.precision === 'f16' ? initialScale : 1;
    writeArray(device, this.clip.buffer, 0, new Float32Array([0, 1, 0, 0, 0, this.currentScale, 0, 0]));
  }

  static async create(rt: Runtime, model: Layer, options: TrainerOptions): Promise<Trainer> {
    rt.assertAlive('Trainer.create');
    const t = new Trainer(rt, model, options);
    try {
      t.store.initialize(prng(options.seed ?? 0));
      await t.store.prepareOperands();
      t.program = await compileTrainingStep(rt, t.mg, t.store, {
        microBatches: t.microBatches,
        optimizer: t.optimizer,
        gradClip: options.gradClip,
        nonFinite: t.nonFinite,
        growthInterval: t.precision === 'f16' ? t.growthInterval : 0,
        stepUniform: t.stepUniform,
        lossScalar: t.lossScalar,
        clip: t.clip,
      });
    } catch (e) {
      t.destroy(); // no buffers left behind by a model that failed to compile
      throw e;
    }
    return t;
  }

  /** Rows one step() takes: batchSize · accumSteps. */
  get stepRows(): number {
    return this.options.batchSize * this.microBatches;
  }

  /** FLOPs of one optimizer step, summed over its dispatches. */
  get flopsPerStep(): number {
    return this.program.cost.flops;
  }

  /** Number of compute dispatches in one step. */
  get dispatchesPerStep(): number {
    return this.program.rec.commands.filter((c) => c.kind === 'dispatch').length;
  }

  /**
   * CPU cost of one step's encoding: the mean milliseconds to encode the recorded step into a command
   * encoder and finish it, over `iterations` encodes that are never submitted (nothing runs on the GPU).
   */
  measureEncode(iterations = 10): number {
    this.assertUsable('measureEncode');
    const t0 = performance.now();
    for (let i = 0; i < iterations; i++) {
      const encoder = this.rt.device.createCommandEncoder({ label: 'encode timing' });
      encodeCommands(encoder, this.program.rec.commands);
      encoder.finish();
    }
    return (performance.now() - t0) / iterations;
  }

  /** Number of recorded commands in one step (dispatches, clears, copies). */
  get commandsPerStep(): number {
    return this.program.rec.commands.length;
  }

  /**
   * Steps whose update was skipped because the loss or a gradient was not finite (with 'stop', the faulty
   * step and every step after it), as of the last loss read: the count lives on the GPU and comes back
   * with each loss read, checkNonFinite() and readState().
   */
  get skippedSteps(): number {
    return this.skipped;
  }

  /**
   * Mixed precision's dynamic loss scale as of the last loss read (it lives on the GPU and comes back with
   * each loss read, checkNonFinite() and readState()); 1 in f32.
   */
  get lossScale(): number {
    return this.currentScale;
  }

  /** The learning rate the next step will use. */
  get lr(): number {
    return learningRate(this.options.schedule, this.optimizer.lr, this.stepCount);
  }

  /**
   * One optimizer step on `batch` (stepRows rows). Encodes into one command encoder and submits once.
   * Returns the step's mean loss if `readLoss`, else undefined without waiting for the GPU; with `status`
   * also, the loss scale and skipped-step count as of this very step (read back in the same copy).
   */
  step(batch: Batch, opts: { readLoss: true; status: true }): Promise<StepStatus>;
  step(batch: Batch, opts: { readLoss: true }): Promise<number>;
  step(batch: Batch, opts?: { readLoss?: boolean }): Promise<number | undefined>;
  step(batch: Batch, opts: { readLoss?: boolean; status?: boolean } = {}): Promise<number | StepStatus | undefined> {
    this.assertUsable('step');
    this.writeStep(batch);
    const device = this.rt.device;
    const encoder = device.createCommandEncoder(STEP_ENCODER);
    encodeCommands(encoder, this.program.rec.commands, this.rt.debug);
    const staging = opts.readLoss ? this.takeStaging() : null;
    if (staging) {
      encoder.copyBufferToBuffer(this.lossScalar.buffer, 0, staging, 0, 16);
      encoder.copyBufferToBuffer(this.clip.buffer, 0, staging, 16, CLIP_STATUS_FLOATS * 4);
    }
    this.submitList[0] = encoder.finish();
    device.queue.submit(this.submitList);
    this.submitList.length = 0;
    this.stepCount++;
    if (!staging) return NO_LOSS;
    const read = this.readStaging(staging, this.stepCount);
    return opts.status ? read : read.then((r) => r.loss);
  }

  /**
   * Runs one real training step on `batch` with a timestamp around every dispatch and returns each
   * kernel's GPU time (the weights are updated as by step()). Throws TimestampsUnavailableError where the
   * adapter has no timestamp-query.
   */
  async profile(batch: Batch): Promise<KernelTime[]> {
    this.assertUsable('profile');
    this.writeStep(batch);
    const times = await profileCommands(this.rt, this.program.rec.commands);
    this.stepCount++;
    return times;
  }

  /** Checks the batch, then writes it (micro-batch by micro-batch) and the step's optimizer values. */
  private writeStep(batch: Batch): void {
    const { batchSize } = this.options;
    checkBatch(this.mg, batch, this.stepRows, this.options.loss);
    this.store.syncOperands();
    for (let i = 0; i < this.program.batches.length; i++) {
      writeSlot(this.rt.device, this.mg, this.program.batches[i], batch.x, batch.y, i * batchSize, this.stamp++);
    }
    stepValues(this.optimizer, this.lr, this.stepCount + 1, this.stepValues);
    writeArray(this.rt.device, this.stepUniform, 0, this.stepValues);
  }

  private takeStaging(): GPUBuffer {
    return (
      this.staging.pop() ??
      this.rt.device.createBuffer({ label: 'loss and status readback', size: 16 + CLIP_STATUS_FLOATS * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST })
    );
  }

  /** Reads a step's loss (and the non-finite status words copied beside it); rejects as documented on step(). */
  private async readStaging(staging: GPUBuffer, step: number): Promise<StepStatus> {
    const epoch = this.faultEpoch;
    let words: Float32Array;
    try {
      await staging.mapAsync(GPUMapMode.READ);
      words = new Float32Array(staging.getMappedRange().slice(0));
      staging.unmap();
    } catch (e) {
      staging.destroy();
      throw await this.failure(`step ${step}: reading the loss`, e);
    }
    if (this.destroyed) staging.destroy();
    else this.staging.push(staging);
    const loss = words[0];
    const status = words.subarray(4);
    this.noteStatus(status, epoch, step === status[4] ? loss : undefined);
    return { loss, lossScale: this.precision === 'f16' ? status[5] : 1, skippedSteps: status[3] };
  }

  /**
   * Takes the status words [norm, scale, skip, skipped, first bad step] read back after some step: updates
   * skippedSteps and, under 'stop', throws the NonFiniteError (kept for step() unless a loadState() came
   * between the read's submit and now).
   */
  private noteStatus(status: Float32Array, epoch: number, loss?: number): void {
    this.skipped = Math.max(this.skipped, status[3]);
    if (this.precision === 'f16') this.currentScale = status[5];
    const first = status[4];
    if (this.nonFinite !== 'stop' || first === 0) return;
    const err =
      epoch === this.faultEpoch && this.fault
        ? this.fault
        : new NonFiniteError(
            first,
            `step ${first}: the loss${loss === undefined ? '' : ` (${loss})`} or a gradient (norm ${loss === undefined ? 'not read' : status[0]}) is not finite; ` +
              `with nonFinite: 'stop' its update was skipped and training stopped, so the parameters and optimizer state are those after step ${first - 1} ` +
              `(readParams() returns them). Lower the learning rate or set gradClip, then loadState() a good checkpoint to continue, or use nonFinite: 'skip'.`,
          );
    if (epoch === this.faultEpoch) this.fault = err;
    throw err;
  }

  /**
   * Reads the non-finite status from the GPU now (one 32-byte readback): updates skippedSteps and, with
   * nonFinite 'stop', rejects with the NonFiniteError if a submitted step had a NaN or infinity.
   */
  async checkNonFinite(): Promise<void> {
    await this.readStatus();
  }

  /** checkNonFinite(), returning the status words it read. */
  private async readStatus(): Promise<Float32Array> {
    this.assertUsable('checkNonFinite', false);
    const epoch = this.faultEpoch;
    const status = await this.guard('checkNonFinite', async () => new Float32Array(await readBuffer(this.rt.device, this.clip.buffer, 0, CLIP_STATUS_FLOATS * 4)));
    this.noteStatus(status, epoch);
    return status;
  }

  /** The error for a failed GPU wait: DeviceLostError if the device went, a clear one if this Trainer was destroyed. */
  private async failure(what: string, e: unknown): Promise<unknown> {
    if (this.destroyed && this.rt.lostReason === null) return new Error(`${what}: this Trainer was destroyed before the GPU answered`, { cause: e });
    return (await this.rt.lostError(what)) ?? e;
  }

  /** Runs a GPU read, turning a failure caused by device loss into a DeviceLostError. */
  private async guard<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof NonFiniteError || e instanceof ShapeError) throw e;
      throw await this.failure(what, e);
    }
  }

  /** Waits until the GPU has finished all submitted steps. */
  async sync(): Promise<void> {
    await this.guard('sync', () => this.rt.device.queue.onSubmittedWorkDone());
    this.rt.assertAlive('sync');
  }

  /** Trains over `data` for epochs (or a number of steps), reporting progress; the last partial batch is dropped. */
  async fit(data: Dataset, opts: FitOptions = {}): Promise<History> {
    const rows = data.y.length / (this.mg.labels.size / this.options.batchSize);
    const inRow = this.mg.input.size / this.options.batchSize;
    const labelRow = this.mg.labels.size / this.options.batchSize;
    const perEpoch = Math.floor(rows / this.stepRows);
    if (perEpoch < 1) throw new ShapeError(`fit: ${rows} samples are fewer than one step's ${this.stepRows} rows`);
    const epochs = opts.epochs ?? (opts.steps ? Math.ceil(opts.steps / perEpoch) : 1);
    const totalSteps = Math.min(opts.steps ?? Infinity, epochs * perEpoch);
    const logEvery = Math.max(1, opts.logEvery ?? 10);
    const history: History = { losses: [], validation: [] };
    const random = prng((this.options.seed ?? 0) + 1);
    const x = this.mg.input.dtype === 'i32' ? new Int32Array(this.stepRows * inRow) : new Float32Array(this.stepRows * inRow);
    const y = this.options.loss === 'cross-entropy' ? new Int32Array(this.stepRows * labelRow) : new Float32Array(this.stepRows * labelRow);
    let done = 0;
    let t0 = performance.now();
    let stepsSince = 0;
    try {
      for (let epoch = 0; epoch < epochs && done < totalSteps; epoch++) {
        const order = opts.shuffle === false ? Array.from({ length: rows }, (_, i) => i) : shuffled(rows, random);
        for (let s = 0; s < perEpoch && done < totalSteps; s++) {
          for (let r = 0; r < this.stepRows; r++) {
            const src = order[s * this.stepRows + r];
            x.set(data.x.subarray(src * inRow, (src + 1) * inRow), r * inRow);
            y.set(data.y.subarray(src * labelRow, (src + 1) * labelRow), r * labelRow);
          }
          const lr = this.lr;
          const log = (done + 1) % logEvery === 0 || done + 1 === totalSteps;
          const lossP = this.step({ x, y }, { readLoss: log });
          lossP.catch(() => {}); // awaited below; meanwhile its rejection (device lost, non-finite) is not "unhandled"
          done++;
          stepsSince++;
          // Keep at most two steps queued: the CPU prepares step k+1 while the GPU runs step k.
          const idle = this.rt.device.queue.onSubmittedWorkDone();
          idle.catch(() => {});
          this.inFlight.push(idle);
          if (this.inFlight.length > 2) await this.guard('fit', () => this.inFlight.shift()!);
          if (log) {
            const loss = (await lossP)!;
            const ms = (performance.now() - t0) / stepsSince;
            history.losses.push({ step: this.stepCount, loss });
            opts.onProgress?.({
              step: this.stepCount, epoch, loss, lr, msPerStep: ms,
              samplesPerSec: (this.stepRows * 1000) / ms,
              gflops: this.flopsPerStep / (ms * 1e6),
            });
            t0 = performance.now();
            stepsSince = 0;
          }
        }
        if (opts.validation) {
          const v = await this.evaluate(opts.validation);
          history.validation.push({ epoch, ...v });
          opts.onEpoch?.({ epoch, validation: v });
          t0 = performance.now();
        } else opts.onEpoch?.({ epoch });
      }
      await this.guard('fit', () => Promise.all(this.inFlight.splice(0)));
    } finally {
      this.inFlight.splice(0); // after a failure: their rejections, if any, are already handled
    }
    this.rt.assertAlive('fit');
    return history;
  }

  private forwardProgram(rows: number): Promise<{ mg: ModelGraph; program: Program }> {
    let p = this.forwardPrograms.get(rows);
    if (!p) {
      p = (async () => {
        const mg = buildGraph(this.model, this.options.inputShape, rows, this.options.loss, this.rt.device.limits.maxStorageBufferBindingSize, this.precision);
        return { mg, program: await compileForward(this.rt, mg, this.store, this.lossScalar) };
      })();
      this.forwardPrograms.set(rows, p);
    }
    return p;
  }

  private async runForward(x: Float32Array | Int32Array, y: Int32Array | Float32Array | null, rows: number) {
    const { mg, program } = await this.forwardProgram(rows);
    // Predict has no labels: zeros are valid class indices and targets.
    writeSlot(this.rt.device, mg, program.batches[0], x, y ?? new Int32Array(mg.labels.size), 0, this.stamp++);
    this.store.syncOperands();
    const encoder = this.rt.device.createCommandEncoder({ label: 'forward' });
    encodeCommands(encoder, program.rec.commands, this.rt.debug);
    this.rt.device.queue.submit([encoder.finish()]);
    const readOut = async (t: Tensor) => readFloats(this.rt.device, { buffer: program.slots[program.plan.value.get(t)!], offset: 0, size: t.bytes, ...(t.dtype === 'f16' ? { dtype: 'f16' as const } : {}) }, t.size);
    const parts = mg.graph.parts.get(mg.output);
    return this.guard('forward', async () => {
      let out: Float32Array;
      if (!parts) out = await readOut(mg.output);
      else {
        // Logits split by vocabulary chunk ([R, n_c] each): reassembled into the usual [R, V] rows.
        const V = mg.output.shape[mg.output.shape.length - 1];
        const R = mg.output.size / V;
        out = new Float32Array(mg.output.size);
        let v0 = 0;
        for (const p of parts) {
          const n = p.shape[1];
          const part = await readOut(p);
          for (let r = 0; r < R; r++) out.set(part.subarray(r * n, (r + 1) * n), r * V + v0);
          v0 += n;
        }
      }
      const loss = (await readF32(this.rt.device, this.lossScalar))[0];
      this.rt.assertAlive('forward');
      return { out, loss };
    });
  }

  /** Model outputs for `x` (rows × inputShape), in chunks of batchSize. */
  async predict(x: Float32Array | Int32Array): Promise<Float32Array> {
    this.assertUsable('predict', false);
    const inRow = this.mg.input.size / this.options.batchSize;
    if (x.length % inRow !== 0) throw new ShapeError(`predict: ${x.length} values are not a whole number of rows of ${inRow}`);
    const rows = x.length / inRow;
    const outRow = this.mg.output.size / this.options.batchSize;
    const out = new Float32Array(rows * outRow);
    for (let r = 0; r < rows; r += this.options.batchSize) {
      const n = Math.min(this.options.batchSize, rows - r);
      const res = await this.runForward(x.subarray(r * inRow, (r + n) * inRow), null, n);
      out.set(res.out, r * outRow);
    }
    return out;
  }

  /** Mean loss (and accuracy, for cross-entropy) over a dataset. */
  async evaluate(data: Dataset): Promise<{ loss: number; accuracy?: number }> {
    this.assertUsable('evaluate', false);
    const B = this.options.batchSize;
    const inRow = this.mg.input.size / B;
    const labelRow = this.mg.labels.size / B;
    const rows = data.y.length / labelRow;
    checkBatch(this.mg, data, rows, this.options.loss);
    let lossSum = 0;
    let correct = 0;
    let count = 0;
    const outRow = this.mg.output.size / B;
    for (let r = 0; r < rows; r += B) {
      const n = Math.min(B, rows - r);
      const yb = data.y.subarray(r * labelRow, (r + n) * labelRow);
      const { out, loss } = await this.runForward(data.x.subarray(r * inRow, (r + n) * inRow), yb, n);
      lossSum += loss * n;
      if (this.options.loss === 'cross-entropy') {
        const V = this.mg.output.shape[this.mg.output.shape.length - 1];
        const positions = (n * outRow) / V;
        for (let p = 0; p < positions; p++) {
          let best = 0;
          for (let v = 1; v < V; v++) if (out[p * V + v] > out[p * V + best]) best = v;
          if (best === yb[p]) correct++;
        }
        count += positions;
      }
    }
    return this.options.loss === 'cross-entropy' ? { loss: lossSum / rows, accuracy: correct / count } : { loss: lossSum / rows };
  }

  /** Current parameter values by name (reads back from the GPU). */
  readParams(): Promise<Map<string, Float32Array>> {
    this.assertUsable('readParams', false);
    return this.guard('readParams', () => this.store.read('params'));
  }

  /** Gradients of the last step by name. */
  readGrads(): Promise<Map<string, Float32Array>> {
    this.assertUsable('readGrads', false);
    return this.guard('readGrads', () => this.store.read('grads'));
  }

  /** Writes parameters by name; every value must be finite (checked on the host before anything is written). */
  writeParams(values: Map<string, Float32Array> | Record<string, Float32Array>): void {
    const entries = values instanceof Map ? [...values] : Object.entries(values);
    for (const [name, data] of entries) checkFinite('writeParams', name, data);
    for (const [name, data] of entries) this.store.write(name, data);
  }

  /**
   * Everything needed to continue training bit-identically: parameters, optimizer moments and the step
   * count (the data position is the caller's, e.g. TokenLoader.state()).
   */
  async readState(): Promise<TrainingState> {
    this.assertUsable('readState');
    const step = this.stepCount;
    // With 'stop', a checkpoint of a stopped run would claim steps whose updates were never applied.
    const status = await this.readStatus();
    return this.guard('readState', async () => {
      const state: TrainingState = { step, params: await this.store.read('params'), m: new Map(), v: new Map() };
      if (this.precision === 'f16') state.lossScale = { scale: status[5], goodSteps: status[6] };
      const arenas = stateArenas(this.optimizer);
      if (arenas >= 1) state.m = await this.store.read('m');
      if (arenas >= 2) state.v = await this.store.read('v');
      return state;
    });
  }

  loadState(state: TrainingState): void {
    if (!Number.isInteger(state.step) || state.step < 0) throw new Error(`training state: step must be a non-negative integer, got ${state.step}`);
    const arenas = stateArenas(this.optimizer);
    const writes: [name: string, data: Float32Array, which: 'params' | 'm' | 'v'][] = [];
    for (const [which, map, needed] of [['params', state.params, true], ['m', state.m, arenas >= 1], ['v', state.v, arenas >= 2]] as const) {
      if (!needed) continue;
      for (const p of this.mg.graph.params) {
        const data = map.get(p.tensor.name);
        if (!data) throw new Error(`training state: no '${which}' values for ${p.tensor.name}`);
        checkFinite(`training state '${which}'`, p.tensor.name, data);
        writes.push([p.tensor.name, data, which]);
      }
    }
    const ls = state.lossScale;
    if (ls && !(ls.scale > 0 && Number.isFinite(ls.scale) && Number.isInteger(ls.goodSteps) && ls.goodSteps >= 0)) {
      throw new Error(`training state: lossScale must be a finite scale > 0 and a whole number of good steps, got ${JSON.stringify(ls)}`);
    }
    for (const [name, data, which] of writes) this.store.write(name, data, which);
    this.stepCount = state.step;
    if (ls && this.precision === 'f16') {
      writeArray(this.rt.device, this.clip.buffer, 20, new Float32Array([ls.scale, ls.goodSteps]));
      this.currentScale = ls.scale;
    }
    // Clears a 'stop': the GPU's sticky first-bad-step word, and the error step() would throw.
    writeArray(this.rt.device, this.clip.buffer, 16, new Float32Array([0]));
    this.fault = null;
    this.faultEpoch++;
  }

  /** Whether the optimizer updates this parameter (not frozen). */
  isTrained(name: string): boolean {
    return !this.frozen.has(name);
  }

  /** Parameter names and shapes, in arena order. */
  get parameters(): { name: string; shape: readonly number[] }[] {
    return this.mg.graph.params.map((p) => ({ name: p.tensor.name, shape: p.tensor.shape }));
  }

  /** Throws if this Trainer cannot run `what`: destroyed, device lost, or (training only) stopped by a non-finite step. */
  private assertUsable(what: string, training = true) {
    if (this.destroyed) throw new Error(`${what}: this Trainer was destroyed`);
    if (this.rt.lostReason !== null) throw new DeviceLostError(`${what}: the WebGPU device was lost (${this.rt.lostReason})`);
    if (training && this.fault) throw this.fault;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.program?.destroy();
    for (const p of this.forwardPrograms.values()) void p.then((f) => f.program.destroy(), () => {});
    this.store.destroy();
    for (const b of [this.stepUniform, this.lossScalar.buffer, this.clip.buffer, ...this.staging]) b.destroy();
  }
}

/** Throws naming the first NaN or infinity in `data` (a parameter or optimizer state written from the host). */
function checkFinite(what: string, name: string, data: Float32Array): void {
  for (let i = 0; i < data.length; i++) {
    // x − x is 0 for every finite x and NaN for NaN and ±Infinity: one subtraction per value.
    if (data[i] - data[i] !== 0) throw new Error(`${what}: ${name}[${i}] is ${data[i]}: values must be finite`);
  }
}

/** Writes one micro-batch: input, labels, and the aux tensors computed from the input. */
function writeSlot(
  device: GPUDevice,
  mg: ModelGraph,
  slot: BatchSlot,
  x: Float32Array | Int32Array,
  y: Int32Array | Float32Array,
  row0: number,
  stamp: number,
) {
  const rows = mg.input.shape[0];
  const inRow = mg.input.size / rows;
  const labelRow = mg.labels.size / rows;
  writeArrayRange(device, slot.input.buffer, x, row0 * inRow, rows * inRow);
  writeArrayRange(device, slot.labels.buffer, y, row0 * labelRow, rows * labelRow);
  for (const a of mg.graph.aux) {
    const v = a.compute(x, row0 * inRow, rows * inRow, stamp);
    writeArrayRange(device, slot.aux.get(a.tensor)!.buffer, v, 0, v.length);
  }
}

function frozenSet(mg: ModelGraph, patterns: string[]): Set<Tensor> {
  return globMatches(mg, patterns, 'freeze');
}

/** Parameters matching any of the globs (`*` matches any run of characters); a glob matching nothing is an error. */
function globMatches(mg: ModelGraph, patterns: string[], what: string): Set<Tensor> {
  const out = new Set<Tensor>();
  for (const pat of patterns) {
    const re = new RegExp('^' + pat.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$');
    const hits = mg.graph.params.filter((p) => re.test(p.tensor.name));
    if (hits.length === 0) {
      const names = mg.graph.params.map((p) => p.tensor.name);
      throw new Error(`${what}: '${pat}' matches no parameter (have: ${names.slice(0, 12).join(', ')}${names.length > 12 ? ', …' : ''})`);
    }
    for (const h of hits) out.add(h.tensor);
  }
  return out;
}
