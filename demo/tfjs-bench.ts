// TF.js (WebGPU backend) matmul timings beside ours, on the page's thread. This module is only ever
// loaded by a dynamic import when the user asks for TF.js, so TF.js stays out of the main bundle.
// Timing as bench/peers/tfjs.mjs: flush TF.js's command encoder, then wait for onSubmittedWorkDone (no readback).
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-webgpu';
import type { BenchRow } from './protocol.ts';

interface WebGPUBackendLike {
  commandEncoder?: unknown;
  endComputePassEncoder(): void;
  submitQueue(): void;
  device: GPUDevice;
}

export async function tfjsMatmul(sizes: number[], minMs: number, onRow: (row: BenchRow) => void): Promise<void> {
  if (tf.getBackend() !== 'webgpu') {
    const ok = await tf.setBackend('webgpu');
    if (!ok) throw new Error('TF.js could not start its WebGPU backend');
  }
  await tf.ready();
  const backend = tf.backend() as unknown as WebGPUBackendLike;
  const sync = async () => {
    if (backend.commandEncoder) {
      backend.endComputePassEncoder();
      backend.submitQueue();
    }
    await backend.device.queue.onSubmittedWorkDone();
  };
  for (const n of sizes) {
    const A = tf.randomUniform([n, n], -0.5, 0.5, 'float32', 1);
    const B = tf.randomUniform([n, n], -0.5, 0.5, 'float32', 2);
    await sync();
    const warm = tf.matMul(A, B);
    await sync();
    warm.dispose();
    const ms: number[] = [];
    const t0 = performance.now();
    while (ms.length < 3 || (performance.now() - t0 < minMs && ms.length < 50)) {
      const t = performance.now();
      const C = tf.matMul(A, B);
      await sync();
      ms.push(performance.now() - t);
      C.dispose();
    }
    A.dispose();
    B.dispose();
    const s = [...ms].sort((a, b) => a - b);
    const med = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    onRow({
      impl: 'tfjs-webgpu',
      size: n,
      ms_median: +med.toPrecision(4),
      ms_min: +s[0].toPrecision(4),
      iters: ms.length,
      gflops: +((2 * n ** 3) / (med * 1e6)).toPrecision(4),
      max_error: null,
    });
  }
}
