// Command-line flags: `--name value`, `--name=value` and boolean `--name`; unknown flags and missing or
// malformed values are usage errors (exit status 2) that name the flag.
export class UsageError extends Error {
  override name = 'UsageError';
}

export type Flags = Record<string, string | boolean>;

export function parseFlags(args: string[], known: Readonly<Record<string, 'string' | 'number' | 'boolean'>>): Flags {
  const out: Flags = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith('--')) throw new UsageError(`unexpected argument '${a}'`);
    const eq = a.indexOf('=');
    const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
    const inline = eq < 0 ? undefined : a.slice(eq + 1);
    const kind = known[name];
    if (!kind) throw new UsageError(`unknown flag --${name}`);
    if (kind === 'boolean') {
      if (inline !== undefined) throw new UsageError(`--${name} takes no value`);
      out[name] = true;
      continue;
    }
    const v = inline ?? args[++i];
    if (v === undefined) throw new UsageError(`--${name} needs a value`);
    if (kind === 'number' && (v.trim() === '' || !Number.isFinite(Number(v)))) throw new UsageError(`--${name} needs a number, got '${v}'`);
    out[name] = v;
  }
  return out;
}
