#!/usr/bin/env node
// First step of every npm script a person runs on a fresh checkout: install the npm packages when
// node_modules is missing or older than package-lock.json, then make WebGPU usable (scripts/setup-gpu.mjs;
// flags such as --browser are passed through). Uses only Node's standard library.
import { existsSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const marker = join(root, 'node_modules', '.package-lock.json');
const lock = join(root, 'package-lock.json');
const stale = !existsSync(marker) || (existsSync(lock) && statSync(lock).mtimeMs > statSync(marker).mtimeMs + 1000);

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
  if (r.status !== 0) {
    console.error(`setup: '${cmd} ${args.join(' ')}' failed (exit ${r.status ?? r.signal})`);
    process.exit(r.status || 1);
  }
}

if (stale) {
  console.log('setup: installing npm packages (node_modules is missing or older than package-lock.json)');
  run('npm', existsSync(lock) ? ['ci', '--no-audit', '--no-fund'] : ['install', '--no-audit', '--no-fund']);
}
run(process.execPath, [join(root, 'scripts', 'setup-gpu.mjs'), ...process.argv.slice(2)]);
