// The `wgsl-train` command line, thin over the library.
//   wgsl-train mlp [--epochs N] [--batch B] [--lr X] [--optimizer adam|adamw|sgd] [--hidden H] [--seed S] [--json]
// trains an MLP classifier on the built-in Palmer Penguins table and prints progress, throughput and
// held-out accuracy.
import { createRuntime, adapterName } from '../gpu/device.ts';
import { Sequential } from '../nn/sequential.ts';
import { Linear } from '../nn/linear.ts';
import { ReLU } from '../nn/activation.ts';
import { Trainer } from '../train/trainer.ts';
import { penguins } from '../data/penguins.ts';
import type { OptimizerConfig } from '../optim/optimizer.ts';

export class UsageError extends Error {
  override name = 'UsageError';
}

type Flags = Record<string, string | boolean>;

export function parseFlags(args: string[], known: Record<string, 'string' | 'number' | 'boolean'>): Flags {
  const out: Flags = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith('--')) throw new UsageError(`unexpected argument '${a}'`);
    const [name, inline] = a.slice(2).split('=', 2);
    const kind = known[name];
    if (!kind) throw new UsageError(`unknown flag --${name} (known: ${Object.keys(known).map((k) => '--' + k).join(' ')})`);
    if (kind === 'boolean') {
      out[name] = true;
      continue;
    }
    const v = inline ?? args[++i];
    if (v === undefined) throw new UsageError(`--${name} needs a value`);
    if (kind === 'number' && !Number.isFinite(Number(v))) throw new UsageError(`--${name} needs a number, got '${v}'`);
    out[name] = v;
  }
  return out;
}

const num = (f: Flags, k: string, d: number) => (f[k] === undefined ? d : Number(f[k]));

async function mlp(args: string[]): Promise<void> {
  const f = parseFlags(args, { epochs: 'number', batch: 'number', lr: 'number', optimizer: 'string', hidden: 'number', seed: 'number', json: 'boolean' });
  const seed = num(f, 'seed', 0);
  const data = penguins({ seed });
  const hidden = num(f, 'hidden', 64);
  const type = String(f.optimizer ?? 'adam');
  if (!['adam', 'adamw', 'sgd'].includes(type)) throw new UsageError(`--optimizer must be adam, adamw or sgd, got '${type}'`);
  const optimizer = { type, lr: num(f, 'lr', type === 'sgd' ? 0.1 : 0.01), ...(type === 'sgd' ? { momentum: 0.9 } : {}) } as OptimizerConfig;
  const rt = await createRuntime();
  const F = data.features.length;
  const model = new Sequential([new Linear(F, hidden), new ReLU(), new Linear(hidden, hidden), new ReLU(), new Linear(hidden, data.classes.length)]);
  const batchSize = num(f, 'batch', 32);
  const epochs = num(f, 'epochs', 30);
  const json = !!f.json;
  const say = (o: object, text: string) => console.log(json ? JSON.stringify(o) : text);
  say(
    { adapter: rt.adapterInfo },
    `adapter: ${adapterName(rt.adapterInfo)}${rt.adapterInfo.isFallback ? ' (software/fallback)' : ''}\n` +
      `data: Palmer Penguins, ${data.train.y.length} train / ${data.test.y.length} held-out rows, ${F} features → ${data.classes.join(', ')}\n` +
      `model: ${F}-${hidden}-${hidden}-${data.classes.length} MLP (ReLU), ${type} lr ${optimizer.lr}, batch ${batchSize}, ${epochs} epochs`,
  );
  const t0 = performance.now();
  const trainer = await Trainer.create(rt, model, { inputShape: [F], loss: 'cross-entropy', optimizer, batchSize, seed });
  say({ compiled_ms: Math.round(performance.now() - t0) }, `compiled in ${Math.round(performance.now() - t0)} ms (${trainer.commandsPerStep} commands per step)`);
  const fmt = (x: number, d = 1) => x.toFixed(d);
  await trainer.fit(data.train, {
    epochs,
    logEvery: 20,
    validation: data.test,
    onProgress: (p) =>
      say(p, `step ${String(p.step).padStart(4)}  epoch ${String(p.epoch + 1).padStart(3)}  loss ${p.loss.toFixed(4)}  ${fmt(p.msPerStep, 2)} ms/step  ${fmt(p.samplesPerSec, 0)} samples/s  ${fmt(p.gflops, 3)} GFLOP/s`),
    onEpoch: (e) => {
      if (e.validation && ((e.epoch + 1) % 10 === 0 || e.epoch + 1 === epochs)) {
        say({ epoch: e.epoch + 1, validation: e.validation }, `epoch ${e.epoch + 1}: held-out loss ${e.validation.loss.toFixed(4)}, accuracy ${(100 * e.validation.accuracy!).toFixed(1)}%`);
      }
    },
  });
  const final = await trainer.evaluate(data.test);
  say({ final }, `held-out accuracy: ${(100 * final.accuracy!).toFixed(1)}% (${data.test.y.length} rows)`);
  trainer.destroy();
  rt.destroy();
}

const USAGE = `usage: wgsl-train <command> [flags]
  mlp      train an MLP classifier on the built-in Palmer Penguins table
           [--epochs N] [--batch B] [--lr X] [--optimizer adam|adamw|sgd] [--hidden H] [--seed S] [--json]`;

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    if (cmd === 'mlp') await mlp(rest);
    else if (!cmd || cmd === '--help' || cmd === 'help') console.log(USAGE);
    else throw new UsageError(`unknown command '${cmd}'\n${USAGE}`);
    return 0;
  } catch (e) {
    const err = e as Error;
    console.error(`wgsl-train: ${err.name && err.name !== 'Error' ? err.name + ': ' : ''}${err.message}`);
    return err instanceof UsageError ? 2 : 1;
  }
}
