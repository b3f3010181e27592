// A seekable wrapper around src/train/random.ts's prng (mulberry32), for loaders that must save and restore
// their place in a seeded stream. mulberry32's whole state is one uint32 that grows by 0x6d2b79f5 per draw,
// and prng(s) starts from state s, so prng(state) continues the stream from any saved state exactly.
import { prng } from '../train/random.ts';

const STEP = 0x6d2b79f5;

export class SeededRandom {
  private stateValue: number;
  private draw: () => number;

  constructor(seed: number) {
    this.stateValue = seed >>> 0;
    this.draw = prng(this.stateValue);
  }

  /** Uniform [0, 1), the same sequence as prng(seed). */
  next = (): number => {
    this.stateValue = (this.stateValue + STEP) >>> 0;
    return this.draw();
  };

  /** The internal uint32 state: a JSON-safe number. */
  get state(): number {
    return this.stateValue;
  }

  set state(s: number) {
    if (!Number.isInteger(s) || s < 0 || s > 0xffffffff) throw new RangeError(`RNG state must be a uint32, got ${s}`);
    this.stateValue = s;
    this.draw = prng(s);
  }

  /** The state `draws` draws after `state`, without drawing (draws may be any non-negative integer < 2^53). */
  static advance(state: number, draws: number): number {
    return (state + Math.imul(draws % 0x100000000, STEP)) >>> 0;
  }
}
