// The pipeline registry: one compile per (shader, defines), a compile error that shows the WGSL line, and
// the shader loader's substitution rules.
import { describe, it, expect } from 'vitest';
import { testRuntime } from '../helpers.ts';
import { KernelRegistry, ShaderCompileError } from '../../src/gpu/kernels.ts';
import { shaderSource, shaderNames } from '../../src/gpu/shaders.ts';

const rt = await testRuntime();

describe('shader loader', () => {
  it('finds every kernel and applies defines, #if variants and includes', () => {
    expect(shaderNames()).toEqual(expect.arrayContaining(['matmul', 'activation', 'cross_entropy', 'optimizer', 'lib/activation']));
    const relu = shaderSource('activation', { ACT: 1, ACCUMULATE: true, IN_T: 'f32', SAVED_T: 'f32', OUT_T: 'f32', F16: false });
    expect(relu).toContain('const ACT: u32 = 1u;');
    expect(relu).toContain('out[i] = to_f32(f32(out[i]) + g);');
    expect(relu).not.toContain('out[i] = to_f32(g);');
    expect(relu).not.toContain('enable f16;');
    expect(shaderSource('activation', { ACT: 1, ACCUMULATE: false, IN_T: 'f16', SAVED_T: 'f16', OUT_T: 'f16', F16: true })).toMatch(/enable f16;[^]*inp: array<f16>[^]*out\[i\] = to_f16\(g\);/);
    expect(relu).not.toContain('#include');
    expect(() => shaderSource('activation', { ACT: 1, IN_T: 'f32', SAVED_T: 'f32', OUT_T: 'f32', F16: false })).toThrow(/needs the define \{\{ACCUMULATE\}\}/);
    expect(() => shaderSource('nope')).toThrow(/unknown shader 'nope'/);
  });
});

describe.skipIf(!rt)('pipeline registry', () => {
  it('compiles a (shader, defines) pair once and shares it', async () => {
    const reg = KernelRegistry.for(rt!);
    const kinds = ['uniform', 'read', 'write'] as const;
    const [a, b] = await Promise.all([reg.get('sum', 'main', kinds), reg.get('sum', 'main', kinds)]);
    expect(a).toBe(b);
    expect(await reg.get('sum', 'main', kinds)).toBe(a);
  });

  it('a WGSL compile error names the shader and shows the offending line', async () => {
    const reg = KernelRegistry.for(rt!);
    // A define that is not a number makes `const ACT: u32 = oopsu;`, an unresolved identifier.
    const err = await reg.get('activation', 'forward', ['uniform', 'read', 'read', 'write'], { ACT: 'oops', ACCUMULATE: false, IN_T: 'f32', SAVED_T: 'f32', OUT_T: 'f32', F16: false }).catch((e) => e);
    expect(err).toBeInstanceOf(ShaderCompileError);
    expect(err.message).toMatch(/WGSL compile error in activation\.wgsl:forward/);
    expect(err.message).toMatch(/error at line \d+:\d+/);
    expect(err.message).toMatch(/> +\d+ \| const ACT: u32 = oopsu;/);
  });
});
