// Reader and writer of the safetensors format, in pure TypeScript over Uint8Array (browser and Node).
//
// Layout: an 8-byte little-endian u64 header length N; N bytes of UTF-8 JSON, an object mapping each
// tensor name to {dtype, shape, data_offsets: [begin, end]} (offsets relative to the data section) plus
// an optional "__metadata__": {string: string}; then the data section. As the reference implementation
// (huggingface/safetensors) requires, the tensors' byte ranges must exactly tile the data section.
//
// Every malformed input is rejected with a SafetensorsError carrying a `code`; nothing is allocated from
// sizes the file claims before they are checked against the bytes actually present, and the header is
// read by a small non-recursive JSON parser that also catches duplicate keys (JSON.parse keeps the last).

export type Dtype =
  | 'BOOL' | 'U8' | 'I8' | 'F8_E5M2' | 'F8_E4M3' | 'I16' | 'U16' | 'F16' | 'BF16'
  | 'I32' | 'U32' | 'F32' | 'F64' | 'I64' | 'U64';

/** Bytes per element of each dtype. */
export const DTYPE_SIZE: Readonly<Record<Dtype, number>> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4, F64: 8, I64: 8, U64: 8,
};

// The reference's `Dtype` enum order ("increasing alignment"); its writer sorts tensors by this rank,
// descending, then by name (bytewise), so every tensor starts aligned to its element size.
const DTYPE_RANK: Readonly<Record<Dtype, number>> = {
  BOOL: 0, U8: 1, I8: 2, F8_E5M2: 3, F8_E4M3: 4, I16: 5, U16: 6, F16: 7, BF16: 8,
  I32: 9, U32: 10, F32: 11, F64: 12, I64: 13, U64: 14,
};

/** The reference implementation's limit on the header size (100 MB). */
export const MAX_HEADER_BYTES = 100_000_000;
const MAX_JSON_DEPTH = 64;

export type SafetensorsErrorCode =
  | 'FILE_TOO_SMALL' // fewer than 8 bytes
  | 'HEADER_TOO_LARGE' // header length above MAX_HEADER_BYTES
  | 'HEADER_PAST_END' // header length runs past the end of the file
  | 'HEADER_UTF8' // header bytes are not valid UTF-8
  | 'HEADER_JSON' // header is not valid JSON
  | 'HEADER_NOT_OBJECT' // header JSON is not an object
  | 'DUPLICATE_NAME' // a tensor name (top-level key) appears twice
  | 'DUPLICATE_KEY' // a key appears twice inside an entry or __metadata__
  | 'ENTRY_INVALID' // an entry is not an object or lacks dtype/shape/data_offsets
  | 'DTYPE_UNKNOWN'
  | 'SHAPE_INVALID' // not an array of non-negative safe integers, or an element count past 2^53
  | 'OFFSETS_INVALID' // data_offsets not two ordered non-negative integers
  | 'SIZE_MISMATCH' // end - begin != dtype size × product(shape)
  | 'OFFSETS_OUT_OF_RANGE' // a range runs past the end of the data section
  | 'OVERLAP' // two tensors share bytes
  | 'HOLE' // bytes of the data section belong to no tensor
  | 'METADATA_INVALID' // __metadata__ is not an object of strings
  | 'TENSOR_NOT_FOUND'
  | 'DTYPE_UNSUPPORTED' // tensorF32 on a dtype it does not convert
  | 'INVALID_INPUT'; // the writer was given something it cannot write

export class SafetensorsError extends Error {
  override readonly name = 'SafetensorsError';
  constructor(readonly code: SafetensorsErrorCode, message: string) {
    super(message);
  }
}

export interface TensorInfo {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  /** Number of elements (product of shape; 1 for a scalar). */
  readonly numel: number;
  /** [begin, end) relative to the data section, as in the header. */
  readonly dataOffsets: readonly [number, number];
  /** Absolute byte offset of the tensor's data in the file. */
  readonly byteOffset: number;
  readonly byteLength: number;
}

