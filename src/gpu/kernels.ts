// The pipeline registry: each (shader, entry point, defines) is compiled once per device, with an
// explicit bind-group layout, and two requests for the same key share one compile. A compile error
// names the shader and shows the offending WGSL lines.
import { shaderSource, type Defines } from './shaders.ts';
import type { Runtime } from './device.ts';

/** How a kernel sees each binding, in @binding order (all in @group(0)). */
export type BindingKind = 'read' | 'write' | 'uniform';

export interface Kernel {
  readonly key: string;
  readonly label: string;
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
  readonly bindings: readonly BindingKind[];
}

export class ShaderCompileError extends Error {
  override name = 'ShaderCompileError';
}

function formatCompileError(label: string, source: string, messages: readonly GPUCompilationMessage[]): string {
  const lines = source.split('\n');
  const out = [`WGSL compile error in ${label}:`];
  for (const m of messages) {
    out.push(`  ${m.type} at line ${m.lineNum}:${m.linePos}: ${m.message}`);
    for (let l = Math.max(1, m.lineNum - 2); l <= Math.min(lines.length, m.lineNum + 2); l++) {
      out.push(`  ${l === m.lineNum ? '>' : ' '} ${String(l).padStart(4)} | ${lines[l - 1]}`);
    }
  }
  return out.join('\n');
}

const registries = new WeakMap<GPUDevice, KernelRegistry>();

export class KernelRegistry {
  private readonly kernels = new Map<string, Promise<Kernel>>();

  static for(rt: Runtime): KernelRegistry {
    let r = registries.get(rt.device);
    if (!r) registries.set(rt.device, (r = new KernelRegistry(rt)));
    return r;
  }

  private constructor(private readonly rt: Runtime) {}

  /** Number of distinct pipelines compiled so far on this device. */
  get size(): number {
    return this.kernels.size;
  }

  get(shader: string, entry: string, bindings: readonly BindingKind[], defines: Defines = {}): Promise<Kernel> {
    const key = `${shader}:${entry}:${JSON.stringify(defines)}:${bindings.join(',')}`;
    let k = this.kernels.get(key);
    if (!k) {
      k = this.compile(key, shader, entry, bindings, defines);
      this.kernels.set(key, k);
      k.catch(() => this.kernels.delete(key));
    }
    return k;
  }

  private async compile(
    key: string,
    shader: string,
    entry: string,
    bindings: readonly BindingKind[],
    defines: Defines,
  ): Promise<Kernel> {
    const { device } = this.rt;
    const label = `${shader}.wgsl:${entry}${Object.keys(defines).length ? ' ' + JSON.stringify(defines) : ''}`;
    const code = shaderSource(shader, defines);
    if (this.rt.debug) console.log(`[wgsl-train] compile ${label}\n${code}`);
    device.pushErrorScope('validation');
    const module = device.createShaderModule({ code, label });
    const info = await module.getCompilationInfo();
    const errors = info.messages.filter((m) => m.type === 'error');
    const scopeError = await device.popErrorScope();
    if (errors.length > 0) throw new ShaderCompileError(formatCompileError(label, code, errors));
    if (scopeError) throw new ShaderCompileError(`WGSL module ${label} is invalid: ${scopeError.message}`);
    const layout = device.createBindGroupLayout({
      label,
      entries: bindings.map((kind, binding) => ({
        binding,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: kind === 'read' ? 'read-only-storage' : kind === 'write' ? 'storage' : 'uniform' },
      })),
    });
    // createComputePipeline, not ...Async: Dawn's async path crashed (std::system_error) in forked test workers.
    device.pushErrorScope('validation');
    const pipeline = device.createComputePipeline({
      label,
      layout: device.createPipelineLayout({ bindGroupLayouts: [layout], label }),
      compute: { module, entryPoint: entry },
    });
    const pipeError = await device.popErrorScope();
    if (pipeError) throw new ShaderCompileError(`pipeline ${label} could not be created: ${pipeError.message}`);
    return { key, label, pipeline, layout, bindings };
  }
}

/** A buffer binding: a whole buffer or a byte range of one. */
export type Binding = GPUBuffer | { buffer: GPUBuffer; offset: number; size: number };

export function bindGroup(device: GPUDevice, kernel: Kernel, resources: readonly Binding[]): GPUBindGroup {
  if (resources.length !== kernel.bindings.length) {
    throw new Error(`${kernel.label} takes ${kernel.bindings.length} bindings, got ${resources.length}`);
  }
  return device.createBindGroup({
    label: kernel.label,
    layout: kernel.layout,
    entries: resources.map((r, binding) => ({
      binding,
      resource: 'offset' in r ? r : { buffer: r },
    })),
  });
}

/** Uniform block builder: fields are 4-byte words in declaration order, typed 'u32' | 'i32' | 'f32'. */
export function uniformData(fields: ReadonlyArray<['u32' | 'i32' | 'f32', number]>): ArrayBuffer {
  const words = Math.max(4, Math.ceil(fields.length / 4) * 4);
  const buf = new ArrayBuffer(words * 4);
  const dv = new DataView(buf);
  fields.forEach(([t, v], i) => {
    if (t === 'f32') dv.setFloat32(i * 4, v, true);
    else if (t === 'i32') dv.setInt32(i * 4, v, true);
    else dv.setUint32(i * 4, v, true);
  });
  return buf;
}

export function createUniform(device: GPUDevice, data: ArrayBuffer, label: string): GPUBuffer {
  const buffer = device.createBuffer({
    label,
    size: data.byteLength,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  device.queue.writeBuffer(buffer, 0, data);
  return buffer;
}
