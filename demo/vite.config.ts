// The demo page: `npm start` (dev server on 127.0.0.1:5173; `npm start -- --port 5180` for another port)
// and `npm run build:demo` (static site in demo/dist). The page imports the library from ../src directly.
import { defineConfig } from 'vite';
import { fileURLToPath } from 'node:url';

const demo = fileURLToPath(new URL('.', import.meta.url));
const repo = fileURLToPath(new URL('..', import.meta.url));

export default defineConfig({
  root: demo,
  // Its own dependency cache, so that it can run beside the test pages' dev server (node_modules/.vite).
  cacheDir: fileURLToPath(new URL('../node_modules/.vite-demo', import.meta.url)),
  base: './',
  publicDir: 'public',
  server: { host: '127.0.0.1', port: 5173, fs: { allow: [repo] } },
  preview: { host: '127.0.0.1', port: 4173 },
  worker: { format: 'es' },
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', sourcemap: false, chunkSizeWarningLimit: 2000 },
  // Dependencies pre-bundled up front, so no mid-session re-optimisation (a 504 "Outdated Optimize Dep").
  optimizeDeps: { entries: ['index.html'], include: ['wgsl-preprocessor/wgsl-preprocessor.js', 'uplot'] },
});
