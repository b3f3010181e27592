// Matmul autotuning: the first time a shape class is recorded on an adapter, every candidate kernel
// configuration is timed on that shape and the fastest is kept, per (adapter, shape class), in a cache that
// can persist (a JSON file in Node, localStorage in a browser) so later runs and pages skip the timing.
// Without autotuning, recordMatmul uses the shipped defaults (chooseKernel / chooseTile).
import {
  recordMatmul, setMatmulChooser, knownSubgroupSize, DEFAULT_TILE, NARROW_TILE,
  type MatmulChoice, type MatmulShape, type MatmulTile,
} from '../ops/matmul.ts';
import { Recorder, encodeCommands } from './program.ts';
import { createStorage } from './buffers.ts';
import { adapterName, type Runtime } from './device.ts';

export interface TunedEntry {
  choice: MatmulChoice;
  /** Median milliseconds of the chosen configuration, and of every candidate, on the shape timed. */
  ms: number;
  candidates: { name: string; ms: number }[];
  shape: MatmulShape;
}

/** Where tuned choices persist between runs. */
export interface TuneStore {
  load(): Promise<Record<string, TunedEntry>>;
  save(entries: Record<string, TunedEntry>): Promise<void>;
}

export function memoryTuneStore(): TuneStore {
  let data: Record<string, TunedEntry> = {};
  return { load: async () => ({ ...data }), save: async (e) => void (data = { ...e }) };
}

/** A JSON file (Node only), written atomically. */
export function fileTuneStore(path: string): TuneStore {
  return {
    async load() {
      const fs = await import('node:fs/promises');
      try {
        return JSON.parse(await fs.readFile(path, 'utf8'));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
        throw new Error(`autotune cache ${path} is unreadable: ${(e as Error).message}`);
      }
    },
    async save(entries) {
      const fs = await import('node:fs/promises');
      const { dirname } = await import('node:path');
      await fs.mkdir(dirname(path), { recursive: true });
      const tmp = `${path}.${process.pid}.tmp`;
      await fs.writeFile(tmp, JSON.stringify(entries, null, 1));
      await fs.rename(tmp, path);
    },
  };
}

/** The page's localStorage (browser). */
export function localStorageTuneStore(key = 'wgsl-train-autotune'): TuneStore {
  const ls = (globalThis as { localStorage?: Storage }).localStorage;
  if (!ls) throw new Error('localStorage is not available here; pass another TuneStore');
  return {
    load: async () => JSON.parse(ls.getItem(key) ?? '{}'),
    save: async (e) => ls.setItem(key, JSON.stringify(e)),
  };
}

const pow2 = (n: number) => 2 ** Math.max(4, Math.ceil(Math.log2(Math.max(1, n))));

/** The class a shape is tuned for: transposes and each dimension rounded up to a power of two (≥ 16). */
export function shapeClass(s: MatmulShape): string {
  return `${s.transA ? 't' : 'n'}${s.transB ? 't' : 'n'} ${pow2(s.M)}x${pow2(s.N)}x${pow2(s.K)}`;
}

const SMALL_TILE: MatmulTile = { BM: 32, BN: 32, BK: 16, TM: 2, TN: 2 };

/** The configurations tried on this adapter. */
export function matmulCandidates(rt: Runtime): { name: string; choice: MatmulChoice }[] {
  const out: { name: string; choice: MatmulChoice }[] = [
    { name: 'tiled 64x64', choice: { kernel: 'tiled', tile: DEFAULT_TILE } },
    { name: 'tiled 64x32', choice: { kernel: 'tiled', tile: NARROW_TILE } },
    { name: 'tiled 32x32', choice: { kernel: 'tiled', tile: SMALL_TILE } },
  ];
  if (knownSubgroupSize(rt) >= 8) {
    for (const wg of [16, 32, 64]) out.push({ name: `subgroup wg${wg}`, choice: { kernel: 'subgroup', sgWorkgroup: wg } });
  }
  // The 'registers' kernel needs nothing of the adapter; its workgroup size follows the shape (registersWorkgroupSize).
  for (const rbBlock of [{ TM: 2, TN: 8 }, { TM: 4, TN: 4 }, { TM: 4, TN: 8 }] as const) {
    out.push({ name: `registers ${rbBlock.TM}x${rbBlock.TN}`, choice: { kernel: 'registers', rbBlock } });
  }
  return out;
}