export interface SafetensorsFile {
  /** The whole file. */
  readonly bytes: Uint8Array;
  /** N, the header length in bytes (padding included). */
  readonly headerLength: number;
  /** Absolute offset of the data section (8 + N). */
  readonly dataOffset: number;
  /** Tensor names in data order (by offset). */
  readonly names: readonly string[];
  /** The tensors, in data order. */
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  /** The "__metadata__" object, or null when the header has none. */
  readonly metadata: Readonly<Record<string, string>> | null;
  has(name: string): boolean;
  /** The tensor's header entry; SafetensorsError TENSOR_NOT_FOUND if absent. */
  info(name: string): TensorInfo;
  /** A view (no copy) of the tensor's raw little-endian bytes. */
  tensorBytes(name: string): Uint8Array;
  /** A new Float32Array with the tensor's values: F32 copied, F16/BF16 widened exactly, F64 rounded. */
  tensorF32(name: string): Float32Array;
}

const err = (code: SafetensorsErrorCode, message: string) => new SafetensorsError(code, message);
const fmtShape = (s: readonly unknown[]) => `[${s.map((x) => String(x)).join(', ')}]`;
const quote = (s: string) => JSON.stringify(s.length > 200 ? `${s.slice(0, 200)}…` : s);

// ---------------------------------------------------------------------------------------------------
// A strict JSON parser: iterative (no recursion, depth-limited), reports duplicate keys, and keeps the
// syntax of numbers: a non-negative integer literal within 2^53 becomes a number, anything else
// (negative, fractional, exponent, too large) becomes a JsonNumber holding its text.

class JsonNumber {
  constructor(readonly text: string) {}
  toString() {
    return this.text;
  }
}
type JsonValue = null | boolean | string | number | JsonNumber | JsonValue[] | JsonObject;
interface JsonObject {
  [key: string]: JsonValue;
}

interface Frame {
  kind: 'object' | 'array';
  value: JsonObject | JsonValue[];
  keys?: Set<string>;
  key?: string;
}

