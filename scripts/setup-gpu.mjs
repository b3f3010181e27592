#!/usr/bin/env node
// Make WebGPU usable in Node (Dawn, via the `webgpu` package) on a fresh machine.
//
//   node scripts/setup-gpu.mjs             ensure a Vulkan driver (ICD) is installed
//   node scripts/setup-gpu.mjs --browser   ... and Debian's Chromium at /usr/bin/chromium
//   node scripts/setup-gpu.mjs --dry-run   print what would be done, change nothing
//
// Linux only needs work: Dawn on Linux talks to Vulkan, and a machine without a GPU
// needs a software Vulkan driver. On Debian/Ubuntu this installs Mesa's lavapipe
// (Mesa >= 24; on Debian 12 from bookworm-backports). If that fails it falls back
// to the SwiftShader ICD shipped in Debian's `chromium` package, which has to be
// selected with VK_ICD_FILENAMES. macOS (Metal) and Windows (D3D12) need nothing.
//
// Testing knobs (for trying the decision logic on a machine that is already set up;
// combine with --dry-run):
//   SETUP_GPU_PRETEND_NO_ICD=1        act as if no Vulkan ICD were installed
//   SETUP_GPU_PRETEND_NO_CHROMIUM=1   act as if /usr/bin/chromium were missing
//   SETUP_GPU_PRETEND_NONROOT=1       act as if not running as root
//   SETUP_GPU_PRETEND_NO_BACKPORTS=1  act as if bookworm-backports were not in the apt sources
//   SETUP_GPU_OS_RELEASE=<file>       read this instead of /etc/os-release
//   SETUP_GPU_PLATFORM=<platform>     act as if process.platform were this
//
// Exit status: 0 when a driver is (or already was) available, 1 when not.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const TAG = 'setup-gpu:';
const ICD_DIRS = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'];
const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const CHROMIUM = '/usr/bin/chromium';
const DEBIAN_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
const BACKPORTS_FILE = '/etc/apt/sources.list.d/bookworm-backports.sources';
const BACKPORTS_CONTENT = `Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: ${DEBIAN_KEYRING}
`;
const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ENV_FILE = path.join(PROJECT_ROOT, '.gpu', 'vulkan-env.sh');

const args = new Set(process.argv.slice(2));
if (args.has('--help') || args.has('-h')) {
  const src = fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n');
  console.log(src.slice(1, src.findIndex((l) => l.startsWith('import'))).map((l) => l.replace(/^\/\/ ?/, '')).join('\n'));
  process.exit(0);
}
for (const a of args) {
  if (!['--browser', '--dry-run'].includes(a)) fail(`unknown argument ${a} (try --help)`);
}
const WANT_BROWSER = args.has('--browser');
const DRY = args.has('--dry-run');
const env = process.env;
const PRETEND_NO_ICD = env.SETUP_GPU_PRETEND_NO_ICD === '1';
const PRETEND_NO_CHROMIUM = env.SETUP_GPU_PRETEND_NO_CHROMIUM === '1';
const platform = env.SETUP_GPU_PLATFORM || process.platform;

