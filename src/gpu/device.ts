// The one way to get a WebGPU device, in a browser (navigator.gpu) or in Node (the `webgpu` package, Dawn).
// It asks for the adapter's own maxima of the limits a training run needs, turns on the optional features
// the kernels can use, refuses a null backend, and fails with a message that says how to get an adapter.

export interface AdapterReport {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** A software or otherwise "fallback" adapter (lavapipe, SwiftShader, WARP). */
  isFallback: boolean;
  features: string[];
  /** The adapter's smallest subgroup size where it reports one (GPUAdapterInfo.subgroupMinSize), else 0. */
  subgroupMinSize: number;
  /** 'browser' when navigator.gpu gave the adapter, 'node' when the `webgpu` package did. */
  host: 'browser' | 'node';
}

export interface RuntimeOptions {
  powerPreference?: GPUPowerPreference;
  /** Use this GPU object instead of navigator.gpu / the `webgpu` package. */
  gpu?: GPU;
  /** Print every shader on first compile and every dispatch of a recorded step. */
  debug?: boolean;
  /**
   * Autotune matmuls: time the candidate kernels for each new shape class and keep the fastest. `true`
   * caches the choices in .wgsl-train-cache/autotune.json (Node) or localStorage (browser); or pass a store.
   */
  autotune?: boolean | import('./autotune.ts').TuneStore;
}

export class WebGPUUnavailableError extends Error {
  override name = 'WebGPUUnavailableError';
}

export class DeviceLostError extends Error {
  override name = 'DeviceLostError';
}

/** Limits a training run may need more of than the defaults; each is requested at the adapter's maximum. */
const WANTED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupsPerDimension',
  'maxBindGroups',
] as const;

/** Optional features the kernels use where they exist. */
const WANTED_FEATURES: GPUFeatureName[] = ['timestamp-query', 'shader-f16', 'subgroups' as GPUFeatureName];

const HOW_TO_GET_ONE =
  'In a browser: use Chrome/Edge 113+ (or another browser with WebGPU enabled) on a page served over https or from ' +
  'localhost/127.0.0.1. In Node: `npm install webgpu` and a Vulkan, Metal or D3D12 driver; on a Linux machine ' +
  'without a GPU run `node scripts/setup-gpu.mjs` (it installs the lavapipe software Vulkan driver).';

let nodeGPU: GPU | undefined;

async function findGPU(opts: RuntimeOptions): Promise<{ gpu: GPU; host: 'browser' | 'node' }> {
  if (opts.gpu) return { gpu: opts.gpu, host: 'node' };
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return { gpu: nav.gpu, host: 'browser' };
  const isNode = typeof process !== 'undefined' && !!process.versions?.node;
  if (!isNode) {
    throw new WebGPUUnavailableError(`WebGPU is not available here: navigator.gpu is missing. ${HOW_TO_GET_ONE}`);
  }
  const moduleName = 'webgpu';
  let mod: { create: (args: string[]) => GPU; globals: object };
  try {
    mod = await import(/* @vite-ignore */ moduleName);
  } catch (e) {
    throw new WebGPUUnavailableError(
      `WebGPU is not available in this Node process: the 'webgpu' package could not be loaded (${(e as Error).message}). ${HOW_TO_GET_ONE}`,
    );
  }
  Object.assign(globalThis, mod.globals);
  // Dawn's instance must outlive every device made from it (a collected instance crashes the process),
  // so one is made per process and kept.
  nodeGPU ??= mod.create([]);
  return { gpu: nodeGPU, host: 'node' };
}

/** A device plus what we learned about its adapter. Create one per application; models share it. */
export class Runtime {
  readonly features: ReadonlySet<string>;
  readonly limits: GPUSupportedLimits;
  /** The matmul autotuner, when createRuntime was asked for one (its report() says what it chose). */
  tuner: import('./autotune.ts').MatmulTuner | null = null;
  /** Set once the device is lost (destroyed, driver reset, tab backgrounded too long). */
  lostReason: string | null = null;
  private readonly lostListeners = new Set<(reason: string) => void>();

