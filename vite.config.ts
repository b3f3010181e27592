// Library build (dist/index.js, dist/cli.js), the demo dev server, and the Vitest setup.
import { defineConfig } from 'vitest/config';
import { builtinModules } from 'node:module';

const nodeOnly = ['webgpu', ...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

export default defineConfig({
  build: {
    target: 'es2022',
    outDir: 'dist',
    emptyOutDir: true,
    minify: false,
    sourcemap: true,
    lib: {
      entry: { index: 'src/index.ts', cli: 'src/cli/main.ts' },
      formats: ['es'],
    },
    rollupOptions: { external: nodeOnly },
  },
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
