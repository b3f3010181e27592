// The Palmer Penguins table (344 birds, 3 species), shipped with the package as a small built-in data set:
// predict the species from bill length and depth, flipper length, body mass and island.
// Rows with a missing measurement are dropped; features are standardised with the training split's
// mean and standard deviation; the split is seeded.
import table from './penguins.json';
import type { Dataset } from '../train/batch.ts';
import { prng, shuffled } from '../train/random.ts';

export interface TableData {
  train: Dataset;
  test: Dataset;
  features: string[];
  classes: string[];
}

export function penguins(opts: { seed?: number; testFraction?: number } = {}): TableData {
  const cols = table.columns;
  const at = (name: string) => cols.indexOf(name);
  const numeric = ['Beak Length (mm)', 'Beak Depth (mm)', 'Flipper Length (mm)', 'Body Mass (g)'];
  const islands = ['Biscoe', 'Dream', 'Torgersen'];
  const classes = ['Adelie', 'Chinstrap', 'Gentoo'];
  const rows = (table.rows as (string | number | null)[][]).filter((r) => numeric.every((c) => typeof r[at(c)] === 'number'));
  const F = numeric.length + islands.length;
  const order = shuffled(rows.length, prng(opts.seed ?? 0));
  const nTest = Math.round(rows.length * (opts.testFraction ?? 0.2));
  const nTrain = rows.length - nTest;

  const raw = new Float32Array(rows.length * F);
  const labels = new Int32Array(rows.length);
  order.forEach((src, i) => {
    const r = rows[src];
    numeric.forEach((c, j) => (raw[i * F + j] = r[at(c)] as number));
    raw[i * F + numeric.length + islands.indexOf(r[at('Island')] as string)] = 1;
    labels[i] = classes.indexOf(r[at('Species')] as string);
  });
  for (let j = 0; j < numeric.length; j++) {
    let mean = 0;
    for (let i = 0; i < nTrain; i++) mean += raw[i * F + j] / nTrain;
    let v = 0;
    for (let i = 0; i < nTrain; i++) v += (raw[i * F + j] - mean) ** 2 / nTrain;
    const sd = Math.sqrt(v) || 1;
    for (let i = 0; i < rows.length; i++) raw[i * F + j] = (raw[i * F + j] - mean) / sd;
  }
  return {
    train: { x: raw.slice(0, nTrain * F), y: labels.slice(0, nTrain) },
    test: { x: raw.slice(nTrain * F), y: labels.slice(nTrain) },
    features: [...numeric, ...islands.map((i) => `island=${i}`)],
    classes,
  };
}
