// Tokenizers that turn text into token ids for language-model training, and back.
// - 'byte': the UTF-8 bytes of the text, vocabulary 256; no dependency, safe for any bundle.
// - 'gpt2': GPT-2's byte-level BPE (tiktoken's "gpt2" / r50k_base encoding, 50257 ids, <|endoftext|> = 50256),
//   from the gpt-tokenizer package. It is imported dynamically, so a browser bundle that only uses bytes
//   does not carry its ~1 MB merge table.
// decode() never throws on a partial or invalid UTF-8 sequence (a window of tokens cut mid-character, or
// sampled ids): such bytes become U+FFFD. It throws only for ids outside the vocabulary.

export type TokenizerName = 'byte' | 'gpt2';

export interface Tokenizer {
  name: TokenizerName;
  vocabSize: number;
  /** The end-of-text id that separates documents, where the tokenizer has one (gpt2: 50256). */
  eotToken?: number;
  encode(text: string): Int32Array;
  decode(ids: ArrayLike<number>): string;
}

export const TOKENIZER_NAMES: readonly TokenizerName[] = ['byte', 'gpt2'];

export class TokenizerError extends Error {
  override name = 'TokenizerError';
}

// ignoreBOM keeps a leading U+FEFF in the text (the default decoder would strip it); fatal: false turns
// invalid or truncated sequences into U+FFFD instead of throwing.
function utf8Decoder(): TextDecoder {
  return new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
}

function checkId(id: number, i: number, vocabSize: number, name: string): void {
  if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
    throw new TokenizerError(`token id ${id} at position ${i} is outside the ${name} vocabulary [0, ${vocabSize})`);
  }
}

/** UTF-8 bytes as tokens: vocabulary 256, no end-of-text token. */
export function byteTokenizer(): Tokenizer {
  const encoder = new TextEncoder();
  const decoder = utf8Decoder();
  return {
    name: 'byte',
    vocabSize: 256,
    encode(text: string): Int32Array {
      // Lone surrogates in `text` are encoded as U+FFFD (EF BF BD), as TextEncoder does.
      return Int32Array.from(encoder.encode(text));
    },
    decode(ids: ArrayLike<number>): string {
      const bytes = new Uint8Array(ids.length);
      for (let i = 0; i < ids.length; i++) {
        checkId(ids[i], i, 256, 'byte');
        bytes[i] = ids[i];
      }
      return decoder.decode(bytes);
    },
  };
}

const EOT_TEXT = '<|endoftext|>';

let gpt2Promise: Promise<Tokenizer> | undefined;

/**
 * GPT-2's BPE tokenizer (vocabulary 50257, <|endoftext|> = 50256). Loaded on first use and cached.
 * encode() maps the literal text "<|endoftext|>" to the end-of-text id 50256, so documents joined by it
 * keep their separators (decode gives the literal back).
 */
export function gpt2Tokenizer(): Promise<Tokenizer> {
  gpt2Promise ??= loadGpt2().catch((e: unknown) => {
    gpt2Promise = undefined;
    throw e;
  });
  return gpt2Promise;
}

async function loadGpt2(): Promise<Tokenizer> {
  // 'encoding/gpt2' and 'encoding/r50k_base' are the same merge table and special tokens in gpt-tokenizer;
  // 'gpt2' names the encoding that tiktoken.get_encoding('gpt2') gives.
  const [enc, ranks] = await Promise.all([import('gpt-tokenizer/encoding/gpt2'), import('gpt-tokenizer/bpeRanks/r50k_base')]);
  const vocabSize = 50257;
  const eotToken = 50256;
  if (enc.vocabularySize !== vocabSize) {
    throw new TokenizerError(`gpt-tokenizer's gpt2 encoding has ${enc.vocabularySize} ids; expected ${vocabSize}`);
  }
  // Our own id → bytes table: gpt-tokenizer's decode() streams through a module-wide TextDecoder, so the
  // bytes of a cut-off character would leak into the next call. Decoding the concatenated bytes ourselves
  // gives U+FFFD for them instead.
  const table = ranks.default;
  const utf8 = new TextEncoder();
  const bytesOf: Uint8Array[] = new Array(vocabSize);
  for (let id = 0; id < eotToken; id++) {
    const v = table[id];
    if (v === undefined) throw new TokenizerError(`gpt-tokenizer's gpt2 merge table has no entry for id ${id}`);
    bytesOf[id] = typeof v === 'string' ? utf8.encode(v) : Uint8Array.from(v);
  }
  bytesOf[eotToken] = utf8.encode(EOT_TEXT);
  const decoder = utf8Decoder();
  return {
    name: 'gpt2',
    vocabSize,
    eotToken,
    encode(text: string): Int32Array {
      // Split at the literal end-of-text marker ourselves and encode the pieces as ordinary text (what
      // tiktoken's encode(allowed_special='all') does): gpt-tokenizer 4.0.0's allowedSpecial: 'all' only
      // finds special tokens at the very start of the text, or right after another one.
      const out: number[] = [];
      const pieces = text.split(EOT_TEXT);
      for (let i = 0; i < pieces.length; i++) {
        if (i > 0) out.push(eotToken);
        if (pieces[i].length > 0) {
          const ids = enc.encode(pieces[i], { disallowedSpecial: new Set() });
          for (let j = 0; j < ids.length; j++) out.push(ids[j]);
        }
      }
      return Int32Array.from(out);
    },
    decode(ids: ArrayLike<number>): string {
      let total = 0;
      for (let i = 0; i < ids.length; i++) {
        checkId(ids[i], i, vocabSize, 'gpt2');
        total += bytesOf[ids[i]].length;
      }
      const out = new Uint8Array(total);
      let at = 0;
      for (let i = 0; i < ids.length; i++) {
        const b = bytesOf[ids[i]];
        out.set(b, at);
        at += b.length;
      }
      return decoder.decode(out);
    },
  };
}

/** A tokenizer by name ('byte' or 'gpt2'). */
export async function getTokenizer(name: string): Promise<Tokenizer> {
  switch (name) {
    case 'byte':
      return byteTokenizer();
    case 'gpt2':
      return gpt2Tokenizer();
    default:
      throw new TokenizerError(`unknown tokenizer ${JSON.stringify(name)}; expected one of: ${TOKENIZER_NAMES.join(', ')}`);
  }
}
