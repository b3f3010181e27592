// Node-only helpers for Hugging Face style model folders (config.json + model.safetensors). Node's fs
// and path are imported dynamically, so a browser bundle that includes this module still builds.
import { parseSafetensors, SafetensorsError, type SafetensorsFile } from './safetensors.ts';
import { CheckpointError, gpt2ConfigJson, loadGPT2Weights, parseGPT2Config, saveGPT2Weights, type GPT2Config } from './gpt2.ts';

export const CONFIG_FILE = 'config.json';
export const WEIGHTS_FILE = 'model.safetensors';

async function nodeModules() {
  const [fs, path] = await Promise.all([import('node:fs/promises'), import('node:path')]);
  return { fs, path };
}

const isNotFound = (e: unknown) => (e as { code?: string })?.code === 'ENOENT';

export interface ModelFolder {
  config: GPT2Config;
  /** Parameters under canonical names (see gpt2.ts), as float32. */
  weights: Map<string, Float32Array>;
  /** The parsed model.safetensors, for its metadata and dtypes. */
  file: SafetensorsFile;
}

/** Reads `dir/config.json` and `dir/model.safetensors` as a GPT-2. */
export async function readModelFolder(dir: string): Promise<ModelFolder> {
  const { fs, path } = await nodeModules();
  const configPath = path.join(dir, CONFIG_FILE);
  const weightsPath = path.join(dir, WEIGHTS_FILE);
  let configText: string;
  try {
    configText = await fs.readFile(configPath, 'utf8');
  } catch (e) {
    if (isNotFound(e)) throw new CheckpointError('FILE_MISSING', `model folder ${dir} has no ${CONFIG_FILE} (looked for ${configPath})`, { cause: e });
    throw new CheckpointError('FILE_MALFORMED', `cannot read ${configPath}: ${(e as Error).message}`, { cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(configText);
  } catch (e) {
    throw new CheckpointError('FILE_MALFORMED', `${configPath} is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  let config: GPT2Config;
  try {
    config = parseGPT2Config(json);
  } catch (e) {
    if (e instanceof CheckpointError) throw new CheckpointError(e.code, `${configPath}: ${e.message}`, { cause: e });
    throw e;
  }

  let bytes: Uint8Array;
  try {
    const buf = await fs.readFile(weightsPath);
    bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } catch (e) {
    if (!isNotFound(e)) throw new CheckpointError('FILE_MALFORMED', `cannot read ${weightsPath}: ${(e as Error).message}`, { cause: e });
    const others = await fs.readdir(dir).catch(() => [] as string[]);
    const hint = others.includes('model.safetensors.index.json')
      ? ' (sharded checkpoints are not supported: merge the shards into one model.safetensors)'
      : others.includes('pytorch_model.bin')
        ? ' (only pytorch_model.bin is present: convert it to safetensors first)'
        : '';
    throw new CheckpointError('FILE_MISSING', `model folder ${dir} has no ${WEIGHTS_FILE}${hint}`, { cause: e });
  }
  let file: SafetensorsFile;
  try {
    file = parseSafetensors(bytes);
  } catch (e) {
    if (e instanceof SafetensorsError) throw new CheckpointError('FILE_MALFORMED', `${weightsPath}: ${e.message} [${e.code}]`, { cause: e });
    throw e;
  }
  try {
    return { config, weights: loadGPT2Weights(file, config), file };
  } catch (e) {
    if (e instanceof CheckpointError) throw new CheckpointError(e.code, `${weightsPath} does not match ${CONFIG_FILE}: ${e.message}`, { cause: e });
    throw e;
  }
}

/**
 * Writes `dir/model.safetensors` (F32, as transformers saves it) and `dir/config.json`, plus any extra
 * files (e.g. tokenizer files), each atomically: written to a temporary file in the same folder,
 * fsynced, then renamed over the target, so a crash mid-save leaves either the old file or the new one.
 */
export async function writeModelFolder(
  dir: string,
  config: GPT2Config,
  params: ReadonlyMap<string, Float32Array>,
  extraFiles?: Readonly<Record<string, string | Uint8Array>>,
): Promise<void> {
  const { fs, path } = await nodeModules();
  // Validate and serialize everything before touching the disk.
  const weights = saveGPT2Weights(params, config);
  const configText = gpt2ConfigJson(config);
  const files: [string, string | Uint8Array][] = [];
  for (const [name, data] of Object.entries(extraFiles ?? {})) {
    if (name === WEIGHTS_FILE || name === CONFIG_FILE) throw new CheckpointError('FILE_MALFORMED', `writeModelFolder: extra file ${name} would overwrite the model's own`);
    if (!name || name === '.' || name === '..' || /[/\\\0]/.test(name)) throw new CheckpointError('FILE_MALFORMED', `writeModelFolder: extra file name ${JSON.stringify(name)} must be a plain file name`);
    if (typeof data !== 'string' && !(data instanceof Uint8Array)) throw new CheckpointError('FILE_MALFORMED', `writeModelFolder: extra file ${name} must be a string or Uint8Array`);
    files.push([name, data]);
  }
  await fs.mkdir(dir, { recursive: true });
  // Weights first: a crash between the two leaves new weights with the old config, never a half file.
  await writeAtomic(fs, path.join(dir, WEIGHTS_FILE), weights);
  await writeAtomic(fs, path.join(dir, CONFIG_FILE), configText);
  for (const [name, data] of files) await writeAtomic(fs, path.join(dir, name), data);
  await syncDir(fs, dir);
}

type Fs = typeof import('node:fs/promises');

/** Writes `target` atomically: temp file in the same folder, fsync, rename. */
export async function writeFileAtomic(target: string, data: string | Uint8Array): Promise<void> {
  const { fs, path } = await nodeModules();
  await writeAtomic(fs, target, data);
  await syncDir(fs, path.dirname(target));
}

async function writeAtomic(fs: Fs, target: string, data: string | Uint8Array): Promise<void> {
  const { path } = await nodeModules();
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.tmp-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`);
  let handle: Awaited<ReturnType<Fs['open']>> | undefined;
  try {
    handle = await fs.open(tmp, 'wx', 0o644);
    await handle.writeFile(data);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fs.rename(tmp, target);
  } catch (e) {
    await handle?.close().catch(() => {});
    await fs.rm(tmp, { force: true }).catch(() => {});
    throw e;
  }
}

/** fsyncs a directory so the renames are durable (best effort: not possible on every platform). */
async function syncDir(fs: Fs, dir: string): Promise<void> {
  let handle: Awaited<ReturnType<Fs['open']>> | undefined;
  try {
    handle = await fs.open(dir, 'r');
    await handle.sync();
  } catch {
    // Windows cannot open or fsync a directory; the renames are still atomic.
  } finally {
    await handle?.close().catch(() => {});
  }
}
