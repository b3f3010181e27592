// WGSL sources from shaders/*.wgsl, loaded as text, with light substitution:
// `#include "lib/x"` pastes shaders/lib/x.wgsl, `{{NAME}}` is replaced by a define's value, and `#if {{FLAG}}` … `#else` … `#endif` chooses
// variants through wgsl-preprocessor. Nothing else is generated.
import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';

const files = import.meta.glob('../../shaders/**/*.wgsl', { query: '?raw', import: 'default', eager: true }) as Record<
  string,
  string
>;

const byName = new Map<string, string>();
for (const [path, text] of Object.entries(files)) byName.set(path.replace(/^.*\/shaders\/(.*)\.wgsl$/, '$1'), text);

/** Replaces each `#include "lib/name"` line with that file's text (one level, no cycles). */
function withIncludes(name: string, text: string): string {
  return text.replace(/^#include "([\w/]+)"\s*$/gm, (_, inc: string) => {
    const body = byName.get(inc);
    if (body === undefined) throw new Error(`shader '${name}' includes unknown '${inc}'`);
    return body;
  });
}

export type Defines = Record<string, number | boolean | string>;

export function shaderNames(): string[] {
  return [...byName.keys()].sort();
}

/** The WGSL text of shaders/<name>.wgsl with the defines applied. */
export function shaderSource(name: string, defines: Defines = {}): string {
  const text = byName.get(name);
  if (text === undefined) throw new Error(`unknown shader '${name}' (have: ${shaderNames().join(', ')})`);
  const parts = withIncludes(name, text).split(/\{\{(\w+)\}\}/);
  const strings: string[] = [];
  const values: unknown[] = [];
  for (let i = 0; i < parts.length; i++) {
    if (i % 2 === 0) strings.push(parts[i]);
    else {
      const key = parts[i];
      if (!(key in defines)) throw new Error(`shader '${name}' needs the define {{${key}}}`);
      values.push(defines[key]);
    }
  }
  const raw = Object.assign(strings.slice(), { raw: strings.slice() }) as unknown as TemplateStringsArray;
  return wgsl(raw, ...values);
}
