// Interrupted saves: a checkpoint save that fails part-way (a rename that throws, a write cut off midway by
// a full disk, an fsync error, a process that dies without cleaning up) leaves the previous checkpoint's
// files intact and loadable, and training resumes from that last good checkpoint bit-identically.
// node:fs/promises is wrapped so that a test can make one call fail; everything else is the real thing.
import { describe, it, expect, vi, beforeEach, afterAll } from 'vitest';
import * as nodeFs from 'node:fs/promises';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testRuntime } from '../helpers.ts';
import { GPT, Trainer, type GPTConfig, type TrainerOptions } from '../../src/index.ts';
import type { TrainingState } from '../../src/train/trainer.ts';
import { readModelFolder, writeFileAtomic, writeModelFolder, WEIGHTS_FILE, CONFIG_FILE } from '../../src/io/files.ts';
import { parseGPT2Config } from '../../src/io/gpt2.ts';
import { parseSafetensors, serializeSafetensors } from '../../src/io/safetensors.ts';

/** One injected failure: which call, on which occurrence (1-based) since arming. */
type Fault =
  | { kind: 'rename'; nth: number }
  | { kind: 'write-half'; nth: number } // writes the first half of the data, then ENOSPC
  | { kind: 'fsync'; nth: number }
  | { kind: 'crash-at-rename'; nth: number }; // rename throws and the process "dies": no cleanup of the temp file
let fault: Fault | null = null;
const seen = { rename: 0, open: 0 };

vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  const ioError = (code: string) => Object.assign(new Error(`${code}: injected failure`), { code });
  const open: typeof real.open = async (...args: Parameters<typeof real.open>) => {
    const handle = await real.open(...args);
    if (args[1] !== 'wx') return handle; // only the temp files of atomic writes
    const n = ++seen.open;
    const f = fault;
    if (f && f.kind === 'write-half' && f.nth === n) {
      return new Proxy(handle, {
        get(target, key) {
          if (key === 'writeFile') {
            return async (data: string | Uint8Array) => {
              const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
              await target.writeFile(bytes.subarray(0, bytes.length >> 1));
              throw ioError('ENOSPC');
            };
          }
          const v = Reflect.get(target, key);
          return typeof v === 'function' ? v.bind(target) : v;
        },
      });
    }
    if (f && f.kind === 'fsync' && f.nth === n) {
      return new Proxy(handle, {
        get(target, key) {
          if (key === 'sync') return async () => { throw ioError('EIO'); };
          const v = Reflect.get(target, key);
          return typeof v === 'function' ? v.bind(target) : v;
        },
      });
    }
    return handle;
  };
  const rename: typeof real.rename = async (from, to) => {
    const n = ++seen.rename;
    if (fault && (fault.kind === 'rename' || fault.kind === 'crash-at-rename') && fault.nth === n) throw ioError('EIO');
    return real.rename(from, to);
  };
  const rm: typeof real.rm = async (path, options) => {
    if (fault?.kind === 'crash-at-rename' && seen.rename >= fault.nth) return; // the process is gone: nothing cleans up
    return real.rm(path, options);
  };
  const mocked = { ...real, open, rename, rm };
  return { ...mocked, default: mocked };
});

