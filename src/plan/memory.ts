// The memory plan: which physical buffer ("slot") holds each activation, activation gradient and scratch
// buffer, so that tensors whose lifetimes do not overlap share memory. Parameters, their gradients and
// optimizer moments live in arenas (see src/train/params.ts); inputs and labels have their own buffers.
//
// Time runs over the recorded step: forward of op i at time i, backward of op i at 2n−1−i.
//   value of t: from its producer's forward to the last forward that reads it or backward that saved it;
//   grad of t:  from the first consumer that writes it (that one assigns, later ones accumulate) to its
//               producer's backward, which reads it;
//   scratch:    the one phase of the one op that asked for it.
// Two tensors may share a slot only if their intervals are disjoint, which also keeps an op's inputs and
// outputs apart (a buffer may not be read and written by one dispatch).
import type { Graph, Op, Tensor } from '../graph/graph.ts';

export interface MemoryPlan {
  /** Byte size of each slot. */
  slotBytes: number[];
  value: Map<Tensor, number>;
  grad: Map<Tensor, number>;
  /** Slot of scratch buffer i of op `op` in a phase: key `${opIndex}:${phase}:${i}`. */
  temp: Map<string, number>;
  /** Whether op (index) accumulates into the gradient of tensor t (another op wrote it first). */
  accumulates(opIndex: number, t: Tensor): boolean;
  /** Tensors that have gradients (activations with a slot, parameters in the arena). */
  needsGrad: ReadonlySet<Tensor>;
  /** Bytes the slots need in all, and what they would need without sharing. */
  bytes: number;
  bytesUnshared: number;
}

interface Interval {
  start: number;
  end: number;
  bytes: number;
  assign: (slot: number) => void;
}

export function planMemory(
  graph: Graph,
  opts: { training: boolean; keep: readonly Tensor[]; frozen?: ReadonlySet<Tensor> },
): MemoryPlan {
  const ops = graph.ops;
  const n = ops.length;
  const fwd = (i: number) => i;
  const bwd = (i: number) => 2 * n - 1 - i;
  const END = 2 * n;

  const producer = new Map<Tensor, number>();
  const consumers = new Map<Tensor, number[]>();
  const savers = new Map<Tensor, number[]>();
  ops.forEach((op, i) => {
    for (const t of op.outputs) producer.set(t, i);
    for (const t of op.inputs) consumers.set(t, [...(consumers.get(t) ?? []), i]);
    for (const t of op.saved) savers.set(t, [...(savers.get(t) ?? []), i]);
  });

  // Which tensors carry gradients: parameters (unless frozen) and everything computed from them.
  const needsGrad = new Set<Tensor>();
  if (opts.training) {
    for (const p of graph.params) if (!opts.frozen?.has(p.tensor)) needsGrad.add(p.tensor);
    for (const op of ops) {
      if (op.gradInForward) continue; // a loss's outputs are terminal
      if ([...op.inputs, ...op.params].some((t) => needsGrad.has(t))) for (const t of op.outputs) needsGrad.add(t);
    }
  }
  const writeTime = (op: Op, i: number) => (op.gradInForward ? fwd(i) : bwd(i));

  const intervals: Interval[] = [];
  const value = new Map<Tensor, number>();
  const grad = new Map<Tensor, number>();
  const temp = new Map<string, number>();
  const firstWriter = new Map<Tensor, number>();

  for (const t of graph.tensors) {
    if (t.kind !== 'activation' || graph.parts.has(t)) continue; // a split tensor lives in its parts
    const p = producer.get(t);
    if (p === undefined) throw new Error(`tensor ${t} has no producer`);
    let end = fwd(p);
    for (const c of consumers.get(t) ?? []) end = Math.max(end, fwd(c));
    if (opts.training) for (const s of savers.get(t) ?? []) end = Math.max(end, bwd(s));
    if (opts.keep.includes(t)) end = END;
    intervals.push({ start: fwd(p), end, bytes: t.bytes, assign: (s) => value.set(t, s) });

    if (!needsGrad.has(t)) continue;
    const writers = (consumers.get(t) ?? []).filter((c) => needsGrad.has(ops[c].outputs[0]) || ops[c].gradInForward);
    if (writers.length === 0) continue;
    const first = writers.reduce((a, b) => (writeTime(ops[a], a) <= writeTime(ops[b], b) ? a : b));
    firstWriter.set(t, first);
    intervals.push({ start: writeTime(ops[first], first), end: bwd(p), bytes: t.bytes, assign: (s) => grad.set(t, s) });
  }
  ops.forEach((op, i) => {
    for (const phase of ['forward', 'backward'] as const) {
      if (phase === 'backward' && !opts.training) continue;
      op.temps(phase, opts.training).forEach((elements, k) => {
        const at = phase === 'forward' ? fwd(i) : bwd(i);
        intervals.push({ start: at, end: at, bytes: elements * 4, assign: (s) => temp.set(`${i}:${phase}:${k}`, s) });
      });
    }
  });

  // Greedy interval colouring: the free slot whose size is closest, else a new slot.
  intervals.sort((a, b) => a.start - b.start || b.bytes - a.bytes);
  const slotBytes: number[] = [];
  const slotEnd: number[] = [];
  for (const iv of intervals) {
    let best = -1;
    for (let s = 0; s < slotBytes.length; s++) {
      if (slotEnd[s] >= iv.start) continue;
      if (best < 0 || Math.abs(slotBytes[s] - iv.bytes) < Math.abs(slotBytes[best] - iv.bytes)) best = s;
    }
    if (best < 0) {
      best = slotBytes.length;
      slotBytes.push(0);
      slotEnd.push(-1);
    }
    slotBytes[best] = Math.max(slotBytes[best], iv.bytes);
    slotEnd[best] = iv.end;
    iv.assign(best);
  }

  return {
    slotBytes,
    value,
    grad,
    temp,
    needsGrad,
    accumulates: (opIndex, t) => firstWriter.has(t) && firstWriter.get(t) !== opIndex,
    bytes: slotBytes.reduce((a, b) => a + b, 0),
    bytesUnshared: intervals.reduce((a, b) => a + b.bytes, 0),
  };
}
