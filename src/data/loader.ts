// Batches for next-token prediction over one array of tokens.
// The data is cut into windows of B·T+1 consecutive tokens at stride B·T (window w starts at w·B·T; the
// last token of a window is the first of the next), n_w = ⌊(n − 1) / (B·T)⌋ windows in all. A batch is one
// window: inputs are its first B·T tokens, targets the same shifted by one, both row-major B × T.
// - shuffle: false is llm.c's DataLoader on a single file: windows 0, 1, 2, … and back to 0 when the next
//   window would run past the end (position + B·T + 1 > n).
// - shuffle: true (the default) visits every window once per epoch, in an order drawn by a seeded
//   Fisher–Yates shuffle (prng/shuffled from src/train/random.ts), reshuffled each epoch from the same stream.
// state() is JSON-serialisable; TokenLoader.restore() continues bit-identically.
import { shuffled } from '../train/random.ts';
import { SeededRandom } from './rng.ts';

export interface LoaderOptions {
  /** Rows per batch (B). */
  batchSize: number;
  /** Tokens per row (T). */
  seqLen: number;
  /** Visit windows in a seeded random order, reshuffled each epoch (default true). */
  shuffle?: boolean;
  /** Seed of the shuffle (default 0). */
  seed?: number;
}

export interface TokenBatch {
  /** B·T input ids, row-major B × T. */
  inputs: Int32Array;
  /** B·T target ids: the input shifted by one token. */
  targets: Int32Array;
}

/** Where a loader is: enough, with its tokens and options, to continue exactly. */
export interface LoaderState {
  /** Epochs completed (wrap-arounds for shuffle: false). */
  epoch: number;
  /** The next window to serve, as an index into this epoch's order (for shuffle: false, the window itself). */
  index: number;
  /** The RNG state before this epoch's shuffle (a uint32); 0 and unused for shuffle: false. */
  rng: number;
  /** Checks on restore: the data and options this state belongs to. */
  tokens: number;
  batchSize: number;
  seqLen: number;
  shuffle: boolean;
  seed: number;
}

export class LoaderError extends Error {
  override name = 'LoaderError';
}

export class TokenLoader {
  readonly batchSize: number;
  readonly seqLen: number;
  readonly shuffle: boolean;
  readonly seed: number;
  /** Windows (batches) per epoch: ⌊(n − 1) / (B·T)⌋. */
  readonly windows: number;
  private readonly tokens: ArrayLike<number>;
  private readonly rng: SeededRandom;
  private epochValue = 0;
  private index = 0;
  private epochRng = 0;
  private order: Int32Array | undefined;

  constructor(tokens: ArrayLike<number>, opts: LoaderOptions) {
    const { batchSize, seqLen } = opts;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new LoaderError(`batchSize must be a positive integer, got ${batchSize}`);
    if (!Number.isInteger(seqLen) || seqLen < 1) throw new LoaderError(`seqLen must be a positive integer, got ${seqLen}`);
    const seed = opts.seed ?? 0;
    if (!Number.isInteger(seed)) throw new LoaderError(`seed must be an integer, got ${seed}`);
    const bt = batchSize * seqLen;
    if (tokens.length < bt + 1) {
      throw new LoaderError(
        `${tokens.length} tokens are too few for batchSize ${batchSize} × seqLen ${seqLen}: one batch needs B·T+1 = ${bt + 1} tokens`,
      );
    }
    this.tokens = tokens;
    this.batchSize = batchSize;
    this.seqLen = seqLen;
    this.shuffle = opts.shuffle ?? true;
    this.seed = seed;
    this.windows = Math.floor((tokens.length - 1) / bt);
    this.rng = new SeededRandom(seed);
    this.startEpoch();
  }

  /** Epochs completed so far. */
  get epoch(): number {
    return this.epochValue;
  }

  /** Token position where the next batch starts. */
  get position(): number {
    return this.window(this.index) * this.batchSize * this.seqLen;
  }

  /** The next batch; fresh arrays each call. */
  next(): TokenBatch {
    const bt = this.batchSize * this.seqLen;
    const start = this.position;
    const inputs = new Int32Array(bt);
    const targets = new Int32Array(bt);
    const t = this.tokens;
    for (let i = 0; i < bt; i++) {
      inputs[i] = t[start + i];
      targets[i] = t[start + i + 1];
    }
    this.index++;
    if (this.index === this.windows) {
      this.epochValue++;
      this.index = 0;
      this.startEpoch();
    }
    return { inputs, targets };
  }

  state(): LoaderState {
    return {
      epoch: this.epochValue,
      index: this.index,
      rng: this.shuffle ? this.epochRng : 0,
      tokens: this.tokens.length,
      batchSize: this.batchSize,
      seqLen: this.seqLen,
      shuffle: this.shuffle,
      seed: this.seed,
    };
  }

  /** A loader over the same tokens and options that continues where `state` was taken. */
  static restore(tokens: ArrayLike<number>, opts: LoaderOptions, state: LoaderState): TokenLoader {
    const loader = new TokenLoader(tokens, opts);
    const mismatch = (what: string, was: unknown, now: unknown) =>
      new LoaderError(`cannot restore loader state: it was taken with ${what} ${was}, but the loader has ${now}`);
    if (state.tokens !== tokens.length) throw mismatch('tokens', state.tokens, tokens.length);
    if (state.batchSize !== loader.batchSize) throw mismatch('batchSize', state.batchSize, loader.batchSize);
    if (state.seqLen !== loader.seqLen) throw mismatch('seqLen', state.seqLen, loader.seqLen);
    if (state.shuffle !== loader.shuffle) throw mismatch('shuffle', state.shuffle, loader.shuffle);
    if (state.seed !== loader.seed) throw mismatch('seed', state.seed, loader.seed);
    if (!Number.isInteger(state.epoch) || state.epoch < 0) throw new LoaderError(`bad loader state: epoch ${state.epoch}`);
    if (!Number.isInteger(state.index) || state.index < 0 || state.index >= loader.windows) {
      throw new LoaderError(`bad loader state: index ${state.index} is outside [0, ${loader.windows})`);
    }
    loader.epochValue = state.epoch;
    loader.index = state.index;
    if (loader.shuffle) {
      loader.rng.state = state.rng;
      loader.startEpoch();
    }
    return loader;
  }

  private window(index: number): number {
    return this.order ? this.order[index] : index;
  }

  private startEpoch(): void {
    if (!this.shuffle) return;
    this.epochRng = this.rng.state;
    this.order = shuffled(this.windows, this.rng.next);
  }
}
