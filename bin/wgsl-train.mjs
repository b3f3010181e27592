#!/usr/bin/env node
// The `wgsl-train` command: runs the built CLI (dist/cli.js; `npm run build` makes it).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
if (!existsSync(cli)) {
  console.error('wgsl-train: dist/cli.js is missing; run `npm run build` first');
  process.exit(1);
}
const { main } = await import(cli);
// Exit explicitly: Dawn's instance can keep Node's event loop alive after the device is destroyed.
process.exit(await main(process.argv.slice(2)));
