// llm.c token files: write/parse round trips, every malformed-file error, token range checks, readTokens.
import { describe, it, expect } from 'vitest';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  parseTokenFile,
  writeTokenFile,
  checkTokens,
  readTokens,
  TokenFileError,
  TokenRangeError,
  TOKEN_FILE_MAGIC,
  TOKEN_FILE_HEADER_BYTES,
} from '../../src/data/tokens.ts';
import { byteTokenizer } from '../../src/data/tokenizer.ts';

function header(magic: number, version: number, count: number, payloadBytes: number): Uint8Array {
  const out = new Uint8Array(TOKEN_FILE_HEADER_BYTES + payloadBytes);
  const v = new DataView(out.buffer);
  v.setInt32(0, magic, true);
  v.setInt32(4, version, true);
  v.setInt32(8, count, true);
  return out;
}

function problem(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(TokenFileError);
    return `${(e as TokenFileError).problem}: ${(e as Error).message}`;
  }
  throw new Error('expected a TokenFileError');
}

describe('writeTokenFile / parseTokenFile', () => {
  it('writes the llm.c layout: 256 int32 LE header, then uint16 LE tokens', () => {
    const bytes = writeTokenFile([1, 258, 65535]);
    expect(bytes.length).toBe(1024 + 6);
    const v = new DataView(bytes.buffer);
    expect(v.getInt32(0, true)).toBe(20240520);
    expect(v.getInt32(4, true)).toBe(1);
    expect(v.getInt32(8, true)).toBe(3);
    for (let i = 12; i < 1024; i++) expect(bytes[i]).toBe(0);
    expect(Array.from(bytes.subarray(1024))).toEqual([1, 0, 2, 1, 255, 255]);
  });

  it('round-trips tokens', () => {
    const tokens = Array.from({ length: 1000 }, (_, i) => (i * 7919) % 65536);
    const parsed = parseTokenFile(writeTokenFile(tokens));
    expect(parsed).toBeInstanceOf(Uint16Array);
    expect(Array.from(parsed)).toEqual(tokens);
    expect(Array.from(parseTokenFile(writeTokenFile(new Int32Array([0, 50256]))))).toEqual([0, 50256]);
    expect(parseTokenFile(writeTokenFile([])).length).toBe(0);
  });

  it('parses a view at an odd byte offset into a larger buffer', () => {
    const file = writeTokenFile([5, 6, 7]);
    const big = new Uint8Array(file.length + 3);
    big.set(file, 1);
    expect(Array.from(parseTokenFile(big.subarray(1, 1 + file.length)))).toEqual([5, 6, 7]);
  });

  it('reads version 2 (uint32 tokens) as an Int32Array', () => {
    const f = header(TOKEN_FILE_MAGIC, 2, 2, 8);
    const v = new DataView(f.buffer);
    v.setUint32(1024, 128000, true);
    v.setUint32(1028, 7, true);
    const parsed = parseTokenFile(f);
    expect(parsed).toBeInstanceOf(Int32Array);
    expect(Array.from(parsed)).toEqual([128000, 7]);
  });

  it('rejects a file shorter than the header', () => {
    expect(problem(() => parseTokenFile(new Uint8Array(1023)))).toMatch(/^too-short: token file is 1023 bytes, shorter than its 1024-byte header/);
    expect(problem(() => parseTokenFile(new Uint8Array(0)))).toMatch(/^too-short/);
  });

  it('rejects a bad magic number', () => {
    expect(problem(() => parseTokenFile(header(20240522, 1, 0, 0)))).toMatch(/^bad-magic: token file has magic 20240522; expected 20240520/);
  });

  it('rejects an unknown version', () => {
    expect(problem(() => parseTokenFile(header(TOKEN_FILE_MAGIC, 3, 0, 0)))).toMatch(/^bad-version: token file has version 3/);
    expect(problem(() => parseTokenFile(header(TOKEN_FILE_MAGIC, 0, 0, 0)))).toMatch(/^bad-version/);
  });

  it('rejects a negative count', () => {
    expect(problem(() => parseTokenFile(header(TOKEN_FILE_MAGIC, 1, -1, 0)))).toMatch(/^bad-count: token file header says -1 tokens/);
  });

  it('rejects an odd number of bytes after the header', () => {
    expect(problem(() => parseTokenFile(header(TOKEN_FILE_MAGIC, 1, 2, 5)))).toMatch(/^odd-length: token file has 5 bytes after the header, not a whole number of 16-bit tokens/);
    expect(problem(() => parseTokenFile(header(TOKEN_FILE_MAGIC, 2, 1, 6)))).toMatch(/^odd-length: .*32-bit tokens \(version 2\)/);
  });

  it('rejects a count that does not match the bytes that follow', () => {
    expect(problem(() => parseTokenFile(header(TOKEN_FILE_MAGIC, 1, 3, 4)))).toMatch(/^count-mismatch: token file header says 3 tokens but 2 follow the header \(4 bytes\)/);
    const truncated = writeTokenFile([1, 2, 3]).subarray(0, 1024 + 4);
    expect(problem(() => parseTokenFile(truncated))).toMatch(/^count-mismatch/);
  });

  it('rejects version-2 tokens that do not fit an int32', () => {
    const f = header(TOKEN_FILE_MAGIC, 2, 1, 4);
    new DataView(f.buffer).setUint32(1024, 0x80000000, true);
    expect(problem(() => parseTokenFile(f))).toMatch(/^token-too-large: token 2147483648 at position 0/);
  });

  it('refuses to write tokens that do not fit uint16, naming the first', () => {
    expect(problem(() => writeTokenFile([1, 65535, 65536, 70000]))).toMatch(/^token-too-large: token 65536 at position 2 does not fit a uint16/);
    expect(problem(() => writeTokenFile([-1]))).toMatch(/token -1 at position 0/);
    expect(problem(() => writeTokenFile([0.5]))).toMatch(/token 0\.5 at position 0/);
  });
});

describe('checkTokens', () => {
  it('passes ids inside the vocabulary', () => {
    expect(() => checkTokens(new Uint16Array([0, 255]), 256)).not.toThrow();
    expect(() => checkTokens([], 1)).not.toThrow();
  });
  it('names the first id outside the vocabulary and its position', () => {
    let err: unknown;
    try {
      checkTokens(new Int32Array([3, 50256, 50257, 60000]), 50257);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TokenRangeError);
    expect((err as TokenRangeError).message).toBe('token 50257 at position 2 is outside the vocabulary [0, 50257)');
    expect((err as TokenRangeError).position).toBe(2);
    expect((err as TokenRangeError).token).toBe(50257);
    expect(() => checkTokens([1, -1], 10)).toThrow(/token -1 at position 1/);
  });
});

describe('readTokens', () => {
  it('reads .bin token files and tokenizes anything else as UTF-8 text', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wgsl-train-tokens-'));
    try {
      const bin = join(dir, 'train.bin');
      await writeFile(bin, writeTokenFile([10, 20, 30]));
      expect(Array.from(await readTokens(bin, byteTokenizer()))).toEqual([10, 20, 30]);

      const txt = join(dir, 'input.txt');
      await writeFile(txt, 'hé!', 'utf8');
      expect(Array.from(await readTokens(txt, byteTokenizer()))).toEqual([104, 0xc3, 0xa9, 33]);

      const bad = join(dir, 'bad.bin');
      await writeFile(bad, new Uint8Array(10));
      await expect(readTokens(bad, byteTokenizer())).rejects.toThrow(TokenFileError);
      await expect(readTokens(bad, byteTokenizer())).rejects.toThrow(/bad\.bin: token file is 10 bytes/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
