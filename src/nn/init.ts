// Parameter initialisers, each drawing from the seeded uniform source the trainer passes in.

export type Init = (random: () => number, size: number) => Float32Array;

export const constantInit =
  (value: number): Init =>
  (_random, size) =>
    new Float32Array(size).fill(value);

/** U(−bound, bound). torch.nn.Linear's default is bound = 1/√fan_in for weight and bias. */
export const uniformInit =
  (bound: number): Init =>
  (random, size) => {
    const out = new Float32Array(size);
    for (let i = 0; i < size; i++) out[i] = (2 * random() - 1) * bound;
    return out;
  };

/** N(0, std²) by Box–Muller (GPT-2 uses std 0.02). */
export const normalInit =
  (std: number): Init =>
  (random, size) => {
    const out = new Float32Array(size);
    for (let i = 0; i < size; i++) {
      const u = Math.max(random(), 1e-12);
      out[i] = std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
    }
    return out;
  };
