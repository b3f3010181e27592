// Messages between the page (demo/main.ts) and the training worker (demo/worker.ts).

export type PresetName = 'names' | 'finetune' | 'classifier';

export interface Settings {
  lr: number;
  batch: number;
  /** Sequence length (GPT presets). */
  seq: number;
  /** GPT width / MLP hidden units. */
  embd: number;
  layers: number;
  heads: number;
  optimizer: 'adamw' | 'adam' | 'sgd';
  /** 'f16': mixed precision (f16 activations and matmul operands, f32 master weights, dynamic loss scaling), where the adapter offers shader-f16. */
  precision?: 'f32' | 'f16';
  /** Stop after this many steps. */
  steps: number;
  /** Generate samples (or, for the classifier, evaluate) every this many steps. */
  sampleEvery: number;
  /** Time every kernel once after this many steps and then every profileEvery steps (0: never). */
  profileEvery: number;
  /** Fine-tune: 'full' or LoRA rank (as a string 'lora'). */
  mode: 'full' | 'lora';
  loraRank: number;
  prompt: string;
  temperature: number;
  /** Tokens generated per sample. */
  genTokens: number;
}

/** A model as two files, the way Hugging Face keeps it. */
export interface ModelFiles {
  configText: string;
  weights: Uint8Array;
}

export type ToWorker =
  | { type: 'init' }
  | { type: 'start'; preset: PresetName; settings: Settings; text?: string; init?: ModelFiles }
  | { type: 'load'; preset: PresetName; settings: Settings; init: ModelFiles; text?: string }
  | { type: 'pause' }
  | { type: 'resume' }
  | { type: 'stop' }
  | { type: 'generate'; prompt: string; temperature: number; maxNewTokens: number }
  | { type: 'export'; reason: 'download' | 'autosave' };

export interface AdapterMessage {
  type: 'adapter';
  info: { vendor: string; architecture: string; device: string; description: string; isFallback: boolean; features: string[] };
  deviceFeatures: string[];
  limits: Record<string, number>;
}

export interface KernelRow {
  kernel: string;
  calls: number;
  ms: number;
  gflops: number;
}

export type FromWorker =
  | AdapterMessage
  | { type: 'state'; state: 'running' | 'paused' | 'stopped' | 'done'; note?: string }
  | { type: 'model-info'; text: string; params: number; trained: number }
  | {
      type: 'progress';
      step: number;
      loss: number;
      /** Losses of every step since the last message, as [step, loss]. */
      points: [number, number][];
      msPerStep: number;
      throughput: number;
      unit: 'tokens/s' | 'samples/s';
      gflops: number;
      lr: number;
    }
  | { type: 'eval'; step: number; loss: number; accuracy?: number }
  | { type: 'sample'; step: number; text: string }
  | { type: 'kernels'; step: number; rows: KernelRow[]; totalMs: number }
  | { type: 'kernels-unavailable'; reason: string }
  | { type: 'model'; reason: 'download' | 'autosave'; preset: PresetName; step: number; files: ModelFiles; summary: string }
  | { type: 'log'; text: string }
  | { type: 'error'; name: string; message: string }
  | { type: 'lost'; reason: string };

/** Matmul benchmark: page ↔ demo/bench-worker.ts. */
export type ToBench = { type: 'run'; sizes: number[]; kernels: ('tiled' | 'subgroup' | 'registers')[]; minMs: number };

export interface BenchRow {
  impl: string;
  size: number;
  ms_median: number;
  ms_min: number;
  iters: number;
  gflops: number;
  /** Max |error| against a CPU product (sizes ≤ 256), or null when not checked. */
  max_error: number | null;
  note?: string;
}

export type FromBench =
  | { type: 'adapter'; name: string }
  | { type: 'row'; row: BenchRow }
  | { type: 'done' }
  | { type: 'error'; name: string; message: string };
