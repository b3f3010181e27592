// Parameters, their gradients and the optimizer's moments: four arenas with one layout (a size table with
// offsets aligned to minStorageBufferOffsetAlignment). Parameters that get weight decay come first and
// those that do not come second, so each optimizer group is one contiguous range and one dispatch.
import { ArenaLayout, createStorage, readBuffer, writeArray, LimitError, type View } from '../gpu/buffers.ts';
import type { ParamInfo, Tensor } from '../graph/graph.ts';
import type { ParamGroup } from '../optim/optimizer.ts';
import type { Runtime } from '../gpu/device.ts';
import { Recorder, encodeCommands } from '../gpu/program.ts';
import { recordCastF16 } from '../ops/cast.ts';

export interface ParamStoreOptions {
  /** Which parameters get weight decay (default: all, as torch.optim does). */
  decays?: (t: Tensor) => boolean;
  /** Parameters that are not trained: no gradient, no optimizer state. */
  frozen?: ReadonlySet<Tensor>;
  /** Optimizer state arenas to allocate (Adam: 2, SGD with momentum: 1, plain SGD: 0). */
  stateArenas: number;
  /** The optimizer's weight decay, given to the decaying group. */
  weightDecay: number;
  /** Keep an f16 copy of the arena for matmul operands (mixed precision); see arenaAlignBytes. */
  f16Operands?: boolean;
}

/**
 * The alignment of tensors in the parameter arenas: the device's minStorageBufferOffsetAlignment, doubled with
 * an f16 operand copy so that each tensor's f16 offset (half its f32 offset) is aligned too.
 */
export function arenaAlignBytes(minStorageBufferOffsetAlignment: number, f16Operands = false): number {
  return minStorageBufferOffsetAlignment * (f16Operands ? 2 : 1);
}

export class ParamStore {
  readonly layout: ArenaLayout;
  readonly params: GPUBuffer;
  readonly grads: GPUBuffer;
  readonly m: GPUBuffer;
  readonly v: GPUBuffer;
  readonly groups: ParamGroup[] = [];
  /** Elements covered by the trained groups (the gradient arena's used length, a multiple of 4). */
  readonly trainedLength: number;
  /** The f16 copy of the parameters (mixed precision), else null. */
  readonly params16: GPUBuffer | null;
  /** Set by every host write of parameters; syncOperands() then refreshes the f16 copy. */
  private operandsStale = true;
  private castAll: Recorder | null = null;

  constructor(
    readonly rt: Runtime,
    readonly infos: readonly ParamInfo[],
    opts: ParamStoreOptions,
  ) {
    const device = rt.device;
    this.layout = new ArenaLayout(arenaAlignBytes(device.limits.minStorageBufferOffsetAlignment, opts.f16Operands));
    const frozen = opts.frozen ?? new Set<Tensor>();
    const decays = opts.decays ?? (() => true);
    const trained = infos.filter((p) => !frozen.has(p.tensor));
    const order = [
      { label: 'decay', list: trained.filter((p) => decays(p.tensor)) },
      { label: 'no decay', list: trained.filter((p) => !decays(p.tensor)) },
    ];
    for (const { label, list } of order) {
      const start = this.layout.length;
      for (const p of list) this.add(p.tensor);
      // Counts are rounded up to whole vec4s: the up to 3 elements past a group's last tensor are padding
      // (the next group and the frozen tensors start at aligned offsets), so the optimizer can work in vec4s.
      const count = Math.ceil((this.layout.length - start) / 4) * 4;
      if (list.length) this.groups.push({ label, offset: start, count, weightDecay: label === 'decay' ? opts.weightDecay : 0 });
    }
    this.trainedLength = Math.ceil(this.layout.length / 4) * 4;
    for (const p of infos.filter((p) => frozen.has(p.tensor))) this.add(p.tensor);

    const maxBinding = device.limits.maxStorageBufferBindingSize;
    const bound = new Map(infos.map((p) => [p.tensor.name, p.bindElements ?? p.tensor.size]));
    for (const e of this.layout.entries) {
      if ((bound.get(e.name) ?? e.length) * 4 > maxBinding) {
        throw new LimitError(`parameter ${e.name} needs ${e.length * 4} bytes, above this device's maxStorageBufferBindingSize (${maxBinding})`);
      }
    }
    this.params = createStorage(device, this.layout.bytes, 'parameters');
    this.grads = createStorage(device, this.layout.bytes, 'gradients');
    this.m = createStorage(device, opts.stateArenas >= 1 ? this.layout.bytes : 16, 'optimizer state m');
    this.v = createStorage(device, opts.stateArenas >= 2 ? this.layout.bytes : 16, 'optimizer state v');
    this.params16 = opts.f16Operands ? createStorage(device, this.castLength * 2, 'parameters (f16 operands)') : null;
  }