function parseHeaderJson(text: string): JsonObject {
  let i = 0;
  const n = text.length;
  const fail = (what: string): never => {
    const at = Math.min(i, n);
    const near = text.slice(Math.max(0, at - 20), at + 20).replace(/[\u0000-\u001f]/g, ' ');
    throw err('HEADER_JSON', `safetensors header is not valid JSON: ${what} at character ${at} (near ${JSON.stringify(near)})`);
  };
  const ws = () => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
  };
  const parseString = (): string => {
    // text[i] === '"'
    i++;
    let out = '';
    let start = i;
    for (;;) {
      if (i >= n) fail('unterminated string');
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        out += text.slice(start, i);
        i++;
        break;
      }
      if (c < 0x20) fail('control character in string');
      if (c !== 0x5c) {
        i++;
        continue;
      }
      out += text.slice(start, i);
      i++;
      if (i >= n) fail('unterminated escape');
      const e = text[i];
      i++;
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          const hex4 = (): number => {
            const h = text.slice(i, i + 4);
            if (!/^[0-9a-fA-F]{4}$/.test(h)) fail('bad \\u escape');
            i += 4;
            return parseInt(h, 16);
          };
          const u = hex4();
          if (u >= 0xd800 && u <= 0xdbff) {
            if (text[i] !== '\\' || text[i + 1] !== 'u') fail('lone surrogate in \\u escape');
            i += 2;
            const lo = hex4();
            if (lo < 0xdc00 || lo > 0xdfff) fail('lone surrogate in \\u escape');
            out += String.fromCharCode(u, lo);
          } else if (u >= 0xdc00 && u <= 0xdfff) {
            fail('lone surrogate in \\u escape');
          } else {
            out += String.fromCharCode(u);
          }
          break;
        }
        default:
          i--;
          fail('bad escape');
      }
      start = i;
    }
    return out;
  };
  const parseNumber = (): number | JsonNumber => {
    const m = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
    m.lastIndex = i;
    const r = m.exec(text);
    if (!r || r[0] === '-' || r[0].length === 0) fail('bad number');
    const t = r![0];
    i += t.length;
    if (/^(?:0|[1-9][0-9]*)$/.test(t) && t.length <= 16) {
      const v = Number(t);
      if (Number.isSafeInteger(v)) return v;
    }
    return new JsonNumber(t);
  };
  const literal = (word: string, v: JsonValue): JsonValue => {
    if (text.startsWith(word, i)) {
      i += word.length;
      return v;
    }
    return fail('unexpected character');
  };

  ws();
  if (text[i] !== '{') {
    if (i >= n) fail('empty header');
    // Valid JSON that is not an object is its own error.
    let valid = false;
    try {
      JSON.parse(text);
      valid = true;
    } catch {
      // not JSON at all
    }
    if (!valid) fail('unexpected character');
    throw err('HEADER_NOT_OBJECT', `safetensors header must be a JSON object, but it is ${JSON.stringify(text.slice(i, i + 20))}${text.length - i > 20 ? '…' : ''}`);
  }
  const stack: Frame[] = [];
  let root: JsonObject | undefined;
  // State machine: after opening a container we expect a key/value or a close; after a value, ',' or close.
  let value: JsonValue | undefined;
  let justOpened = false;
  const open = (kind: 'object' | 'array') => {
    if (stack.length >= MAX_JSON_DEPTH) fail(`nesting deeper than ${MAX_JSON_DEPTH}`);
    const v = kind === 'object' ? (Object.create(null) as JsonObject) : [];
    stack.push(kind === 'object' ? { kind, value: v, keys: new Set() } : { kind, value: v });
    i++;
    justOpened = true;
  };
  open('object');
  for (;;) {
    const top = stack[stack.length - 1];
    if (value === undefined) {
      ws();
      if (i >= n) fail('unexpected end of header');
      const ch = text[i];
      // Closing an empty container.
      if (justOpened && ((top.kind === 'object' && ch === '}') || (top.kind === 'array' && ch === ']'))) {
        i++;
        stack.pop();
        value = top.value;
        justOpened = false;
      } else {
        justOpened = false;
        if (top.kind === 'object') {
          if (ch !== '"') fail('expected a string key');
          const key = parseString();
          if (top.keys!.has(key)) {
            if (stack.length === 1) {
              throw err('DUPLICATE_NAME', `safetensors header lists tensor ${quote(key)} more than once`);
            }
            throw err('DUPLICATE_KEY', `safetensors header repeats the key ${quote(key)} inside one entry`);
          }
          top.keys!.add(key);
          top.key = key;
          ws();
          if (text[i] !== ':') fail("expected ':'");
          i++;
          ws();
          if (i >= n) fail('unexpected end of header');
        }
        const c = text[i];
        if (c === '{') { open('object'); continue; }
        if (c === '[') { open('array'); continue; }
        if (c === '"') value = parseString();
        else if (c === 't') value = literal('true', true);
        else if (c === 'f') value = literal('false', false);
        else if (c === 'n') value = literal('null', null);
        else if (c === '-' || (c >= '0' && c <= '9')) value = parseNumber();
        else fail('unexpected character');
      }
    }
    // We hold a complete `value`: attach it to its parent, if any.
    const parent = stack[stack.length - 1];
    if (!parent) {
      root = value as JsonObject;
      break;
    }
    if (parent.kind === 'object') {
      // Object.create(null) objects: a key like "__proto__" is an ordinary property.
      (parent.value as JsonObject)[parent.key!] = value!;
    } else {
      (parent.value as JsonValue[]).push(value!);
    }
    value = undefined;
    ws();
    const c = text[i];
    if (c === ',') {
      i++;
      continue;
    }
    if ((parent.kind === 'object' && c === '}') || (parent.kind === 'array' && c === ']')) {
      i++;
      stack.pop();
      value = parent.value;
      continue;
    }
    fail(i >= n ? 'unexpected end of header' : `expected ',' or '${parent.kind === 'object' ? '}' : ']'}'`);
  }
  ws();
  if (i < n) fail('trailing characters after the header object');
  return root!;
}

// ---------------------------------------------------------------------------------------------------
// Reader

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

function isDtype(x: unknown): x is Dtype {
  return typeof x === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_SIZE, x);
}

function isPlainObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof JsonNumber);
}

function describeJson(v: JsonValue | undefined): string {
  if (v === undefined) return 'missing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof JsonNumber) return `the number ${v.text}`;
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `the string ${quote(v)}`;
  if (typeof v === 'number') return `the number ${v}`;
  return String(v);
}

