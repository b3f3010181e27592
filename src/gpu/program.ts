// A recorded program: the list of dispatches, clears and copies of a training step (or a forward pass),
// built once with every pipeline, bind group and uniform buffer in place, then encoded into one command
// encoder per step. WebGPU command buffers are single-use, so "replay" is re-encoding this list: no
// compile, no allocation, no bind-group creation, only setPipeline / setBindGroup / dispatch calls.
import { KernelRegistry, bindGroup, createUniform, uniformData, type Binding, type BindingKind } from './kernels.ts';
import type { Defines } from './shaders.ts';
import { createStorage, type View } from './buffers.ts';
import type { Runtime } from './device.ts';

export interface Cost {
  /** Floating-point operations (a fused multiply-add counts 2). */
  flops: number;
  /** Bytes read + written from storage buffers, at least once each. */
  bytes: number;
}

export type Command =
  | {
      kind: 'dispatch';
      label: string;
      /** The kernel: shader file and entry point, e.g. "matmul.main". */
      kernel: string;
      pipeline: GPUComputePipeline;
      bindGroup: GPUBindGroup;
      workgroups: [number, number, number];
      cost: Cost;
    }
  | { kind: 'clear'; label: string; buffer: GPUBuffer; offset: number; size: number }
  | { kind: 'copy'; label: string; src: GPUBuffer; srcOffset: number; dst: GPUBuffer; dstOffset: number; size: number };

export interface DispatchSpec {
  /** What the dispatch is for, e.g. "fc1 forward"; names it in profiles and errors. */
  label: string;
  shader: string;
  entry: string;
  bindings: readonly BindingKind[];
  defines?: Defines;
  /** Uniform fields, bound first (binding 0) when present. */
  uniform?: ReadonlyArray<['u32' | 'i32' | 'f32', number]>;
  resources: readonly Binding[];
  workgroups: [number, number, number];
  cost: Cost;
  /**
   * The kernel takes f16 views: its defines type each float binding (see floatType). Without it, an f16 view
   * among the resources is an error naming the dispatch, never a silent reinterpretation of the bytes.
   */
  f16?: boolean;
}

/** 1-D work of n items in workgroups of `size`, folded into a 2-D grid past the per-dimension limit. */
export function grid1d(n: number, size = 256, maxPerDim = 65535): { workgroups: [number, number, number]; stride: number } {
  const groups = Math.max(1, Math.ceil(n / size));
  const x = Math.min(groups, maxPerDim);
  const y = Math.ceil(groups / x);
  return { workgroups: [x, y, 1], stride: x * size };
}

export class Recorder {
  readonly commands: Command[] = [];
  /** Buffers this recorder created (uniforms, dummies): destroyed with the program. */
  readonly owned: GPUBuffer[] = [];
  private dummies = new Map<string, GPUBuffer>();
  private readonly registry: KernelRegistry;

  constructor(readonly rt: Runtime) {
    this.registry = KernelRegistry.for(rt);
  }

  get device(): GPUDevice {
    return this.rt.device;
  }

  async dispatch(spec: DispatchSpec): Promise<void> {
    if (!spec.f16) {
      const half = spec.resources.findIndex((r) => 'buffer' in r && (r as View).dtype === 'f16');
      if (half >= 0) {
        throw new Error(`${spec.label}: kernel ${spec.shader}.${spec.entry} does not take f16 tensors (binding ${half + (spec.uniform ? 1 : 0)}); this op does not support precision 'f16'`);
      }
    }
    const kinds: BindingKind[] = spec.uniform ? ['uniform', ...spec.bindings] : [...spec.bindings];
    const kernel = await this.registry.get(spec.shader, spec.entry, kinds, spec.defines ?? {});
    const resources: Binding[] = [...spec.resources];
    if (spec.uniform) {
      resources.unshift(this.uniformBuffer(`${spec.label} uniforms`, spec.uniform));
    }
    const [x, y, z] = spec.workgroups;
    const max = this.rt.limits.maxComputeWorkgroupsPerDimension;
    if (x > max || y > max || z > max) {
      throw new Error(`${spec.label}: dispatch (${x}, ${y}, ${z}) exceeds maxComputeWorkgroupsPerDimension = ${max}`);
    }
    this.commands.push({
      kind: 'dispatch',
      label: spec.label,
      kernel: `${spec.shader}.${spec.entry}`,
      pipeline: kernel.pipeline,
      bindGroup: bindGroup(this.device, kernel, resources),
      workgroups: spec.workgroups,
      cost: spec.cost,
    });
  }

  /** A uniform buffer holding `fields`, made once and owned by this program. */
  uniformBuffer(label: string, fields: ReadonlyArray<['u32' | 'i32' | 'f32', number]>): GPUBuffer {
    const u = createUniform(this.device, uniformData(fields), label);
    this.owned.push(u);
    return u;
  }

  /** A zero-filled storage buffer owned by this program (e.g. partial sums of a reduction). */
  storageBuffer(label: string, elements: number): GPUBuffer {
    const b = createStorage(this.device, elements * 4, label);
    this.owned.push(b);
    return b;
  }

  clear(label: string, buffer: GPUBuffer, offset = 0, size = buffer.size - offset): void {
    this.commands.push({ kind: 'clear', label, buffer, offset, size });
  }

  copy(label: string, src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, size: number): void {
    this.commands.push({ kind: 'copy', label, src, srcOffset, dst, dstOffset, size });
  }

  /**
   * A small placeholder for a binding a variant does not use (a matmul without bias, say). Read and
   * write placeholders are separate buffers, since one buffer may not be both in one dispatch.
   */
  dummy(kind: 'read' | 'write'): GPUBuffer {
    let b = this.dummies.get(kind);
    if (!b) {
      b = this.device.createBuffer({ label: `unused ${kind} binding`, size: 16, usage: GPUBufferUsage.STORAGE });
      this.dummies.set(kind, b);
      this.owned.push(b);
    }
    return b;
  }

  /** Total cost of all dispatches. */
  cost(): Cost {
    let flops = 0;
    let bytes = 0;
    for (const c of this.commands) if (c.kind === 'dispatch') (flops += c.cost.flops), (bytes += c.cost.bytes);
    return { flops, bytes };
  }
}

/** Encodes commands into the encoder: consecutive dispatches share one compute pass. */
export function encodeCommands(encoder: GPUCommandEncoder, commands: readonly Command[], debug = false): void {
  let pass: GPUComputePassEncoder | null = null;
  for (const c of commands) {
    if (debug) console.log(`[wgsl-train] ${c.kind} ${c.label}${c.kind === 'dispatch' ? ' ' + c.workgroups.join('×') : ''}`);
    if (c.kind === 'dispatch') {
      pass ??= encoder.beginComputePass();
      pass.setPipeline(c.pipeline);
      pass.setBindGroup(0, c.bindGroup);
      pass.dispatchWorkgroups(c.workgroups[0], c.workgroups[1], c.workgroups[2]);
      continue;
    }
    pass?.end();
    pass = null;
    if (c.kind === 'clear') encoder.clearBuffer(c.buffer, c.offset, c.size);
    else encoder.copyBufferToBuffer(c.src, c.srcOffset, c.dst, c.dstOffset, c.size);
  }
  pass?.end();
}
