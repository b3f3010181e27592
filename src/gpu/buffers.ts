// GPU buffers: views (a byte range of a buffer), arenas sliced by a size table, and the few helpers
// that move data in and out. Reading back is explicit and asynchronous; nothing here reads per step.

/** A byte range of a buffer, as a kernel binds it. */
export interface View {
  buffer: GPUBuffer;
  offset: number;
  size: number;
  /** The element type when it is not f32 (or i32, which kernels know from their binding): f16 activations. */
  dtype?: 'f16';
}

/** The WGSL scalar type of a float view's elements: 'f16' for a half-precision view, else 'f32'. */
export function floatType(v: View): 'f32' | 'f16' {
  return v.dtype === 'f16' ? 'f16' : 'f32';
}

/**
 * The defines of a kernel whose float bindings share one element type (`name`, e.g. ACT_T), from the views
 * bound to them (null: an unused binding); views of different types are an error naming the dispatch.
 */
export function sharedTypeDefines(name: string, label: string, views: readonly (View | null | undefined)[]): Record<string, string | boolean> {
  const types = new Set(views.filter((v): v is View => !!v).map(floatType));
  if (types.size > 1) throw new Error(`${label}: these tensors must share one type, got ${[...types].join(' and ')}`);
  const t = types.has('f16') ? 'f16' : 'f32';
  return { [name]: t, F16: t === 'f16' };
}

/** A kernel's element-type defines from the views its bindings take (define name → view), and F16 if any is f16. */
export function typeDefines(views: Record<string, View>): Record<string, string | boolean> {
  const d: Record<string, string | boolean> = { F16: false };
  for (const [name, v] of Object.entries(views)) {
    d[name] = floatType(v);
    if (d[name] === 'f16') d.F16 = true;
  }
  return d;
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

/** Decodes IEEE half-precision bit patterns to numbers. */
export function halfToFloat(bits: Uint16Array, count = bits.length): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const h = bits[i];
    const sign = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    out[i] = e === 0 ? sign * m * 2 ** -24 : e === 31 ? (m ? NaN : sign * Infinity) : sign * (1 + m / 1024) * 2 ** (e - 15);
  }
  return out;
}

/** `count` floats of a view as f32, decoding an f16 view. */
export async function readFloats(device: GPUDevice, view: View, count: number): Promise<Float32Array> {
  const bytes = await readBuffer(device, view.buffer, view.offset, view.size);
  return view.dtype === 'f16' ? halfToFloat(new Uint16Array(bytes), count) : new Float32Array(bytes, 0, count);
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
