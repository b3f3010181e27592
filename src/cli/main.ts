// The `wgsl-train` command line, thin over the library (usage below). `mlp` trains an MLP classifier on the
// built-in Palmer Penguins table; train, generate and inspect are the GPT-2 commands in gpt.ts.
import { createRuntime, adapterName } from '../gpu/device.ts';
import { Sequential } from '../nn/sequential.ts';
import { Linear } from '../nn/linear.ts';
import { ReLU } from '../nn/activation.ts';
import { Trainer } from '../train/trainer.ts';
import { penguins } from '../data/penguins.ts';
import type { OptimizerConfig } from '../optim/optimizer.ts';
import { parseFlags, UsageError, type Flags } from './flags.ts';
import { train, generate, inspect } from './gpt.ts';

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
  train     (--init DIR | --config config.json | --resume DIR) --data FILE [--tokenizer byte|gpt2]
            --batch B --seq T --steps N [--optimizer adamw|adam|sgd] [--lr X] [--beta1 X] [--beta2 X] [--eps X]
            [--weight-decay X] [--grad-clip X] [--warmup N] [--schedule constant|cosine] [--accum K] [--seed S]
            [--no-shuffle] [--log FILE.jsonl] [--save DIR] [--lora-rank R] [--lora-alpha A]
            [--lora-targets c_attn,c_proj,c_fc] [--freeze GLOB[,GLOB]] [--log-every N] [--autotune] [--precision f32|f16 [--loss-scale S]]
  generate  --init DIR --prompt TEXT [--max-new-tokens N] [--temperature X] [--top-k K] [--seed S] [--tokenizer byte|gpt2]
  inspect   FILE.safetensors|DIR
  mlp       train an MLP classifier on the built-in Palmer Penguins table
            [--epochs N] [--batch B] [--lr X] [--optimizer adam|adamw|sgd] [--hidden H] [--seed S] [--json]`;

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    if (cmd === 'mlp') await mlp(rest);
    else if (cmd === 'train') await train(rest);
    else if (cmd === 'generate') await generate(rest);
    else if (cmd === 'inspect') await inspect(rest);
    else if (!cmd || cmd === '--help' || cmd === 'help') console.log(USAGE);
    else throw new UsageError(`unknown command '${cmd}'\n${USAGE}`);
    return 0;
  } catch (e) {
    const err = e as Error;
    const oneLine = String(err?.message ?? err).split('\n')[0];
    console.error(`wgsl-train: ${err.name && !['Error', 'UsageError'].includes(err.name) ? err.name + ': ' : ''}${oneLine}`);
    return err instanceof UsageError ? 2 : 1;
  }
}
