// The safetensors reader and writer: byte-exact agreement with the reference implementation's own test
// vectors and with files written from PyTorch (test/fixtures/safetensors, made by
// scripts/fixtures/make_safetensors_fixtures.py), round trips of every dtype, every rejection case with
// its error code, and a seeded fuzz run in which nothing but a SafetensorsError may ever be thrown.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import {
  parseSafetensors, serializeSafetensors, encodeF16, encodeBF16, SafetensorsError, DTYPE_SIZE, MAX_HEADER_BYTES,
  type Dtype, type SafetensorsErrorCode, type TensorToWrite,
} from '../../src/io/safetensors.ts';
import { describeSafetensors } from '../../src/io/gpt2.ts';

const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`../fixtures/safetensors/${name}`, import.meta.url)));
const expected = JSON.parse(new TextDecoder().decode(fixture('expected.json')));
const sha256 = (b: ArrayBufferView) => createHash('sha256').update(new Uint8Array(b.buffer, b.byteOffset, b.byteLength)).digest('hex');
const enc = new TextEncoder();

/** A file from a header text (not padded) and a data section of `dataLength` bytes (or given bytes). */
function raw(header: string, data: number | Uint8Array = 0, n?: number): Uint8Array {
  const h = enc.encode(header);
  const d = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + h.length + d.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(n ?? h.length), true);
  out.set(h, 8);
  out.set(d, 8 + h.length);
  return out;
}

