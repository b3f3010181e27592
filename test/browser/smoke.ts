// Browser smoke test: does WebGPU work in this Chromium at all? Requests an adapter and
// a device, runs a compute shader that doubles an array, reads it back and checks it.
// Sets window.__result = { ok, adapter, values?, error? } for test/browser/run.mjs.

export {};

interface SmokeResult {
  ok: boolean;
  adapter?: Record<string, string>;
  values?: number[];
  error?: string;
  ms?: number;
}
declare global {
  interface Window {
    __result?: unknown;
  }
}

const SHADER = /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> data: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u) {
  if (id.x < arrayLength(&data)) { data[id.x] = data[id.x] * 2.0; }
}`;

function adapterInfo(adapter: GPUAdapter): Record<string, string> {
  const i = adapter.info;
  const fallback = (i as { isFallbackAdapter?: boolean }).isFallbackAdapter;
  return { vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description, fallback: String(fallback ?? '?') };
}

async function run(): Promise<SmokeResult> {
  const t0 = performance.now();
  if (!('gpu' in navigator) || !navigator.gpu) throw new Error('navigator.gpu is missing: WebGPU is not enabled in this browser');
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) throw new Error('navigator.gpu.requestAdapter() returned null: no WebGPU adapter');
  const info = adapterInfo(adapter);
  const device = await adapter.requestDevice();
  device.pushErrorScope('validation');

  const n = 1000;
  const input = Float32Array.from({ length: n }, (_, i) => i - 500);
  const data = device.createBuffer({ size: input.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  const read = device.createBuffer({ size: input.byteLength, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(data, 0, input);
  const pipeline = device.createComputePipeline({
    layout: 'auto',
    compute: { module: device.createShaderModule({ code: SHADER }), entryPoint: 'main' },
  });
  const bind = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: data } }] });
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bind);
  pass.dispatchWorkgroups(Math.ceil(n / 64));
  pass.end();
  enc.copyBufferToBuffer(data, 0, read, 0, input.byteLength);
  device.queue.submit([enc.finish()]);
  await read.mapAsync(GPUMapMode.READ);
  const out = new Float32Array(read.getMappedRange().slice(0));
  read.unmap();
  const err = await device.popErrorScope();
  if (err) throw new Error(`WebGPU validation error: ${err.message}`);
  device.destroy();

  const bad = out.findIndex((v, i) => v !== input[i]! * 2);
  if (bad >= 0) throw new Error(`wrong result at ${bad}: got ${out[bad]}, expected ${input[bad]! * 2}`);
  return { ok: true, adapter: info, values: Array.from(out.subarray(0, 4)), ms: Math.round(performance.now() - t0) };
}

let result: SmokeResult;
try {
  result = await run();
} catch (e) {
  result = { ok: false, error: e instanceof Error ? e.message : String(e) };
}
window.__result = result;
const out = document.getElementById('out');
if (out) out.textContent = JSON.stringify(result, null, 2);