  /** Elements the f16 copy covers: the whole arena in vec4s. */
  private get castLength(): number {
    return Math.ceil(this.layout.length / 4) * 4;
  }

  /** A parameter as a matmul operand: the f16 copy under mixed precision, else its f32 value. */
  operand(t: Tensor): View {
    if (!this.params16) return this.value(t);
    const e = this.layout.get(t.name);
    return { buffer: this.params16, offset: e.offset * 2, size: Math.max(4, Math.ceil(e.length / 2) * 4), dtype: 'f16' };
  }

  /** Records the whole-arena cast that syncOperands() submits (once, before the first sync). */
  async prepareOperands(): Promise<void> {
    if (!this.params16 || this.castAll) return;
    const rec = new Recorder(this.rt);
    await recordCastF16(rec, 'f16 operands (all parameters)', this.params, this.params16, this.castLength);
    this.castAll = rec;
  }

  /** Refreshes the whole f16 copy after host writes (initialize, write): call before submitting work that reads it; a no-op when nothing changed. */
  syncOperands(): void {
    if (!this.params16 || !this.operandsStale) return;
    if (!this.castAll) throw new Error('ParamStore: prepareOperands() must run before syncOperands()');
    const encoder = this.rt.device.createCommandEncoder({ label: 'f16 operands' });
    encodeCommands(encoder, this.castAll.commands);
    this.rt.device.queue.submit([encoder.finish()]);
    this.operandsStale = false;
  }

  /** Records the per-step refresh of the trained parameters' f16 copy (after the optimizer's update). */
  recordOperandRefresh(rec: Recorder): Promise<void> {
    return this.params16 ? recordCastF16(rec, 'f16 operands (trained parameters)', this.params, this.params16, this.trainedLength) : Promise.resolve();
  }

  private add(t: Tensor) {
    this.layout.add(t.name, t.size);
  }

  /** A parameter's values, by name: graphs built for other batch sizes share the store. */
  value(t: Tensor): View {
    return this.layout.view(this.params, t.name);
  }

  grad(t: Tensor): View {
    return this.layout.view(this.grads, t.name);
  }

  /** Writes initial values from the parameters' init functions with a seeded source, in table order. */
  initialize(random: () => number): void {
    for (const p of this.infos) this.write(p.tensor.name, p.init(random, p.tensor.size));
  }

  /** Writes one tensor of an arena (parameters by default; m or v when restoring optimizer state). */
  write(name: string, data: Float32Array, which: 'params' | 'm' | 'v' = 'params'): void {
    const e = this.layout.get(name);
    if (data.length !== e.length) throw new Error(`parameter ${name}: expected ${e.length} values, got ${data.length}`);
    if (this[which].size < this.layout.bytes) throw new Error(`this optimizer keeps no '${which}' state`);
    writeArray(this.rt.device, this[which], e.offset * 4, data);
    if (which === 'params') this.operandsStale = true;
  }

  /** Reads a whole arena back (params, grads, m or v) as name → values. */
  async read(which: 'params' | 'grads' | 'm' | 'v' = 'params'): Promise<Map<string, Float32Array>> {
    const buffer = this[which];
    const all = new Float32Array(await readBuffer(this.rt.device, buffer, 0, Math.min(buffer.size, this.layout.bytes)));
    const out = new Map<string, Float32Array>();
    for (const e of this.layout.entries) out.set(e.name, all.slice(e.offset, e.offset + e.length));
    return out;
  }

  get count(): number {
    return this.layout.entries.reduce((a, e) => a + e.length, 0);
  }

  destroy(): void {
    for (const b of [this.params, this.grads, this.m, this.v, ...(this.params16 ? [this.params16] : []), ...(this.castAll?.owned ?? [])]) b.destroy();
  }
}