/** Parses a whole safetensors file (no copy of the data: views into `bytes`). */
export function parseSafetensors(bytes: Uint8Array): SafetensorsFile {
  if (!(bytes instanceof Uint8Array)) throw err('INVALID_INPUT', 'parseSafetensors expects a Uint8Array');
  if (bytes.length < 8) {
    throw err('FILE_TOO_SMALL', `safetensors file is ${bytes.length} bytes, shorter than the 8-byte header length`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lo = dv.getUint32(0, true);
  const hi = dv.getUint32(4, true);
  const headerLength = hi * 2 ** 32 + lo; // exact when ≤ 2^53; larger values only need to compare as large
  if (hi >= 2 ** 21 || headerLength > MAX_HEADER_BYTES) {
    throw err('HEADER_TOO_LARGE', `safetensors header length ${hi >= 2 ** 21 ? `≥ 2^53` : headerLength} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  if (8 + headerLength > bytes.length) {
    throw err('HEADER_PAST_END', `safetensors header length ${headerLength} runs past the end of the ${bytes.length}-byte file (the file is truncated or not safetensors)`);
  }
  let text: string;
  try {
    text = utf8Decoder.decode(bytes.subarray(8, 8 + headerLength));
  } catch {
    throw err('HEADER_UTF8', `safetensors header (${headerLength} bytes) is not valid UTF-8`);
  }
  const header = parseHeaderJson(text);
  const dataOffset = 8 + headerLength;
  const dataLength = bytes.length - dataOffset;

  let metadata: Record<string, string> | null = null;
  const entries: TensorInfo[] = [];
  for (const name of Object.keys(header)) {
    const entry = header[name];
    if (name === '__metadata__') {
      if (!isPlainObject(entry)) throw err('METADATA_INVALID', `safetensors __metadata__ must be an object of strings, but it is ${describeJson(entry)}`);
      metadata = Object.create(null) as Record<string, string>;
      for (const k of Object.keys(entry)) {
        const v = entry[k];
        if (typeof v !== 'string') throw err('METADATA_INVALID', `safetensors __metadata__ value for ${quote(k)} must be a string, but it is ${describeJson(v)}`);
        metadata[k] = v;
      }
      continue;
    }
    const where = `safetensors tensor ${quote(name)}`;
    if (!isPlainObject(entry)) throw err('ENTRY_INVALID', `${where}: entry must be an object with dtype, shape and data_offsets, but it is ${describeJson(entry)}`);
    for (const field of ['dtype', 'shape', 'data_offsets']) {
      if (!(field in entry)) throw err('ENTRY_INVALID', `${where}: entry lacks "${field}"`);
    }
    const dtype = entry.dtype;
    if (!isDtype(dtype)) {
      const shown = typeof dtype === 'string' ? quote(dtype) : `(${describeJson(dtype)})`;
      throw err('DTYPE_UNKNOWN', `${where}: unknown dtype ${shown} (known: ${Object.keys(DTYPE_SIZE).join(', ')})`);
    }
    const shapeV = entry.shape;
    if (!Array.isArray(shapeV)) throw err('SHAPE_INVALID', `${where}: shape must be an array of non-negative integers, but it is ${describeJson(shapeV)}`);
    let numel = 1;
    const shape: number[] = [];
    for (const d of shapeV) {
      if (typeof d !== 'number') {
        throw err('SHAPE_INVALID', `${where}: shape entries must be non-negative safe integers, but the shape holds ${describeJson(d)}`);
      }
      shape.push(d);
      numel *= d;
      if (numel > Number.MAX_SAFE_INTEGER) throw err('SHAPE_INVALID', `${where}: shape ${fmtShape(shapeV)} has more than 2^53 elements`);
    }
    const offV = entry.data_offsets;
    if (!Array.isArray(offV) || offV.length !== 2 || typeof offV[0] !== 'number' || typeof offV[1] !== 'number' || offV[0] > offV[1]) {
      const shown = Array.isArray(offV) ? fmtShape(offV.map((x) => (typeof x === 'object' && !(x instanceof JsonNumber) ? describeJson(x) : x))) : describeJson(offV);
      throw err('OFFSETS_INVALID', `${where}: data_offsets must be two ordered non-negative integers [begin, end], but they are ${shown}`);
    }
    const begin = offV[0];
    const end = offV[1];
    const need = numel * DTYPE_SIZE[dtype];
    if (end - begin !== need) {
      throw err('SIZE_MISMATCH', `${where}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes but ${dtype} × ${fmtShape(shape)} needs ${need} bytes`);
    }
    if (end > dataLength) {
      throw err('OFFSETS_OUT_OF_RANGE', `${where}: data_offsets [${begin}, ${end}] run past the end of the ${dataLength}-byte data section`);
    }
    entries.push({ name, dtype, shape, numel, dataOffsets: [begin, end], byteOffset: dataOffset + begin, byteLength: end - begin });
  }

  // The ranges must tile the data section exactly: sorted by offsets, each begins where the last ended.
  entries.sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  let cursor = 0;
  let prev: TensorInfo | undefined;
  for (const t of entries) {
    const [b, e] = t.dataOffsets;
    if (b < cursor) {
      throw err('OVERLAP', `safetensors tensors ${quote(prev!.name)} [${prev!.dataOffsets.join(', ')}] and ${quote(t.name)} [${b}, ${e}] overlap`);
    }
    if (b > cursor) {
      throw err('HOLE', `safetensors data section has a hole: bytes [${cursor}, ${b}) before tensor ${quote(t.name)} belong to no tensor`);
    }
    cursor = e;
    prev = t;
  }
  if (cursor !== dataLength) {
    throw err('HOLE', `safetensors data section has a hole: its last ${dataLength - cursor} bytes [${cursor}, ${dataLength}) belong to no tensor`);
  }

  const tensors = new Map<string, TensorInfo>(entries.map((t) => [t.name, t]));
  const info = (name: string): TensorInfo => {
    const t = tensors.get(name);
    if (!t) throw err('TENSOR_NOT_FOUND', `safetensors file has no tensor ${quote(name)}`);
    return t;
  };
  const tensorBytes = (name: string) => {
    const t = info(name);
    return bytes.subarray(t.byteOffset, t.byteOffset + t.byteLength);
  };
  return {
    bytes,
    headerLength,
    dataOffset,
    names: entries.map((t) => t.name),
    tensors,
    metadata,
    has: (name) => tensors.has(name),
    info,
    tensorBytes,
    tensorF32: (name) => {
      const t = info(name);
      return decodeToF32(t.dtype, tensorBytes(name), t.name);
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Conversions

/** Exact IEEE half → single, as raw float32 bits (NaN payloads kept). */
function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0x1f) return sign | 0x7f800000 | (mant << 13);
  if (exp !== 0) return sign | ((exp + 112) << 23) | (mant << 13);
  if (mant === 0) return sign;
  // Subnormal: normalize.
  let e = 113;
  while ((mant & 0x400) === 0) {
    mant <<= 1;
    e--;
  }
  return sign | (e << 23) | ((mant & 0x3ff) << 13);
}

function copyBytes(src: Uint8Array): ArrayBuffer {
  const out = new ArrayBuffer(src.byteLength);
  new Uint8Array(out).set(src);
  return out;
}

function decodeToF32(dtype: Dtype, raw: Uint8Array, name: string): Float32Array {
  const n = raw.byteLength / DTYPE_SIZE[dtype];
  switch (dtype) {
    case 'F32': {
      if (LITTLE_ENDIAN) return new Float32Array(copyBytes(raw));
      const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true);
      return out;
    }
    case 'F16':
    case 'BF16': {
      const out = new Float32Array(n);
      const bits = new Uint32Array(out.buffer);
      const f16 = dtype === 'F16';
      for (let i = 0; i < n; i++) {
        const h = raw[2 * i] | (raw[2 * i + 1] << 8);
        bits[i] = f16 ? f16BitsToF32Bits(h) : h << 16;
      }
      return out;
    }
    case 'F64': {
      const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(i * 8, true);
      return out;
    }
    default:
      throw err('DTYPE_UNSUPPORTED', `safetensors tensor ${quote(name)} is ${dtype}; tensorF32 converts only F32, F16, BF16 and F64`);
  }
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** Float32 values → IEEE half bits, rounding to nearest even (overflow → ±Inf, NaN stays NaN). */
export function encodeF16(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    f32Scratch[0] = values[i];
    const x = u32Scratch[0];
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    const mant = x & 0x7fffff;
    let h: number;
    if (exp === 0xff) {
      h = sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
    } else if (exp > 142) {
      h = sign | 0x7c00; // ≥ 2^16: overflow
    } else if (exp >= 113) {
      // Normal half: round the 13 dropped bits to nearest even; a carry may bump the exponent (even to Inf).
      const base = ((exp - 112) << 10) | (mant >>> 13);
      const rest = mant & 0x1fff;
      h = sign | (base + (rest > 0x1000 || (rest === 0x1000 && (base & 1)) ? 1 : 0));
    } else if (exp >= 102) {
      // Subnormal half.
      const m = mant | 0x800000;
      const shift = 126 - exp; // 14..24
      const base = m >>> shift;
      const rest = m & ((1 << shift) - 1);
      const halfway = 1 << (shift - 1);
      h = sign | (base + (rest > halfway || (rest === halfway && (base & 1)) ? 1 : 0));
    } else {
      h = sign; // underflow to ±0
    }
    out[i] = h;
  }
  return out;
}

/** Float32 values → bfloat16 bits, rounding to nearest even (NaN stays a quiet NaN). */
export function encodeBF16(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    f32Scratch[0] = values[i];
    const x = u32Scratch[0];
    if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) {
      out[i] = (x >>> 16) | 0x40;
      continue;
    }
    out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Writer

export interface TensorToWrite {
  name: string;
  dtype: Dtype;
  shape: readonly number[];
  /** The raw little-endian element bytes (e.g. a Float32Array for F32, a Uint16Array of bits for F16/BF16). */
  data: ArrayBufferView;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/**
 * Serializes tensors as the reference implementation does: tensors sorted by dtype (descending
 * alignment) then name (bytewise UTF-8), compact JSON with "__metadata__" first (its keys sorted), the
 * header padded with spaces to a multiple of 8 bytes, data packed with no gaps. Deterministic.
 */
export function serializeSafetensors(tensors: readonly TensorToWrite[], metadata?: Readonly<Record<string, string>>): Uint8Array {
  const seen = new Set<string>();
  const prepared = tensors.map((t, idx) => {
    const where = `serializeSafetensors: tensor ${typeof t?.name === 'string' ? quote(t.name) : `#${idx}`}`;
    if (typeof t?.name !== 'string') throw err('INVALID_INPUT', `${where}: name must be a string`);
    if (t.name === '__metadata__') throw err('INVALID_INPUT', `${where}: "__metadata__" is reserved`);
    if (LONE_SURROGATE.test(t.name)) throw err('INVALID_INPUT', `${where}: name is not well-formed Unicode`);
    if (seen.has(t.name)) throw err('INVALID_INPUT', `${where}: name given twice`);
    seen.add(t.name);
    if (!isDtype(t.dtype)) throw err('INVALID_INPUT', `${where}: unknown dtype ${JSON.stringify(t.dtype)}`);
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw err('INVALID_INPUT', `${where}: shape must be an array of non-negative integers`);
    }
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (!ArrayBuffer.isView(t.data)) throw err('INVALID_INPUT', `${where}: data must be a typed array or DataView`);
    const need = numel * DTYPE_SIZE[t.dtype];
    if (t.data.byteLength !== need) {
      throw err('INVALID_INPUT', `${where}: data has ${t.data.byteLength} bytes but ${t.dtype} × ${fmtShape(t.shape)} needs ${need}`);
    }
    return { t, key: utf8Encoder.encode(t.name), bytes: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) };
  });
  if (!LITTLE_ENDIAN) {
    throw err('INVALID_INPUT', 'serializeSafetensors: big-endian hosts are not supported');
  }
  prepared.sort((a, b) => DTYPE_RANK[b.t.dtype] - DTYPE_RANK[a.t.dtype] || compareBytes(a.key, b.key));

  const parts: string[] = [];
  if (metadata !== undefined) {
    if (typeof metadata !== 'object' || metadata === null) throw err('INVALID_INPUT', 'serializeSafetensors: metadata must be an object of strings');
    const keys = Object.keys(metadata).sort((a, b) => compareBytes(utf8Encoder.encode(a), utf8Encoder.encode(b)));
    const items = keys.map((k) => {
      const v = metadata[k];
      if (typeof v !== 'string') throw err('INVALID_INPUT', `serializeSafetensors: metadata value for ${quote(k)} must be a string`);
      if (LONE_SURROGATE.test(k) || LONE_SURROGATE.test(v)) throw err('INVALID_INPUT', `serializeSafetensors: metadata ${quote(k)} is not well-formed Unicode`);
      return `${JSON.stringify(k)}:${JSON.stringify(v)}`;
    });
    parts.push(`"__metadata__":{${items.join(',')}}`);
  }
  let offset = 0;
  for (const p of prepared) {
    const end = offset + p.bytes.byteLength;
    parts.push(`${JSON.stringify(p.t.name)}:{"dtype":"${p.t.dtype}","shape":[${p.t.shape.join(',')}],"data_offsets":[${offset},${end}]}`);
    offset = end;
  }
  const json = utf8Encoder.encode(`{${parts.join(',')}}`);
  const headerLength = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLength + offset);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, headerLength % 2 ** 32, true);
  dv.setUint32(4, Math.floor(headerLength / 2 ** 32), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  let pos = 8 + headerLength;
  for (const p of prepared) {
    out.set(p.bytes, pos);
    pos += p.bytes.byteLength;
  }
  return out;
}
