// Batches and datasets as typed arrays, and the checks that run before anything is written to the GPU:
// sizes, dtypes, label ranges and non-finite values, each named in the error.
import type { ModelGraph } from './compile.ts';
import type { LossKind } from '../nn/loss.ts';

/** Rows of inputs (row-major, rows × inputShape) and labels (class ids for cross-entropy, targets for mse). */
export interface Batch {
  /** Float features, or int32 token ids for models whose input is tokens (GPT). */
  x: Float32Array | Int32Array;
  y: Int32Array | Float32Array;
}
export type Dataset = Batch;

export class BatchError extends Error {
  override name = 'BatchError';
}

export function checkBatch(mg: ModelGraph, b: Batch, rows: number, loss: LossKind): void {
  const modelRows = mg.input.shape[0];
  const inRow = mg.input.size / modelRows;
  const labelRow = mg.labels.size / modelRows;
  const want = mg.input.dtype === 'i32' ? Int32Array : Float32Array;
  if (!(b.x instanceof want)) {
    throw new BatchError(`batch x must be ${mg.input.dtype === 'i32' ? 'an Int32Array of token ids' : 'a Float32Array'}, got ${typeName(b.x)}`);
  }
  if (b.x.length !== rows * inRow) {
    throw new BatchError(
      `batch x has ${b.x.length} values; expected ${rows} rows × ${inRow} = ${rows * inRow} (input shape [${mg.input.shape.slice(1).join(', ')}])`,
    );
  }
  if (b.x instanceof Float32Array) {
    for (let i = 0; i < b.x.length; i++) {
      if (!Number.isFinite(b.x[i])) throw new BatchError(`batch x[${i}] is ${b.x[i]}: inputs must be finite`);
    }
  }
  for (const check of mg.graph.inputChecks) {
    const err = check(b.x);
    if (err) throw new BatchError(err);
  }
  if (loss === 'cross-entropy') {
    if (!(b.y instanceof Int32Array)) throw new BatchError(`batch y must be an Int32Array of class ids for cross-entropy, got ${typeName(b.y)}`);
    const V = mg.output.shape[mg.output.shape.length - 1];
    if (b.y.length !== rows * labelRow) throw new BatchError(`batch y has ${b.y.length} labels; expected ${rows * labelRow}`);
    for (let i = 0; i < b.y.length; i++) {
      if (b.y[i] < 0 || b.y[i] >= V) throw new BatchError(`label y[${i}] = ${b.y[i]} is out of range [0, ${V}) for output ${mg.output}`);
    }
  } else {
    if (!(b.y instanceof Float32Array)) throw new BatchError(`batch y must be a Float32Array of targets for mse, got ${typeName(b.y)}`);
    if (b.y.length !== rows * labelRow) throw new BatchError(`batch y has ${b.y.length} targets; expected ${rows} rows × ${labelRow}`);
    for (let i = 0; i < b.y.length; i++) {
      if (!Number.isFinite(b.y[i])) throw new BatchError(`target y[${i}] is ${b.y[i]}: targets must be finite`);
    }
  }
}

function typeName(v: unknown): string {
  return v === null ? 'null' : typeof v === 'object' ? (v as object).constructor?.name ?? 'object' : typeof v;
}