export class MatmulTuner {
  private entries: Record<string, TunedEntry> = {};
  private readonly pending = new Map<string, Promise<MatmulChoice>>();
  /** Shape classes timed by this tuner (not found in the cache). */
  timed = 0;

  constructor(
    readonly rt: Runtime,
    readonly store: TuneStore,
    readonly iterations = 3,
  ) {}

  /** Cache key: the adapter and the shape class. */
  key(s: MatmulShape): string {
    return `${adapterName(this.rt.adapterInfo)} | ${shapeClass(s)}`;
  }

  async load(): Promise<void> {
    this.entries = await this.store.load();
  }

  choose(s: MatmulShape): Promise<MatmulChoice> {
    const key = this.key(s);
    const hit = this.entries[key];
    if (hit) return Promise.resolve(hit.choice);
    let p = this.pending.get(key);
    if (!p) {
      p = this.tune(key, s);
      this.pending.set(key, p);
    }
    return p;
  }

  private async tune(key: string, s: MatmulShape): Promise<MatmulChoice> {
    const { device } = this.rt;
    const view = (n: number) => ({ buffer: createStorage(device, n * 4, 'autotune'), offset: 0, size: Math.max(16, n * 4) });
    const A = view(s.M * s.K), B = view(s.K * s.N), C = view(s.M * s.N);
    const results: { name: string; ms: number; choice: MatmulChoice }[] = [];
    try {
      for (const c of matmulCandidates(this.rt)) {
        const rec = new Recorder(this.rt);
        await recordMatmul(rec, { label: `autotune ${c.name}`, A, B, C, M: s.M, N: s.N, K: s.K, transA: s.transA, transB: s.transB, ...c.choice });
        const run = async () => {
          const enc = device.createCommandEncoder({ label: 'autotune' });
          encodeCommands(enc, rec.commands);
          device.queue.submit([enc.finish()]);
          await device.queue.onSubmittedWorkDone();
        };
        await run();
        const ms: number[] = [];
        for (let i = 0; i < this.iterations; i++) {
          const t = performance.now();
          await run();
          ms.push(performance.now() - t);
        }
        ms.sort((a, b) => a - b);
        results.push({ name: c.name, ms: ms[Math.floor(ms.length / 2)], choice: c.choice });
        for (const b of rec.owned) b.destroy();
      }
    } finally {
      for (const v of [A, B, C]) v.buffer.destroy();
    }
    results.sort((a, b) => a.ms - b.ms);
    const best = results[0];
    this.entries[key] = { choice: best.choice, ms: best.ms, candidates: results.map(({ name, ms }) => ({ name, ms })), shape: s };
    this.timed++;
    await this.store.save(this.entries);
    return best.choice;
  }

  /** One line per tuned class on this adapter: the choice and the candidates' times. */
  report(): string[] {
    const mine = `${adapterName(this.rt.adapterInfo)} | `;
    return Object.entries(this.entries)
      .filter(([k]) => k.startsWith(mine))
      .map(([k, e]) => `${k.slice(mine.length)}: ${e.candidates[0].name} (${e.candidates.map((c) => `${c.name} ${c.ms.toFixed(2)} ms`).join(', ')})`);
  }
}

/**
 * Turns on autotuning for every matmul recorded on this runtime from now on (explicit kernel or tile
 * choices are left alone). The default store keeps choices in memory only.
 */
export async function enableAutotune(rt: Runtime, opts: { store?: TuneStore; iterations?: number } = {}): Promise<MatmulTuner> {
  const tuner = new MatmulTuner(rt, opts.store ?? memoryTuneStore(), opts.iterations);
  await tuner.load();
  setMatmulChooser(rt, (s) => tuner.choose(s));
  return tuner;
}

