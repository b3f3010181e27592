// Per-kernel GPU times from timestamp queries: the recorded commands are encoded with one compute pass per
// dispatch, each pass writing a timestamp at its start and end; the query set is resolved and read back.
// Used on demand (Trainer.profile), never in the normal step.
import { encodeCommands, type Command } from './program.ts';
import type { Runtime } from './device.ts';

export interface KernelTime {
  /** The dispatch's label (layer and pass, e.g. "h.0.attn.c_attn dW"). */
  label: string;
  /** Shader and entry point, e.g. "matmul_sg.main". */
  kernel: string;
  /** GPU time of the dispatch, in milliseconds. */
  ms: number;
  flops: number;
  bytes: number;
}

export class TimestampsUnavailableError extends Error {
  override name = 'TimestampsUnavailableError';
}

/** Runs `commands` once (after `prelude` writes, if any) and returns each dispatch's GPU time. */
export async function profileCommands(rt: Runtime, commands: readonly Command[]): Promise<KernelTime[]> {
  if (!rt.features.has('timestamp-query')) {
    throw new TimestampsUnavailableError('per-kernel GPU times need the timestamp-query feature, which this adapter does not offer');
  }
  const device = rt.device;
  const dispatches = commands.filter((c) => c.kind === 'dispatch');
  const count = dispatches.length * 2;
  const querySet = device.createQuerySet({ type: 'timestamp', count, label: 'kernel timestamps' });
  const resolve = device.createBuffer({ size: count * 8, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC, label: 'timestamps' });
  const read = device.createBuffer({ size: count * 8, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: 'timestamps readback' });
  try {
    const enc = device.createCommandEncoder({ label: 'profiled step' });
    let q = 0;
    for (const c of commands) {
      if (c.kind !== 'dispatch') {
        encodeCommands(enc, [c]);
        continue;
      }
      const pass = enc.beginComputePass({ timestampWrites: { querySet, beginningOfPassWriteIndex: q, endOfPassWriteIndex: q + 1 } });
      pass.setPipeline(c.pipeline);
      pass.setBindGroup(0, c.bindGroup);
      pass.dispatchWorkgroups(...c.workgroups);
      pass.end();
      q += 2;
    }
    enc.resolveQuerySet(querySet, 0, count, resolve, 0);
    enc.copyBufferToBuffer(resolve, 0, read, 0, count * 8);
    device.queue.submit([enc.finish()]);
    await read.mapAsync(GPUMapMode.READ);
    const t = new BigUint64Array(read.getMappedRange().slice(0));
    read.unmap();
    return dispatches.map((c, i) => ({
      label: c.kind === 'dispatch' ? c.label : '',
      kernel: c.kind === 'dispatch' ? c.kernel : '',
      ms: Number(t[2 * i + 1] - t[2 * i]) / 1e6,
      flops: c.kind === 'dispatch' ? c.cost.flops : 0,
      bytes: c.kind === 'dispatch' ? c.cost.bytes : 0,
    }));
  } finally {
    querySet.destroy();
    resolve.destroy();
    read.destroy();
  }
}

/** Sums times by kernel (shader and entry point), largest first. */
export function summarizeKernelTimes(times: readonly KernelTime[]): { kernel: string; calls: number; ms: number; gflops: number }[] {
  const by = new Map<string, { calls: number; ms: number; flops: number }>();
  for (const t of times) {
    const key = t.kernel;
    const e = by.get(key) ?? { calls: 0, ms: 0, flops: 0 };
    e.calls++;
    e.ms += t.ms;
    e.flops += t.flops;
    by.set(key, e);
  }
  return [...by].map(([kernel, e]) => ({ kernel, calls: e.calls, ms: e.ms, gflops: e.ms > 0 ? e.flops / (e.ms * 1e6) : 0 })).sort((a, b) => b.ms - a.ms);
}
