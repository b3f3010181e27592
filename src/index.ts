// wgsl-train: train and fine-tune neural networks on WebGPU, in the browser or Node, with every kernel
// hand-written WGSL. This is the public API; everything a user needs is exported here.
export { createRuntime, adapterName, Runtime, WebGPUUnavailableError, DeviceLostError } from './gpu/device.ts';
export type { AdapterReport, RuntimeOptions } from './gpu/device.ts';
export { ShaderCompileError } from './gpu/kernels.ts';
export { LimitError } from './gpu/buffers.ts';
export { ShapeError, Graph, Tensor } from './graph/graph.ts';
export type { Layer, Op, OpContext } from './graph/graph.ts';
export { Linear } from './nn/linear.ts';
export type { LinearOptions } from './nn/linear.ts';
export { ActivationLayer, ReLU, GELU, SiLU, Tanh, Sigmoid } from './nn/activation.ts';
export { Sequential } from './nn/sequential.ts';
export type { LossKind } from './nn/loss.ts';
export type { Activation } from './ops/activation.ts';
export { learningRate } from './optim/optimizer.ts';
export type { OptimizerConfig, Schedule } from './optim/optimizer.ts';
export { Trainer } from './train/trainer.ts';
export type { TrainerOptions, FitOptions, Progress, History, TrainingState, StepStatus } from './train/trainer.ts';
export type { Precision } from './train/compile.ts';
export { BatchError } from './train/batch.ts';
export type { Batch, Dataset } from './train/batch.ts';
export { prng, shuffled } from './train/random.ts';

// Kernel-level pieces, for benchmarks and the kernel lab: record dispatches yourself and time them.
export { Recorder, encodeCommands, grid1d } from './gpu/program.ts';
export type { Cost, Command } from './gpu/program.ts';
export { recordMatmul, DEFAULT_TILE, NARROW_TILE } from './ops/matmul.ts';
export type { MatmulTile, MatmulArgs } from './ops/matmul.ts';
export { createStorage, readF32, readFloats, writeArray } from './gpu/buffers.ts';
export type { View } from './gpu/buffers.ts';
export { penguins } from './data/penguins.ts';
export type { TableData } from './data/penguins.ts';
export { GPT, checkGPTConfig } from './nn/gpt.ts';
export { Generator, sample } from './nn/generate.ts';
export type { SampleOptions } from './nn/generate.ts';
export type { GPTConfig, GPTOptions, LoraOptions } from './nn/gpt.ts';
export { LayerNorm } from './nn/layernorm.ts';
export { estimateTrainingMemory } from './plan/estimate.ts';
export type { MemoryEstimate } from './plan/estimate.ts';
export { mergeLora } from './nn/lora.ts';
export { profileCommands, summarizeKernelTimes, TimestampsUnavailableError } from './gpu/profile.ts';
export type { KernelTime } from './gpu/profile.ts';
export { NonFiniteError } from './train/trainer.ts';

// Checkpoints: safetensors and Hugging Face GPT-2 folders (Node file helpers are in src/io/files.ts).
export { parseSafetensors, serializeSafetensors, SafetensorsError } from './io/safetensors.ts';
export type { SafetensorsFile, TensorInfo, TensorToWrite, Dtype } from './io/safetensors.ts';
export {
  parseGPT2Config, gpt2ConfigJson, gptModelConfig, loadGPT2Weights, loadGPT2WeightsFromBytes, saveGPT2Weights,
  describeSafetensors, CheckpointError,
} from './io/gpt2.ts';
export type { GPT2Config } from './io/gpt2.ts';

// Text and token data.
export { byteTokenizer, gpt2Tokenizer, getTokenizer, TokenizerError } from './data/tokenizer.ts';
export type { Tokenizer, TokenizerName } from './data/tokenizer.ts';
export { parseTokenFile, writeTokenFile, checkTokens, TokenFileError, TokenRangeError } from './data/tokens.ts';
export { TokenLoader, LoaderError } from './data/loader.ts';
export type { LoaderOptions, LoaderState, TokenBatch } from './data/loader.ts';
export { recordLayerNormForward, recordLayerNormBackward } from './ops/layernorm.ts';
export { recordAttentionForward, recordAttentionBackward, attentionScratchElements, chooseAttentionKernel } from './ops/attention.ts';
export { recordCrossEntropy } from './ops/loss.ts';
export { recordOptimizer, recordGradClip, stepValues, withDefaults } from './optim/optimizer.ts';
export { enableAutotune, fileTuneStore, localStorageTuneStore, memoryTuneStore, matmulCandidates, shapeClass, MatmulTuner } from './gpu/autotune.ts';
export type { TuneStore, TunedEntry } from './gpu/autotune.ts';
export { toHalf, roundHalf, halfToFloat } from './reference/half.ts';
