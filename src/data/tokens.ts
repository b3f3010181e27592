// llm.c token files (what its dev/data scripts write and its DataLoader reads): a header of 256 int32
// little-endian values — [0] magic 20240520, [1] version, [2] token count — then the tokens, little-endian.
// Version 1 (GPT-2) stores uint16 tokens; version 2 (llm.c's LLaMA-3 files) stores uint32 tokens and is
// read here as an Int32Array. writeTokenFile writes version 1.

import type { Tokenizer } from './tokenizer.ts';

export const TOKEN_FILE_MAGIC = 20240520;
export const TOKEN_FILE_HEADER_INTS = 256;
export const TOKEN_FILE_HEADER_BYTES = TOKEN_FILE_HEADER_INTS * 4;

export type TokenFileProblem =
  | 'too-short'
  | 'bad-magic'
  | 'bad-version'
  | 'bad-count'
  | 'odd-length'
  | 'count-mismatch'
  | 'token-too-large';

/** A malformed token file, or tokens that a token file cannot hold; `problem` says which. */
export class TokenFileError extends Error {
  override name = 'TokenFileError';
  constructor(
    readonly problem: TokenFileProblem,
    message: string,
  ) {
    super(message);
  }
}

/** A token id outside the model's vocabulary. */
export class TokenRangeError extends Error {
  override name = 'TokenRangeError';
  constructor(
    message: string,
    readonly position: number,
    readonly token: number,
  ) {
    super(message);
  }
}

/** Parses an llm.c token file: Uint16Array for version 1, Int32Array for version 2. */
export function parseTokenFile(bytes: Uint8Array): Uint16Array | Int32Array {
  if (bytes.length < TOKEN_FILE_HEADER_BYTES) {
    throw new TokenFileError(
      'too-short',
      `token file is ${bytes.length} bytes, shorter than its ${TOKEN_FILE_HEADER_BYTES}-byte header (256 int32)`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getInt32(0, true);
  if (magic !== TOKEN_FILE_MAGIC) {
    throw new TokenFileError('bad-magic', `token file has magic ${magic}; expected ${TOKEN_FILE_MAGIC} (is this an llm.c token .bin file?)`);
  }
  const version = view.getInt32(4, true);
  if (version !== 1 && version !== 2) {
    throw new TokenFileError('bad-version', `token file has version ${version}; expected 1 (uint16 tokens) or 2 (uint32 tokens)`);
  }
  const count = view.getInt32(8, true);
  if (count < 0) throw new TokenFileError('bad-count', `token file header says ${count} tokens`);
  const width = version === 1 ? 2 : 4;
  const payload = bytes.length - TOKEN_FILE_HEADER_BYTES;
  if (payload % width !== 0) {
    throw new TokenFileError(
      'odd-length',
      `token file has ${payload} bytes after the header, not a whole number of ${width * 8}-bit tokens (version ${version})`,
    );
  }
  if (payload / width !== count) {
    throw new TokenFileError(
      'count-mismatch',
      `token file header says ${count} tokens but ${payload / width} follow the header (${payload} bytes)`,
    );
  }
  if (version === 1) {
    const out = new Uint16Array(count);
    for (let i = 0; i < count; i++) out[i] = view.getUint16(TOKEN_FILE_HEADER_BYTES + 2 * i, true);
    return out;
  }
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const t = view.getUint32(TOKEN_FILE_HEADER_BYTES + 4 * i, true);
    if (t > 0x7fffffff) throw new TokenFileError('token-too-large', `token ${t} at position ${i} does not fit an int32`);
    out[i] = t;
  }
  return out;
}

/** Writes tokens as an llm.c version-1 token file (uint16 tokens). */
export function writeTokenFile(tokens: ArrayLike<number>): Uint8Array {
  const n = tokens.length;
  if (n > 0x7fffffff) throw new TokenFileError('bad-count', `${n} tokens do not fit the header's int32 count`);
  const out = new Uint8Array(TOKEN_FILE_HEADER_BYTES + 2 * n);
  const view = new DataView(out.buffer);
  view.setInt32(0, TOKEN_FILE_MAGIC, true);
  view.setInt32(4, 1, true);
  view.setInt32(8, n, true);
  for (let i = 0; i < n; i++) {
    const t = tokens[i];
    if (!Number.isInteger(t) || t < 0 || t >= 65536) {
      throw new TokenFileError('token-too-large', `token ${t} at position ${i} does not fit a uint16 token file (ids must be integers in [0, 65536))`);
    }
    view.setUint16(TOKEN_FILE_HEADER_BYTES + 2 * i, t, true);
  }
  return out;
}

/** Throws a TokenRangeError naming the first id outside [0, vocabSize) and its position. */
export function checkTokens(tokens: ArrayLike<number>, vocabSize: number): void {
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (!(t >= 0 && t < vocabSize) || !Number.isInteger(t)) {
      throw new TokenRangeError(`token ${t} at position ${i} is outside the vocabulary [0, ${vocabSize})`, i, t);
    }
  }
}

/**
 * Node only: tokens from a file. A `.bin` path is read as an llm.c token file; anything else is read as
 * UTF-8 text and encoded with the tokenizer. Errors name the path.
 */
export async function readTokens(
  path: string,
  tokenizer: Pick<Tokenizer, 'encode'>,
): Promise<Uint16Array | Int32Array> {
  const { readFile } = await import('node:fs/promises');
  if (/\.bin$/i.test(path)) {
    const bytes = await readFile(path);
    try {
      return parseTokenFile(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    } catch (e) {
      if (e instanceof TokenFileError) throw new TokenFileError(e.problem, `${path}: ${e.message}`);
      throw e;
    }
  }
  return tokenizer.encode(await readFile(path, 'utf8'));
}