function log(msg) {
  console.log(`${TAG} ${msg}`);
}
function fail(msg) {
  console.error(`${TAG} ERROR: ${msg}`);
  process.exit(1);
}
function isFile(p) {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}
function onPath(cmd) {
  return (env.PATH || '/usr/bin:/bin')
    .split(path.delimiter)
    .filter(Boolean)
    .some((d) => {
      try {
        fs.accessSync(path.join(d, cmd), fs.constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
}

// ---------------------------------------------------------------- detection

/** Vulkan ICD manifests that the loader would pick up, or [] when none. */
function findIcds() {
  if (PRETEND_NO_ICD) return [];
  for (const v of ['VK_DRIVER_FILES', 'VK_ICD_FILENAMES']) {
    const files = (env[v] || '').split(path.delimiter).filter(Boolean).filter(isFile);
    if (files.length) return files.map((f) => `${f} (via ${v})`);
  }
  const found = [];
  for (const dir of ICD_DIRS) {
    let names = [];
    try {
      names = fs.readdirSync(dir);
    } catch {
      continue;
    }
    for (const n of names.sort()) if (n.endsWith('.json') && isFile(path.join(dir, n))) found.push(path.join(dir, n));
  }
  return found;
}

function describeIcds(icds) {
  const names = icds.map((f) => path.basename(f));
  const lvp = icds.find((f) => /lvp_icd/.test(f));
  const first = lvp ?? icds[0];
  const more = icds.length > 1 ? ` (+${icds.length - 1} more: ${names.filter((n) => n !== path.basename(first)).join(', ')})` : '';
  return `${first}${more}`;
}

function readOsRelease() {
  const file = env.SETUP_GPU_OS_RELEASE || '/etc/os-release';
  const out = {};
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return out;
  }
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]] = m[2].replace(/^["']|["']$/g, '');
  }
  return out;
}

function hasBackports() {
  if (env.SETUP_GPU_PRETEND_NO_BACKPORTS === '1') return false;
  const files = [];
  if (isFile('/etc/apt/sources.list')) files.push('/etc/apt/sources.list');
  try {
    for (const n of fs.readdirSync('/etc/apt/sources.list.d')) {
      if (n.endsWith('.list') || n.endsWith('.sources')) files.push(path.join('/etc/apt/sources.list.d', n));
    }
  } catch {
    /* none */
  }
  return files.some((f) => {
    try {
      return fs
        .readFileSync(f, 'utf8')
        .split('\n')
        .some((l) => !l.trim().startsWith('#') && /\bbookworm-backports\b/.test(l));
    } catch {
      return false;
    }
  });
}

function mesaVersion() {
  const r = spawnSync('dpkg-query', ['-W', '-f', '${Version}', 'mesa-vulkan-drivers'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

// ---------------------------------------------------------------- running commands

const isRoot = env.SETUP_GPU_PRETEND_NONROOT === '1' ? false : process.getuid?.() === 0;
const hasSudo = onPath('sudo');
/** Prefix for privileged commands; null when we cannot become root. */
const SUDO = isRoot ? [] : hasSudo ? (process.stdin.isTTY ? ['sudo'] : ['sudo', '-n']) : null;

function shellQuote(a) {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

/** Run a privileged command (argv without sudo). Returns true on success. */
function runRoot(argv, { fatal = true } = {}) {
  const full = [...SUDO, ...(SUDO.length ? ['env', 'DEBIAN_FRONTEND=noninteractive'] : []), ...argv];
  const shown = (SUDO.length ? full : ['DEBIAN_FRONTEND=noninteractive', ...full]).map(shellQuote).join(' ');
  if (DRY) {
    console.log(`  $ ${shown}`);
    return true;
  }
  log(`$ ${shown}`);
  const r = spawnSync(full[0], full.slice(1), {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (r.status === 0) return true;
  const why = r.error ? r.error.message : `exit status ${r.status ?? r.signal}`;
  if (fatal) fail(`command failed (${why}): ${shown}`);
  log(`warning: command failed (${why}): ${shown}`);
  return false;
}

let aptUpdated = false;
/** `apt-get update`, once per run (a failure is only a warning: the install may still work). */
function aptUpdate() {
  if (aptUpdated) return;
  aptUpdated = runRoot(['apt-get', 'update'], { fatal: false });
}

/** Write a root-owned file (via sudo tee when not root). */
function writeRootFile(file, content) {
  if (DRY) {
    console.log(`  # write ${file}:`);
    for (const l of content.trimEnd().split('\n')) console.log(`  #   ${l}`);
    return;
  }
  log(`writing ${file}`);
  if (isRoot) {
    fs.writeFileSync(file, content);
    return;
  }
  const r = spawnSync(SUDO[0], [...SUDO.slice(1), 'tee', file], { input: content, stdio: ['pipe', 'ignore', 'inherit'] });
  if (r.status !== 0) fail(`could not write ${file} with sudo`);
}

/** `apt-get install` argv; `target` is an apt target release such as bookworm-backports. */
const aptInstall = (pkgs, target) => ['apt-get', 'install', '-y', '--no-install-recommends', ...(target ? ['-t', target] : []), ...pkgs];

// ---------------------------------------------------------------- main

function main() {
  if (platform === 'darwin' || platform === 'win32') {
    log(`${platform === 'darwin' ? 'macOS (Metal)' : 'Windows (D3D12)'}: nothing to do.`);
    if (WANT_BROWSER) log('--browser: install Chromium or Chrome yourself on this OS; the browser test looks for /usr/bin/chromium.');
    return 0;
  }
  if (platform !== 'linux') fail(`unsupported platform ${platform}; WebGPU in Node needs Linux (Vulkan), macOS or Windows.`);

  const os = readOsRelease();
  const idLike = `${os.ID ?? ''} ${os.ID_LIKE ?? ''}`;
  const isDebianLike = /\b(debian|ubuntu)\b/.test(idLike);
  const aptOk = isDebianLike && onPath('apt-get');
  if (DRY) log(`dry run: OS ${os.PRETTY_NAME ?? 'unknown'}, ${isRoot ? 'root' : hasSudo ? 'not root, sudo available' : 'not root, no sudo'}; commands are printed, not run.`);

  let icds = findIcds();
  let needEnv = false;
  if (icds.length) {
    log(`Vulkan driver found: ${describeIcds(icds)}; nothing to install.`);
  } else {
    if (!aptOk) {
      fail(
        `no Vulkan driver (ICD) found in ${ICD_DIRS.join(', ')} and this is not Debian/Ubuntu with apt-get.\n` +
          '  Install a Vulkan driver for your GPU, or Mesa\'s software driver lavapipe (Mesa >= 24), e.g.\n' +
          '  Fedora: dnf install mesa-vulkan-drivers vulkan-loader   Arch: pacman -S vulkan-swrast vulkan-icd-loader\n' +
          '  Alpine: apk add mesa-vulkan-swrast vulkan-loader',
      );
    }
    if (!SUDO) {
      fail(
        'no Vulkan driver (ICD) found, and installing one needs root (not root, and no sudo).\n' +
          `  As root run: apt-get update && apt-get install -y mesa-vulkan-drivers libvulkan1` +
          (os.VERSION_CODENAME === 'bookworm' ? ' (from bookworm-backports for Mesa >= 24: -t bookworm-backports)' : ''),
      );
    }
    log(`no Vulkan driver (ICD) found; installing Mesa lavapipe (software Vulkan) on ${os.PRETTY_NAME ?? os.ID}.`);
    needEnv = !installLavapipe(os);
    if (!needEnv) {
      icds = DRY ? ['<lvp_icd.json after install>'] : findIcds();
      if (icds.length) {
        if (!DRY) {
          log(`Vulkan driver installed: ${describeIcds(icds)} (mesa-vulkan-drivers ${mesaVersion() ?? '?'}).`);
          fs.rmSync(ENV_FILE, { force: true }); // a SwiftShader fallback from an earlier run is no longer needed
        }
        if (DRY) {
          log(`dry run: after the install, the script checks ${ICD_DIRS[0]} for an ICD; if none appeared it falls back to SwiftShader:`);
          installSwiftShader(os, { dryFallback: true });
        }
      } else {
        log('lavapipe was installed but no ICD manifest appeared; falling back to SwiftShader.');
        needEnv = true;
      }
    }
    if (needEnv && !DRY) installSwiftShader(os);
  }

  if (WANT_BROWSER) ensureChromium(os, aptOk);
  return 0;
}

/** Returns true when the apt commands succeeded. */
function installLavapipe(os) {
  const major = parseInt(os.VERSION_ID ?? '', 10);
  if (os.ID === 'debian' && os.VERSION_CODENAME === 'bookworm') {
    // Mesa in bookworm is 22.3; lavapipe from Mesa >= 24 is in bookworm-backports.
    if (!isFile(DEBIAN_KEYRING)) {
      aptUpdate();
      if (!runRoot(aptInstall(['debian-archive-keyring']), { fatal: false })) return false;
    }
    if (hasBackports()) {
      log('bookworm-backports is already in the apt sources.');
    } else {
      writeRootFile(BACKPORTS_FILE, BACKPORTS_CONTENT);
      aptUpdated = false; // new source: must update again
    }
    aptUpdate();
    return runRoot(aptInstall(['mesa-vulkan-drivers', 'libvulkan1'], 'bookworm-backports'), { fatal: false });
  }
  if ((os.ID === 'debian' && major && major < 12) || (os.ID === 'ubuntu' && major && major < 24)) {
    log(`warning: ${os.PRETTY_NAME} ships Mesa < 24; its lavapipe may be too old for Dawn. Debian >= 12 (with backports) or Ubuntu >= 24.04 is recommended.`);
  }
  aptUpdate();
  return runRoot(aptInstall(['mesa-vulkan-drivers', 'libvulkan1']), { fatal: false });
}

function swiftShaderHint() {
  return `export VK_ICD_FILENAMES=${SWIFTSHADER_ICD}`;
}

function installSwiftShader(os, { dryFallback = false } = {}) {
  const present = !PRETEND_NO_CHROMIUM && isFile(SWIFTSHADER_ICD);
  if (!present) {
    if (os.ID !== 'debian' && !dryFallback) {
      fail(
        `could not install lavapipe, and the SwiftShader fallback needs Debian's chromium package (${SWIFTSHADER_ICD}), not available on ${os.PRETTY_NAME ?? os.ID}.\n` +
          '  Install mesa-vulkan-drivers (Mesa >= 24) and libvulkan1 by hand, then rerun.',
      );
    }
    if (!dryFallback) log('installing Debian\'s chromium package for its SwiftShader Vulkan driver.');
    aptUpdate();
    if (!runRoot(aptInstall(['chromium', 'libvulkan1']), { fatal: false }) || (!DRY && !isFile(SWIFTSHADER_ICD))) {
      fail(
        'could not provide a Vulkan driver: installing mesa-vulkan-drivers (lavapipe) failed, and so did the\n' +
          `  SwiftShader fallback (package chromium, file ${SWIFTSHADER_ICD}). Install mesa-vulkan-drivers and libvulkan1, then rerun.`,
      );
    }
  }
  if (DRY) {
    console.log(`  # then print: ${swiftShaderHint()}   (and write it to .gpu/vulkan-env.sh)`);
    return;
  }
  fs.mkdirSync(path.dirname(ENV_FILE), { recursive: true });
  fs.writeFileSync(ENV_FILE, `# written by scripts/setup-gpu.mjs: use Chromium's SwiftShader as the Vulkan driver\n${swiftShaderHint()}\n`);
  log('using the SwiftShader Vulkan driver from Debian\'s chromium package. It is not registered system-wide:');
  log('set this in your shell (or `. .gpu/vulkan-env.sh`) before running tests, benches or the quick start:');
  console.log(`\n    ${swiftShaderHint()}\n`);
}

function ensureChromium(os, aptOk) {
  if (!PRETEND_NO_CHROMIUM && isFile(CHROMIUM)) {
    log(`--browser: ${CHROMIUM} found.`);
    return;
  }
  if (!aptOk) fail(`--browser: ${CHROMIUM} is missing; install Chromium so that it lives at ${CHROMIUM} (Debian package: chromium).`);
  if (!SUDO) fail(`--browser: ${CHROMIUM} is missing and installing it needs root (not root, and no sudo). As root run: apt-get install -y chromium`);
  log(`--browser: ${CHROMIUM} missing; installing Debian's chromium package.`);
  aptUpdate();
  runRoot(aptInstall(['chromium']));
  if (!DRY && !isFile(CHROMIUM)) {
    fail(`--browser: installed package chromium but ${CHROMIUM} still does not exist` + (os.ID === 'ubuntu' ? ' (Ubuntu ships Chromium as a snap; install a Chromium build at /usr/bin/chromium yourself).' : '.'));
  }
}

process.exit(main());