  constructor(
    /** The GPU object the adapter came from; held so that it lives as long as the device. */
    readonly gpu: GPU,
    readonly device: GPUDevice,
    readonly adapterInfo: AdapterReport,
    readonly debug: boolean,
  ) {
    this.features = new Set([...device.features].map(String));
    this.limits = device.limits;
    device.lost.then((info) => this.markLost(info));
  }

  private markLost(info: GPUDeviceLostInfo): void {
    if (this.lostReason !== null) return;
    this.lostReason = `${info.reason ?? 'unknown'}: ${info.message || 'no message'}`;
    for (const fn of this.lostListeners) fn(this.lostReason);
  }

  /**
   * After a GPU wait failed (a mapAsync rejected, say): the DeviceLostError for `what` if the device is
   * lost, or is reported lost within graceMs (a map can fail just before device.lost resolves); null if
   * it is not, and the failure is something else. Never waits longer than graceMs.
   */
  async lostError(what: string, graceMs = 1000): Promise<DeviceLostError | null> {
    if (this.lostReason === null) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const info = await Promise.race([
        this.device.lost,
        new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), graceMs))),
      ]);
      clearTimeout(timer);
      if (info) this.markLost(info);
    }
    return this.lostReason === null ? null : new DeviceLostError(`${what}: the WebGPU device was lost (${this.lostReason})`);
  }

  /** Call fn when the device is lost; returns a function that stops listening. */
  onLost(fn: (reason: string) => void): () => void {
    this.lostListeners.add(fn);
    return () => this.lostListeners.delete(fn);
  }

  /** Throws a DeviceLostError if the device is gone. */
  assertAlive(what: string): void {
    if (this.lostReason !== null) throw new DeviceLostError(`${what}: the WebGPU device was lost (${this.lostReason})`);
  }

  destroy(): void {
    this.device.destroy();
  }
}

export async function createRuntime(opts: RuntimeOptions = {}): Promise<Runtime> {
  const { gpu, host } = await findGPU(opts);
  const adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference ?? 'high-performance' });
  if (!adapter) throw new WebGPUUnavailableError(`No WebGPU adapter was found. ${HOW_TO_GET_ONE}`);
  const info = adapter.info ?? ({} as GPUAdapterInfo);
  const description = (info as { description?: string }).description ?? '';
  if (/null backend/i.test(description) || info.vendor === 'null') {
    throw new WebGPUUnavailableError(
      `The WebGPU adapter is Dawn's null backend ("${description}"), which runs no shaders. ${HOW_TO_GET_ONE}`,
    );
  }
  const requiredLimits: Record<string, number> = {};
  for (const name of WANTED_LIMITS) {
    const max = (adapter.limits as unknown as Record<string, number>)[name];
    if (typeof max === 'number') requiredLimits[name] = max;
  }
  const requiredFeatures = WANTED_FEATURES.filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: 'wgsl-train' });
  const report: AdapterReport = {
    vendor: info.vendor ?? '',
    architecture: info.architecture ?? '',
    device: info.device ?? '',
    description,
    isFallback: Boolean((info as { isFallbackAdapter?: boolean }).isFallbackAdapter),
    features: [...adapter.features].map(String).sort(),
    subgroupMinSize: Number((info as { subgroupMinSize?: number }).subgroupMinSize ?? 0) || 0,
    host,
  };
  const rt = new Runtime(gpu, device, report, opts.debug ?? false);
  if (opts.autotune) {
    const tune = await import('./autotune.ts');
    const store =
      opts.autotune !== true ? opts.autotune : host === 'browser' ? tune.localStorageTuneStore() : tune.fileTuneStore('.wgsl-train-cache/autotune.json');
    rt.tuner = await tune.enableAutotune(rt, { store });
  }
  return rt;
}

/** A one-line name for the adapter, for benchmark JSON and progress lines. */
export function adapterName(r: AdapterReport): string {
  const parts = [r.vendor, r.architecture, r.description || r.device].filter((s) => s && s.length > 0);
  return parts.join(' / ') || 'unknown adapter';
}
