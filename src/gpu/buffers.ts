// GPU buffers: views (a byte range of a buffer), arenas sliced by a size table, and the few helpers
// that move data in and out. Reading back is explicit and asynchronous; nothing here reads per step.

/** A byte range of a buffer, as a kernel binds it. */
export interface View {
  buffer: GPUBuffer;
  offset: number;
  size: number;
}

export function storageUsage(): number {
  return GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
}

export class LimitError extends Error {
  override name = 'LimitError';
}

/** A storage buffer of `bytes`, checked against the device's limits first so the error names the tensor. */
export function createStorage(device: GPUDevice, bytes: number, label: string): GPUBuffer {
  const size = Math.max(16, Math.ceil(bytes / 16) * 16);
  if (size > device.limits.maxBufferSize) {
    throw new LimitError(`${label}: ${size} bytes exceeds the device's maxBufferSize (${device.limits.maxBufferSize})`);
  }
  return device.createBuffer({ label, size, usage: storageUsage() });
}

export function wholeView(buffer: GPUBuffer, bytes = buffer.size): View {
  return { buffer, offset: 0, size: Math.max(16, Math.ceil(bytes / 4) * 4) };
}

export interface ArenaEntry {
  name: string;
  /** Element offset (f32) of the tensor in the arena. */
  offset: number;
  /** Number of f32 elements. */
  length: number;
}

/**
 * A table of named f32 tensors packed into one buffer, each starting at a multiple of `alignBytes`
 * (the device's minStorageBufferOffsetAlignment) so that any tensor can be bound on its own.
 */
export class ArenaLayout {
  readonly entries: ArenaEntry[] = [];
  private readonly byName = new Map<string, ArenaEntry>();
  /** Total elements, including alignment padding. */
  length = 0;

  constructor(readonly alignBytes: number) {}

  add(name: string, length: number): ArenaEntry {
    if (this.byName.has(name)) throw new Error(`duplicate tensor name '${name}'`);
    const align = this.alignBytes / 4;
    const offset = Math.ceil(this.length / align) * align;
    const e = { name, offset, length };
    this.entries.push(e);
    this.byName.set(name, e);
    this.length = offset + length;
    return e;
  }

  get(name: string): ArenaEntry {
    const e = this.byName.get(name);
    if (!e) throw new Error(`no tensor '${name}' in the arena`);
    return e;
  }

  get bytes(): number {
    return Math.max(16, Math.ceil((this.length * 4) / 16) * 16);
  }

  view(buffer: GPUBuffer, name: string): View {
    const e = this.get(name);
    return { buffer, offset: e.offset * 4, size: Math.max(4, e.length * 4) };
  }
}

/** Copies a byte range of a GPU buffer to the host (waits for the GPU; for tests, checkpoints and results). */
export async function readBuffer(device: GPUDevice, src: GPUBuffer, offset = 0, size = src.size - offset): Promise<ArrayBuffer> {
  const staging = device.createBuffer({ label: 'readback', size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = device.createCommandEncoder({ label: 'readback' });
  enc.copyBufferToBuffer(src, offset, staging, 0, size);
  device.queue.submit([enc.finish()]);
  try {
    await staging.mapAsync(GPUMapMode.READ);
    return staging.getMappedRange().slice(0);
  } finally {
    staging.destroy();
  }
}

export async function readF32(device: GPUDevice, view: View): Promise<Float32Array> {
  return new Float32Array(await readBuffer(device, view.buffer, view.offset, view.size));
}

/** queue.writeBuffer for any typed array (TypeScript's ArrayBufferLike generics aside). */
export function writeArray(device: GPUDevice, buffer: GPUBuffer, byteOffset: number, data: ArrayBufferView): void {
  device.queue.writeBuffer(buffer, byteOffset, data as unknown as GPUAllowSharedBufferSource);
}

/** queue.writeBuffer of data[start … start+count) (elements) at the start of `buffer`, without a subarray. */
export function writeArrayRange(device: GPUDevice, buffer: GPUBuffer, data: Float32Array | Int32Array, start: number, count: number): void {
  device.queue.writeBuffer(buffer, 0, data as unknown as GPUAllowSharedBufferSource, start, count);
}