const rt = await testRuntime();
const root = mkdtempSync(join(tmpdir(), 'wgsl-train-ckpt-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
beforeEach(() => {
  fault = null;
});
const arm = (f: Fault) => {
  seen.rename = 0;
  seen.open = 0;
  fault = f;
};

const hf = parseGPT2Config({
  vocab_size: 37, n_positions: 12, n_embd: 16, n_layer: 1, n_head: 2, n_inner: null, activation_function: 'gelu_new',
  layer_norm_epsilon: 1e-5, tie_word_embeddings: true, scale_attn_weights: true, scale_attn_by_inverse_layer_idx: false,
  reorder_and_upcast_attn: false, initializer_range: 0.02,
});
const config: GPTConfig = { vocab_size: 37, n_positions: 12, n_embd: 16, n_layer: 1, n_head: 2, layer_norm_epsilon: 1e-5 };
const B = 2;
const T = 8;
const options: TrainerOptions = {
  inputShape: [T], loss: 'cross-entropy', batchSize: B, seed: 4, gradClip: 1, decay: 'matrices',
  optimizer: { type: 'adamw', lr: 3e-3, weightDecay: 0.1 },
};
const batch = (s: number) => {
  const x = new Int32Array(B * T).map((_, i) => (i * 7 + s * 13) % config.vocab_size);
  return { x, y: x.map((v) => (v * 5 + 1) % config.vocab_size) };
};

const STATE = 'training_state.safetensors';
/** Params, m, v and the step in one file: either the whole state is replaced or none of it. */
function stateFile(s: TrainingState): Uint8Array {
  const t = (prefix: string, m: Map<string, Float32Array>) => [...m].map(([n, d]) => ({ name: `${prefix}${n}`, dtype: 'F32' as const, shape: [d.length], data: d }));
  return serializeSafetensors([...t('param.', s.params), ...t('m.', s.m), ...t('v.', s.v)], { step: String(s.step) });
}
function readStateFile(bytes: Uint8Array): TrainingState {
  const f = parseSafetensors(bytes);
  const pick = (prefix: string) => new Map(f.names.filter((n) => n.startsWith(prefix)).map((n) => [n.slice(prefix.length), f.tensorF32(n)]));
  return { step: Number(f.metadata!.step), params: pick('param.'), m: pick('m.'), v: pick('v.') };
}
async function save(dir: string, t: Trainer) {
  const s = await t.readState();
  await writeModelFolder(dir, hf, s.params, { [STATE]: stateFile(s) });
}
const snapshot = (dir: string) => new Map(readdirSync(dir).sort().map((f) => [f, readFileSync(join(dir, f))]));
const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

async function trainTo(t: Trainer, steps: number): Promise<number[]> {
  const losses: number[] = [];
  while (t.stepCount < steps) losses.push(await t.step(batch(t.stepCount), { readLoss: true }));
  return losses;
}

// Files written per save, in order: model.safetensors, config.json, training_state.safetensors.
const faults: [string, Fault][] = [
  ['the first rename fails (model.safetensors)', { kind: 'rename', nth: 1 }],
  ['the second rename fails (config.json)', { kind: 'rename', nth: 2 }],
  ['the last rename fails (training state)', { kind: 'rename', nth: 3 }],
  ['the disk fills midway through the weights', { kind: 'write-half', nth: 1 }],
  ['the disk fills midway through the training state', { kind: 'write-half', nth: 3 }],
  ['fsync fails on the training state', { kind: 'fsync', nth: 3 }],
  ['the process dies at the training state rename (temp file left behind)', { kind: 'crash-at-rename', nth: 3 }],
];

describe.skipIf(!rt)('interrupted saves', () => {
  // The uninterrupted run: 5 steps, its losses and final weights.
  let reference: { losses: number[]; params: Map<string, Float32Array> } | undefined;
  const referenceRun = async () => {
    if (reference) return reference;
    const t = await Trainer.create(rt!, new GPT(config), options);
    try {
      const losses = await trainTo(t, 5);
      reference = { losses, params: await t.readParams() };
      return reference;
    } finally {
      t.destroy();
    }
  };

  for (const [label, f] of faults) {
    it(`${label}: every file is the old one or the new one whole, the state is the last good one, and training resumes from it`, async () => {
      const ref = await referenceRun();
      const dir = mkdtempSync(join(root, 'run-'));
      const t = await Trainer.create(rt!, new GPT(config), options);
      try {
        await trainTo(t, 3);
        await save(dir, t); // the good checkpoint, at step 3
        const good = snapshot(dir);
        const newer = await t.readState();
        await trainTo(t, 4);
        arm(f);
        await expect(save(dir, t)).rejects.toThrow(/injected failure/);
        fault = null;
        const after = snapshot(dir);
        // Each file is either exactly the old one or exactly the new one (never half-written), and the
        // only other thing a dying process may leave is a hidden temp file.
        const fresh = new Map([...snapshot(dir)].filter(([n]) => !n.startsWith('.')));
        expect([...fresh.keys()]).toEqual([...good.keys()]);
        for (const [name, data] of fresh) {
          const same = data.equals(good.get(name)!);
          if (!same) expect(name, `${name} changed: only a file renamed before the failure may`).not.toBe(STATE);
        }
        const temps = [...after.keys()].filter((n) => n.startsWith('.'));
        expect(temps.length).toBe(f.kind === 'crash-at-rename' ? 1 : 0);
        // The training state is the step-3 one, whole, and the model folder still loads.
        const state = readStateFile(readFileSync(join(dir, STATE)));
        expect(state.step).toBe(3);
        expect(newer.step).toBe(3);
        for (const [n, p] of newer.params) expect(bytes(state.params.get(n)!).equals(bytes(p)), n).toBe(true);
        const folder = await readModelFolder(dir);
        expect(folder.config.n_embd).toBe(16);
        expect([...folder.weights.keys()].sort()).toEqual([...newer.params.keys()].sort());
        // Resume from the last good checkpoint: steps 4 and 5 again, bit-identical to the uninterrupted run.
        const r = await Trainer.create(rt!, new GPT(config), options);
        try {
          r.loadState(state);
          const losses = await trainTo(r, 5);
          expect(losses).toEqual(ref.losses.slice(3));
          for (const [n, p] of await r.readParams()) expect(bytes(p).equals(bytes(ref.params.get(n)!)), `${n} after resuming`).toBe(true);
        } finally {
          r.destroy();
        }
      } finally {
        t.destroy();
        fault = null;
      }
    });
  }

  it('writeFileAtomic over an existing file: a failed rename or a half write leaves the old bytes', async () => {
    const dir = mkdtempSync(join(root, 'file-'));
    const target = join(dir, 'state.bin');
    await writeFileAtomic(target, new Uint8Array([1, 2, 3, 4]));
    for (const f of [{ kind: 'rename', nth: 1 }, { kind: 'write-half', nth: 1 }, { kind: 'fsync', nth: 1 }] as Fault[]) {
      arm(f);
      await expect(writeFileAtomic(target, new Uint8Array(1000).fill(9))).rejects.toThrow(/injected failure/);
      fault = null;
      expect([...readFileSync(target)], f.kind).toEqual([1, 2, 3, 4]);
      expect(readdirSync(dir), f.kind).toEqual(['state.bin']);
    }
    await writeFileAtomic(target, 'new');
    expect(readFileSync(target, 'utf8')).toBe('new');
    expect(await nodeFs.readFile(join(dir, 'state.bin'), 'utf8')).toBe('new');
    expect([WEIGHTS_FILE, CONFIG_FILE]).toEqual(['model.safetensors', 'config.json']);
  });
});