function rejects(bytes: Uint8Array, code: SafetensorsErrorCode, message: RegExp) {
  let caught: unknown;
  try {
    parseSafetensors(bytes);
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected ${code}`).toBeInstanceOf(SafetensorsError);
  expect((caught as SafetensorsError).code).toBe(code);
  expect((caught as SafetensorsError).message).toMatch(message);
}

function mulberry32(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const f32Entry = (begin: number, n = 1) => `{"dtype":"F32","shape":[${n}],"data_offsets":[${begin},${begin + 4 * n}]}`;

describe('reference implementation test vectors', () => {
  const f32 = new Float32Array([0, 1, 2, 3, 4, 5]);
  it('one F32 tensor: exact bytes', () => {
    const out = serializeSafetensors([{ name: 'attn.0', dtype: 'F32', shape: [1, 2, 3], data: f32 }]);
    const json = '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}';
    expect(json.length).toBe(64);
    expect(out).toEqual(new Uint8Array([...raw(json), ...new Uint8Array(f32.buffer)]));
  });
  it('header padding with spaces forces 8-byte alignment', () => {
    const out = serializeSafetensors([{ name: 'attn0', dtype: 'F32', shape: [1, 1, 2, 3], data: f32 }]);
    const json = '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}';
    expect(new DataView(out.buffer).getUint32(0, true)).toBe(72);
    expect(new TextDecoder().decode(out.subarray(8, 80))).toBe(json + ' '.repeat(72 - json.length));
    expect(out.subarray(80)).toEqual(new Uint8Array(f32.buffer));
  });
  it('empty file, with and without metadata', () => {
    expect(serializeSafetensors([])).toEqual(new Uint8Array([8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]));
    const withMeta = serializeSafetensors([], { framework: 'pt' });
    expect(withMeta).toEqual(raw('{"__metadata__":{"framework":"pt"}}     '));
    expect(parseSafetensors(withMeta).metadata).toEqual({ framework: 'pt' });
    expect(parseSafetensors(serializeSafetensors([])).names).toEqual([]);
  });
});

// Values for every dtype, as raw bytes in a typed array of the right width.
function sampleData(dtype: Dtype, numel: number, rnd: () => number): ArrayBufferView {
  switch (dtype) {
    case 'F32': return Float32Array.from({ length: numel }, () => (rnd() - 0.5) * 100);
    case 'F64': return Float64Array.from({ length: numel }, () => (rnd() - 0.5) * 1e10);
    case 'F16': return encodeF16(Float32Array.from({ length: numel }, () => (rnd() - 0.5) * 10));
    case 'BF16': return encodeBF16(Float32Array.from({ length: numel }, () => (rnd() - 0.5) * 1e6));
    case 'I64': case 'U64': return BigInt64Array.from({ length: numel }, () => BigInt(Math.floor(rnd() * 2 ** 53)) * (rnd() < 0.5 ? -1n : 1n));
    default: {
      const b = new Uint8Array(numel * DTYPE_SIZE[dtype]);
      for (let i = 0; i < b.length; i++) b[i] = Math.floor(rnd() * 256);
      if (dtype === 'BOOL') for (let i = 0; i < b.length; i++) b[i] &= 1;
      return b;
    }
  }
}

describe('round trips', () => {
  const dtypes = Object.keys(DTYPE_SIZE) as Dtype[];
  it('every dtype, every shape kind (scalar, empty, 1-4 dims): bytes, dtype, shape, offsets', () => {
    const rnd = mulberry32(7);
    const shapes = [[], [0], [3], [2, 0, 5], [2, 3], [1, 2, 3, 4]];
    const tensors: TensorToWrite[] = [];
    for (const dtype of dtypes) {
      shapes.forEach((shape, k) => {
        const numel = shape.reduce((a, b) => a * b, 1);
        tensors.push({ name: `${dtype.toLowerCase()}.${k}`, dtype, shape, data: sampleData(dtype, numel, rnd) });
      });
    }
    const bytes = serializeSafetensors(tensors, { format: 'pt', ünïcødé: 'ok "quoted" \n\u0001' });
    const file = parseSafetensors(bytes);
    expect(file.headerLength % 8).toBe(0);
    expect(file.metadata).toEqual({ format: 'pt', ünïcødé: 'ok "quoted" \n\u0001' });
    expect(file.names.length).toBe(tensors.length);
    for (const t of tensors) {
      const info = file.info(t.name);
      expect(info.dtype).toBe(t.dtype);
      expect(info.shape).toEqual(t.shape);
      // The writer sorts by descending alignment, so every tensor is aligned to its element size.
      expect(info.dataOffsets[0] % DTYPE_SIZE[t.dtype]).toBe(0);
      expect(file.tensorBytes(t.name)).toEqual(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
      if (t.dtype === 'F32') expect(file.tensorF32(t.name)).toEqual(t.data);
      else if (t.dtype === 'F64') expect(file.tensorF32(t.name)).toEqual(Float32Array.from(t.data as Float64Array));
      else if (t.dtype === 'F16') expect(encodeF16(file.tensorF32(t.name))).toEqual(t.data);
      else if (t.dtype === 'BF16') expect(encodeBF16(file.tensorF32(t.name))).toEqual(t.data);
      else expect(() => file.tensorF32(t.name)).toThrow(expect.objectContaining({ code: 'DTYPE_UNSUPPORTED' }));
    }
    // Data order: descending dtype rank, then name.
    const rank = ['BOOL', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'I16', 'U16', 'F16', 'BF16', 'I32', 'U32', 'F32', 'F64', 'I64', 'U64'];
    const order = [...tensors].sort((a, b) => rank.indexOf(b.dtype) - rank.indexOf(a.dtype) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map((t) => t.name);
    expect(file.names).toEqual(order);
  });

  it('deterministic: byte-identical output whatever the input order; names sorted bytewise (UTF-8)', () => {
    const rnd = mulberry32(11);
    const spec: [string, Dtype][] = [
      ['b', 'F16'], ['a', 'F32'], ['B', 'F16'], ['é', 'F32'], ['\u{1F600}', 'F32'], ['\uFFFD', 'F32'], ['a.10', 'F16'],
      ['a.9', 'F16'], ['__proto__', 'F16'], ['constructor', 'F32'], ['', 'F16'], ['i', 'I64'], ['u', 'U8'],
    ];
    const tensors: TensorToWrite[] = spec.map(([name, dtype]) => ({ name, dtype, shape: [2], data: sampleData(dtype, 2, rnd) }));
    const a = serializeSafetensors(tensors, { z: '1', a: '2' });
    const b = serializeSafetensors([...tensors].reverse(), { a: '2', z: '1' });
    expect(sha256(a)).toBe(sha256(b));
    const file = parseSafetensors(a);
    // U+FFFD (EF BF BD) sorts before U+1F600 (F0 9F 98 80) bytewise, though not by UTF-16 code units.
    expect(file.names).toEqual(['i', 'a', 'constructor', 'é', '\uFFFD', '\u{1F600}', '', 'B', '__proto__', 'a.10', 'a.9', 'b', 'u']);
    for (const t of tensors) expect(file.tensorBytes(t.name)).toEqual(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    expect(new TextDecoder().decode(a.subarray(8, 8 + file.headerLength))).toMatch(/^\{"__metadata__":\{"a":"2","z":"1"\},/);
  });

  it('the writer rejects bad input with INVALID_INPUT', () => {
    const ok = { name: 'x', dtype: 'F32' as Dtype, shape: [2], data: new Float32Array(2) };
    const bad: [TensorToWrite[], RegExp][] = [
      [[ok, { ...ok }], /"x": name given twice/],
      [[{ ...ok, data: new Float32Array(3) }], /"x": data has 12 bytes but F32 × \[2\] needs 8/],
      [[{ ...ok, shape: [-1] }], /shape must be/],
      [[{ ...ok, dtype: 'F31' as Dtype }], /unknown dtype "F31"/],
      [[{ ...ok, name: '__metadata__' }], /reserved/],
      [[{ ...ok, name: '\uD800' }], /well-formed/],
    ];
    for (const [tensors, msg] of bad) {
      expect(() => serializeSafetensors(tensors)).toThrow(msg);
      expect(() => serializeSafetensors(tensors)).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
    }
    expect(() => serializeSafetensors([ok], { k: 1 as unknown as string })).toThrow(/metadata value for "k" must be a string/);
  });

  it('encodeF16 / encodeBF16 round to nearest even, keep specials', () => {
    expect([...encodeF16([0, -0, 1, 65504, 65520, 1e-8, 2 ** -25, 2 ** -25 * (1 + 2 ** -10), 2 ** -14 * (1 - 2 ** -11), Infinity, -Infinity, 1 + 2 ** -11, 1 + 3 * 2 ** -11])])
      .toEqual([0, 0x8000, 0x3c00, 0x7bff, 0x7c00, 0, 0, 1, 0x400, 0x7c00, 0xfc00, 0x3c00, 0x3c02]);
    expect(encodeF16([NaN])[0] & 0x7fff).toBeGreaterThan(0x7c00);
    expect([...encodeBF16([1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -0, Infinity])]).toEqual([0x3f80, 0x3f80, 0x3f82, 0x8000, 0x7f80]);
    expect(encodeBF16([NaN])[0] & 0x7fff).toBeGreaterThan(0x7f80);
  });
});

describe('files written from PyTorch', () => {
  it('fixtures are the ones expected.json describes', () => {
    for (const [name, hash] of Object.entries(expected.files as Record<string, string>)) expect(sha256(fixture(name)), name).toBe(hash);
  });

  it('dtypes.safetensors: every dtype, special values, scalar and empty tensors', () => {
    const file = parseSafetensors(fixture('dtypes.safetensors'));
    expect(file.metadata).toEqual({ format: 'pt', note: 'dtype fixture' });
    const exp = expected.dtypes as Record<string, { dtype: Dtype; shape: number[]; bytes_sha256: string; f32_bits?: number[]; values?: number[] }>;
    expect([...file.names].sort()).toEqual(Object.keys(exp).sort());
    for (const [name, e] of Object.entries(exp)) {
      const info = file.info(name);
      expect(info.dtype, name).toBe(e.dtype);
      expect(info.shape, name).toEqual(e.shape);
      const bytes = file.tensorBytes(name);
      expect(sha256(bytes), name).toBe(e.bytes_sha256);
      if (e.f32_bits) {
        const f = file.tensorF32(name);
        // Compare bit patterns (NaN included): the conversion is exactly torch's.
        const bits = [...new Uint32Array(f.buffer, f.byteOffset, f.length)];
        if (e.dtype === 'F64') expect(bits.map((b, i) => (Number.isNaN(f[i]) ? 'nan' : b)), name).toEqual(e.f32_bits.map((b) => ((b & 0x7f800000) === 0x7f800000 && b & 0x7fffff ? 'nan' : b)));
        else expect(bits, name).toEqual(e.f32_bits);
      } else {
        const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        const size = DTYPE_SIZE[e.dtype];
        const read = (i: number): number => {
          switch (e.dtype) {
            case 'BOOL': case 'U8': return dv.getUint8(i);
            case 'I8': return dv.getInt8(i);
            case 'I16': return dv.getInt16(i * size, true);
            case 'U16': return dv.getUint16(i * size, true);
            case 'I32': return dv.getInt32(i * size, true);
            case 'U32': return dv.getUint32(i * size, true);
            case 'I64': return Number(dv.getBigInt64(i * size, true));
            case 'U64': return Number(dv.getBigUint64(i * size, true));
            default: throw new Error(e.dtype);
          }
        };
        expect(Array.from({ length: info.numel }, (_, i) => read(i)), name).toEqual(e.values);
      }
    }
    expect(file.tensorF32('scalar_f32')).toEqual(new Float32Array([2.75]));
    expect(file.tensorF32('empty_f32')).toEqual(new Float32Array(0));
  });

  it('re-serializing a PyTorch-written file reproduces it byte for byte (same layout as the reference)', () => {
    for (const name of ['dtypes.safetensors', 'gpt2-tiny-f32.safetensors', 'gpt2-tiny-f16.safetensors', 'gpt2-tiny-bf16.safetensors']) {
      const original = fixture(name);
      const file = parseSafetensors(original);
      const again = serializeSafetensors(file.names.map((n) => ({ name: n, dtype: file.info(n).dtype, shape: file.info(n).shape, data: file.tensorBytes(n) })), file.metadata ?? undefined);
      expect(sha256(again), name).toBe(sha256(original));
    }
  });

  it("encodeF16 / encodeBF16 of the F32 file equal torch's .to(float16 / bfloat16)", () => {
    const f32 = parseSafetensors(fixture('gpt2-tiny-f32.safetensors'));
    for (const [tag, encode] of [['f16', encodeF16], ['bf16', encodeBF16]] as const) {
      const low = parseSafetensors(fixture(`gpt2-tiny-${tag}.safetensors`));
      for (const name of f32.names) {
        if (low.info(name).dtype === 'BOOL') continue;
        const mine = encode(f32.tensorF32(name));
        expect(new Uint8Array(mine.buffer), `${tag} ${name}`).toEqual(low.tensorBytes(name));
      }
    }
  });

  it('describeSafetensors lists names, dtypes, shapes and the parameter count', () => {
    const d = describeSafetensors(parseSafetensors(fixture('gpt2-tiny-f16.safetensors')));
    expect(d.tensors.length).toBe(Object.keys(expected.gpt2.f16).length);
    // 4428 parameters + 2 × (16×16 mask + 1 masked_bias).
    expect(d.totalParams).toBe(4428 + 2 * 257);
    expect(d.paramsByDtype).toEqual({ F16: 4428 + 2 * 257 });
    expect(d.metadata).toEqual({ format: 'pt' });
    expect(d.lines[0]).toMatch(/^name\s+dtype\s+shape\s+params$/);
    expect(d.lines.some((l) => /^transformer\.wte\.weight\s+F16\s+\[37, 12\]\s+444$/.test(l))).toBe(true);
    expect(d.lines.at(-2)).toMatch(/^32 tensors, 4,942 parameters \(F16 4,942\)/);
    expect(JSON.parse(JSON.stringify(d)).tensors[0]).toHaveProperty('shape');
  });
});

describe('rejections', () => {
  it('file shorter than 8 bytes', () => {
    rejects(new Uint8Array(0), 'FILE_TOO_SMALL', /0 bytes, shorter than the 8-byte header length/);
    rejects(new Uint8Array(7), 'FILE_TOO_SMALL', /7 bytes/);
  });
  it('header length above 100 MB or past the end of the file', () => {
    rejects(raw('{}', 0, MAX_HEADER_BYTES + 1), 'HEADER_TOO_LARGE', /100000001 exceeds the 100000000-byte limit/);
    const huge = raw('{}');
    huge.fill(0xff, 0, 8);
    rejects(huge, 'HEADER_TOO_LARGE', /exceeds/);
    rejects(raw('{}', 0, 2 ** 32 + 2), 'HEADER_TOO_LARGE', /4294967298 exceeds/);
  });
  it('header length past the end', () => {
    rejects(raw('{}', 0, 100), 'HEADER_PAST_END', /header length 100 runs past the end of the 10-byte file/);
    rejects(fixture('gpt2-tiny-f32.safetensors').subarray(0, 100), 'HEADER_PAST_END', /runs past the end/);
  });
  it('header not UTF-8', () => {
    const b = raw('{"a\u00e9":1}');
    b[12] = 0xff;
    rejects(b, 'HEADER_UTF8', /not valid UTF-8/);
    const overlong = raw('{"ab":1}');
    overlong.set([0xc0, 0xaf], 10);
    rejects(overlong, 'HEADER_UTF8', /UTF-8/);
  });
  it('header not JSON', () => {
    for (const h of ['{"a":', '{"a" 1}', '{} x', '{"a":1,}', '{a:1}', "{'a':1}", '{"a":01}', '{"a":"\\x"}', '{"a":"\\ud800"}', '{"a":"\t"}', '', '   ', '\ufeff{}', '{}\u0000']) {
      rejects(raw(h), 'HEADER_JSON', /not valid JSON/);
    }
    rejects(raw(`{"a":${'['.repeat(100_000)}`), 'HEADER_JSON', /nesting deeper than 64/);
  });
  it('header JSON not an object', () => {
    for (const h of ['[]', '"str"', '123', 'null', ' [{"a":1}]']) rejects(raw(h), 'HEADER_NOT_OBJECT', /must be a JSON object/);
  });
  it('entries that are not objects or lack a field', () => {
    rejects(raw('{"w":1}'), 'ENTRY_INVALID', /tensor "w": entry must be an object with dtype, shape and data_offsets, but it is the number 1/);
    rejects(raw('{"w":[0]}'), 'ENTRY_INVALID', /"w": entry must be an object.*an array/);
    rejects(raw('{"w":{"dtype":"F32","shape":[1]}}', 4), 'ENTRY_INVALID', /"w": entry lacks "data_offsets"/);
    rejects(raw('{"w":{"shape":[1],"data_offsets":[0,4]}}', 4), 'ENTRY_INVALID', /"w": entry lacks "dtype"/);
    rejects(raw('{"w":{"dtype":"F32","data_offsets":[0,4]}}', 4), 'ENTRY_INVALID', /"w": entry lacks "shape"/);
  });
  it('unknown dtype', () => {
    rejects(raw('{"w":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}', 4), 'DTYPE_UNKNOWN', /"w": unknown dtype "F33" \(known: BOOL, U8/);
    rejects(raw('{"w":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}}', 4), 'DTYPE_UNKNOWN', /unknown dtype/);
    rejects(raw('{"w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}', 4), 'DTYPE_UNKNOWN', /unknown dtype \(the number 4\)/);
  });
  it('shape entries not non-negative safe integers', () => {
    for (const s of ['[-1]', '[1.5]', '[1e2]', '[1.0]', '["2"]', '[null]', '[9007199254740993]', '[[1]]']) {
      rejects(raw(`{"w":{"dtype":"F32","shape":${s},"data_offsets":[0,4]}}`, 4), 'SHAPE_INVALID', /"w": shape entries must be non-negative safe integers/);
    }
    rejects(raw('{"w":{"dtype":"F32","shape":4,"data_offsets":[0,4]}}', 4), 'SHAPE_INVALID', /"w": shape must be an array/);
    rejects(raw('{"w":{"dtype":"U8","shape":[1048576,1048576,1048576],"data_offsets":[0,4]}}', 4), 'SHAPE_INVALID', /more than 2\^53 elements/);
  });
  it('data_offsets not two ordered non-negative integers', () => {
    for (const o of ['[4,0]', '[0]', '[0,4,8]', '[-1,3]', '[0,"4"]', '[0,4.0]', '"0,4"', '{}', 'null']) {
      rejects(raw(`{"w":{"dtype":"F32","shape":[1],"data_offsets":${o}}}`, 4), 'OFFSETS_INVALID', /"w": data_offsets must be two ordered non-negative integers/);
    }
  });
  it('byte size differs from dtype size × product(shape)', () => {
    rejects(raw('{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}', 20), 'SIZE_MISMATCH', /"w": data_offsets \[0, 20\] hold 20 bytes but F32 × \[2, 3\] needs 24 bytes/);
  });
  it('offsets out of range', () => {
    rejects(raw(`{"w":${f32Entry(0, 2)}}`, 4), 'OFFSETS_OUT_OF_RANGE', /"w": data_offsets \[0, 8\] run past the end of the 4-byte data section/);
    rejects(raw(`{"w":{"dtype":"U8","shape":[1],"data_offsets":[9007199254740990,9007199254740991]}}`, 4), 'OFFSETS_OUT_OF_RANGE', /past the end/);
  });
  it('overlapping tensors', () => {
    rejects(raw(`{"a":${f32Entry(0, 2)},"b":${f32Entry(4, 2)}}`, 12), 'OVERLAP', /"a" \[0, 8\] and "b" \[4, 12\] overlap/);
    rejects(raw(`{"a":${f32Entry(0)},"b":${f32Entry(0)}}`, 4), 'OVERLAP', /overlap/);
    // An empty tensor inside another one's bytes is an overlap too (the reference rejects it).
    rejects(raw(`{"a":${f32Entry(0, 2)},"e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}`, 8), 'OVERLAP', /"a" \[0, 8\] and "e" \[4, 4\] overlap/);
  });
  it('holes: leading, between, trailing', () => {
    rejects(raw(`{"a":${f32Entry(4)}}`, 8), 'HOLE', /bytes \[0, 4\) before tensor "a" belong to no tensor/);
    rejects(raw(`{"a":${f32Entry(0)},"b":${f32Entry(8)}}`, 12), 'HOLE', /bytes \[4, 8\) before tensor "b"/);
    rejects(raw(`{"a":${f32Entry(0)}}`, 9), 'HOLE', /last 5 bytes \[4, 9\) belong to no tensor/);
    rejects(raw('{}', 1), 'HOLE', /last 1 bytes/);
  });
  it('duplicate names, including one spelled with an escape', () => {
    rejects(raw(`{"a":${f32Entry(0)},"a":${f32Entry(0)}}`, 4), 'DUPLICATE_NAME', /lists tensor "a" more than once/);
    rejects(raw(`{"ab":${f32Entry(0)},"b":${f32Entry(4)},"\\u0061b":${f32Entry(8)}}`, 12), 'DUPLICATE_NAME', /"ab" more than once/);
    rejects(raw('{"__metadata__":{},"__metadata__":{}}'), 'DUPLICATE_NAME', /"__metadata__" more than once/);
    rejects(raw('{"w":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}}', 4), 'DUPLICATE_KEY', /repeats the key "dtype"/);
    rejects(raw('{"__metadata__":{"k":"1","k":"2"}}'), 'DUPLICATE_KEY', /repeats the key "k"/);
  });
  it('__metadata__ not an object of strings', () => {
    rejects(raw('{"__metadata__":[]}'), 'METADATA_INVALID', /__metadata__ must be an object of strings, but it is an array/);
    rejects(raw('{"__metadata__":"pt"}'), 'METADATA_INVALID', /must be an object of strings/);
    rejects(raw('{"__metadata__":{"format":1}}'), 'METADATA_INVALID', /value for "format" must be a string, but it is the number 1/);
    rejects(raw('{"__metadata__":{"format":null}}'), 'METADATA_INVALID', /"format" must be a string, but it is null/);
  });
  it('accepts header padding (trailing spaces, other JSON whitespace) and extra entry fields', () => {
    const f = parseSafetensors(raw(`{"a":${f32Entry(0)}}${' '.repeat(37)}`, new Uint8Array(new Float32Array([1.5]).buffer)));
    expect(f.tensorF32('a')).toEqual(new Float32Array([1.5]));
    expect(parseSafetensors(raw(` \n{ "a" : ${f32Entry(0)} }\t\r\n  `, 4)).names).toEqual(['a']);
    expect(parseSafetensors(raw(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":{"x":[1,2]}}}`, 4)).names).toEqual(['a']);
    // Several empty tensors at one offset, and the data section's end, are fine.
    const e = parseSafetensors(raw(`{"z":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"a":${f32Entry(0)},"y":{"dtype":"I8","shape":[3,0],"data_offsets":[4,4]},"x":{"dtype":"F64","shape":[0],"data_offsets":[4,4]}}`, 4));
    expect(e.names).toEqual(['z', 'a', 'x', 'y']);
    // Names that are Object.prototype keys are ordinary names.
    const p = parseSafetensors(raw(`{"__proto__":${f32Entry(0)},"constructor":${f32Entry(4)}}`, 8));
    expect(p.names).toEqual(['__proto__', 'constructor']);
    expect(p.has('toString')).toBe(false);
  });
  it('unknown tensor names and non-float conversion', () => {
    const f = parseSafetensors(raw(`{"a":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}`, 4));
    expect(() => f.info('b')).toThrow(expect.objectContaining({ code: 'TENSOR_NOT_FOUND', message: expect.stringMatching(/no tensor "b"/) }));
    expect(() => f.tensorF32('a')).toThrow(expect.objectContaining({ code: 'DTYPE_UNSUPPORTED', message: expect.stringMatching(/"a" is I32/) }));
  });
  it('unaligned data (a subarray at an odd offset, an odd-length header) still decodes', () => {
    const base = raw(`{"a":${f32Entry(0, 3)}}`, new Uint8Array(new Float32Array([1, -2, 3.5]).buffer));
    const shifted = new Uint8Array(base.length + 1);
    shifted.set(base, 1);
    expect(parseSafetensors(shifted.subarray(1)).tensorF32('a')).toEqual(new Float32Array([1, -2, 3.5]));
  });
});

describe('fuzz', () => {
  it('10,000+ seeded mutations of valid files: each parses or throws a SafetensorsError, quickly', () => {
    const rnd = mulberry32(20240611);
    const int = (n: number) => Math.floor(rnd() * n);
    const seeds = [
      fixture('dtypes.safetensors'),
      fixture('gpt2-tiny-bf16.safetensors'),
      serializeSafetensors([
        { name: 'a', dtype: 'F32', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
        { name: 'b', dtype: 'F16', shape: [3], data: encodeF16([1, 2, 3]) },
        { name: 'c', dtype: 'U8', shape: [0], data: new Uint8Array(0) },
      ], { format: 'pt' }),
      serializeSafetensors([]),
    ];
    const headerOf = (b: Uint8Array) => {
      const n = Number(new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(0, true));
      return { n, text: new TextDecoder().decode(b.subarray(8, 8 + n)), data: b.subarray(8 + n) };
    };
    const withHeader = (text: string, data: Uint8Array) => raw(text, data);
    const interesting = [...'{}[]":,-0123456789\\ eE.'].map((c) => c.charCodeAt(0)).concat([0x00, 0xff, 0xc3, 0x80, 0x7f]);
    const numbers = ['0', '1', '-1', '4', '8', '1e3', '0.5', '9007199254740991', '9007199254740993', '18446744073709551615', '100000000', '-0'];
    const mutate = (src: Uint8Array): Uint8Array => {
      if (src.length < 8) return src;
      const { n, text, data } = headerOf(src);
      switch (int(9)) {
        case 0: { // flip bits in the length or header
          const b = src.slice();
          for (let k = 1 + int(3); k > 0; k--) b[int(Math.min(b.length, 8 + n))] ^= 1 << int(8);
          return b;
        }
        case 1: { // set header bytes to structural characters
          const b = src.slice();
          for (let k = 1 + int(3); k > 0; k--) b[8 + int(n)] = interesting[int(interesting.length)];
          return b;
        }
        case 2: return src.slice(0, int(src.length + 1)); // truncate
        case 3: { // append bytes
          const b = new Uint8Array(src.length + 1 + int(16));
          b.set(src);
          return b;
        }
        case 4: { // rewrite the length field
          const b = src.slice();
          const dv = new DataView(b.buffer);
          const choices = [n + int(9) - 4, int(2 ** 32), 2 ** 32 + int(100), MAX_HEADER_BYTES + int(3) - 1, 0, b.length - 8, b.length - 7];
          dv.setBigUint64(0, rnd() < 0.05 ? 2n ** 64n - BigInt(1 + int(100)) : BigInt(Math.max(0, choices[int(choices.length)])), true);
          return b;
        }
        case 5: { // splice a piece of header text elsewhere (length prefix kept consistent)
          const a = int(text.length + 1), l = int(40), at = int(text.length + 1);
          const piece = text.slice(a, a + l);
          return withHeader(rnd() < 0.5 ? text.slice(0, at) + piece + text.slice(at) : text.slice(0, at) + text.slice(at + l), data);
        }
        case 6: { // replace a number
          const spots = [...text.matchAll(/\d+/g)];
          if (spots.length === 0) return src;
          const m = spots[int(spots.length)];
          return withHeader(text.slice(0, m.index) + numbers[int(numbers.length)] + text.slice(m.index! + m[0].length), data);
        }
        case 7: { // duplicate or drop a top-level entry, or swap dtypes
          const entries = [...text.matchAll(/"[^"]*":\{"dtype":"[A-Z0-9_]+","shape":\[[\d,]*\],"data_offsets":\[\d+,\d+\]\}/g)];
          if (entries.length === 0) return src;
          const m = entries[int(entries.length)];
          const r = rnd();
          if (r < 0.33) return withHeader(text.replace('{', `{${m[0]},`), data);
          if (r < 0.66) return withHeader(text.replace(m[0], '').replace(',,', ',').replace('{,', '{').replace(',}', '}'), data);
          const dts = Object.keys(DTYPE_SIZE).concat(['F4', 'X']);
          return withHeader(text.replace(m[0], m[0].replace(/"dtype":"[A-Z0-9_]+"/, `"dtype":"${dts[int(dts.length)]}"`)), data);
        }
        default: { // mutate a random valid file twice
          return mutate(mutate(src));
        }
      }
    };
    const counts = new Map<string, number>();
    let ok = 0;
    const N = 12_000;
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      const bytes = mutate(seeds[int(seeds.length)]);
      try {
        const f = parseSafetensors(bytes);
        // A success is a consistent file: ranges tile the data section and every tensor decodes.
        let total = 0;
        for (const name of f.names) {
          const t = f.info(name);
          total += t.byteLength;
          expect(t.byteOffset + t.byteLength).toBeLessThanOrEqual(bytes.length);
          if (t.dtype === 'F32' || t.dtype === 'F16' || t.dtype === 'BF16' || t.dtype === 'F64') expect(f.tensorF32(name).length).toBe(t.numel);
        }
        expect(total).toBe(bytes.length - f.dataOffset);
        describeSafetensors(f);
        ok++;
      } catch (e) {
        if (!(e instanceof SafetensorsError)) throw new Error(`mutation ${i} threw ${String(e)}`, { cause: e });
        counts.set(e.code, (counts.get(e.code) ?? 0) + 1);
      }
    }
    const ms = performance.now() - t0;
    console.log(`fuzz: ${N} mutations in ${ms.toFixed(0)} ms, ${ok} parsed, rejections by code: ${JSON.stringify(Object.fromEntries([...counts].sort()))}`);
    expect(ms).toBeLessThan(20_000);
    expect(ok).toBeGreaterThan(100);
    expect(counts.size).toBeGreaterThanOrEqual(12);
  });
});
