// Tokenizers: byte (UTF-8) and GPT-2 BPE round trips, known GPT-2 ids, safe decoding of cut-off or
// invalid UTF-8, vocabulary sizes and errors.
import { describe, it, expect } from 'vitest';
import { byteTokenizer, gpt2Tokenizer, getTokenizer, TokenizerError } from '../../src/data/tokenizer.ts';

const texts = [
  '',
  'Hello world',
  'héllo wörld — ça va? 你好，世界 Привет мир',
  'emoji 😀👍🏽 family 👨‍👩‍👧‍👦 flags 🇯🇵',
  '  leading and\ttrailing  whitespace \n\n\r\n',
  'numbers 1234567890 3.14159 and symbols <>{}[]|\\~`',
  "It's they're we've I'm you'll he'd",
  '\uFEFFstarts with a byte-order mark',
];

describe('byte tokenizer', () => {
  const tok = byteTokenizer();

  it('has vocabulary 256, no end-of-text token', () => {
    expect(tok.name).toBe('byte');
    expect(tok.vocabSize).toBe(256);
    expect(tok.eotToken).toBeUndefined();
  });

  it('encodes the UTF-8 bytes', () => {
    expect(Array.from(tok.encode('Hi'))).toEqual([72, 105]);
    expect(Array.from(tok.encode('€'))).toEqual([0xe2, 0x82, 0xac]);
    expect(Array.from(tok.encode('😀'))).toEqual([0xf0, 0x9f, 0x98, 0x80]);
    expect(tok.encode('x')).toBeInstanceOf(Int32Array);
  });

  it('round-trips ASCII, multibyte and emoji text (and a leading BOM)', () => {
    for (const t of texts) {
      const ids = tok.encode(t);
      expect(ids.length).toBe(new TextEncoder().encode(t).length);
      expect(tok.decode(ids)).toBe(t);
    }
  });

  it('decodes partial and invalid sequences to U+FFFD without throwing', () => {
    const smile = Array.from(tok.encode('😀'));
    expect(tok.decode(smile.slice(0, 2))).toBe('\uFFFD'); // truncated 4-byte sequence
    expect(tok.decode(smile.slice(2))).toBe('\uFFFD\uFFFD'); // two stray continuation bytes
    expect(tok.decode([0x61, ...smile.slice(0, 3), 0x62])).toBe('a\uFFFDb');
    expect(tok.decode([0xff])).toBe('\uFFFD');
    expect(tok.decode([0xc0, 0x80])).toBe('\uFFFD\uFFFD'); // overlong
    expect(tok.decode([0xed, 0xa0, 0x80])).toBe('\uFFFD\uFFFD\uFFFD'); // encoded surrogate
    // no state leaks from a cut-off call into the next
    expect(tok.decode(smile.slice(0, 3))).toBe('\uFFFD');
    expect(tok.decode([0x41])).toBe('A');
  });

  it('encodes lone surrogates as U+FFFD', () => {
    expect(Array.from(tok.encode('a\uD800b'))).toEqual([0x61, 0xef, 0xbf, 0xbd, 0x62]);
  });

  it('rejects ids outside [0, 256), naming the id and position', () => {
    expect(() => tok.decode([65, 256])).toThrow(TokenizerError);
    expect(() => tok.decode([65, 256])).toThrow(/token id 256 at position 1 .*\[0, 256\)/);
    expect(() => tok.decode([-1])).toThrow(/token id -1 at position 0/);
    expect(() => tok.decode([1.5])).toThrow(/token id 1\.5/);
  });
});

describe('gpt2 tokenizer', async () => {
  const tok = await gpt2Tokenizer();
  const lib = await import('gpt-tokenizer/encoding/gpt2');

  it('has vocabulary 50257 and <|endoftext|> = 50256', () => {
    expect(tok.name).toBe('gpt2');
    expect(tok.vocabSize).toBe(50257);
    expect(tok.eotToken).toBe(50256);
  });

  it('gives GPT-2 (tiktoken "gpt2") ids for known strings', () => {
    const ids = (s: string) => Array.from(tok.encode(s));
    expect(ids('Hello world')).toEqual([15496, 995]);
    expect(ids('hello world')).toEqual([31373, 995]);
    expect(ids(' ')).toEqual([220]);
    expect(ids('\n')).toEqual([198]);
    expect(ids('!')).toEqual([0]);
    expect(ids('<|endoftext|>')).toEqual([50256]);
    expect(ids('hello <|endoftext|>')).toEqual([31373, 220, 50256]);
    expect(ids('a<|endoftext|><|endoftext|>b')).toEqual([64, 50256, 50256, 65]);
    // other special-looking text is ordinary text in GPT-2
    expect(ids('<|fim_prefix|>')).toEqual(Array.from(lib.encode('<|fim_prefix|>', { disallowedSpecial: new Set() })));
    expect(tok.encode('x')).toBeInstanceOf(Int32Array);
  });

  it('round-trips text, including emoji split across byte-level tokens', () => {
    for (const t of [...texts, 'doc one<|endoftext|>doc two']) {
      const ids = tok.encode(t);
      for (const id of ids) expect(id >= 0 && id < 50257).toBe(true);
      expect(tok.decode(ids)).toBe(t);
      expect(tok.decode(ids)).toBe(lib.decode(ids)); // our byte table agrees with the package's decoder
    }
  });

  it('decodes a cut-off character to U+FFFD and leaks nothing into the next call', () => {
    const ids = Array.from(tok.encode(' 😀'));
    expect(ids.length).toBeGreaterThan(1); // GPT-2 splits this emoji's bytes over tokens
    expect(tok.decode(ids.slice(0, 1))).toContain('\uFFFD');
    expect(tok.decode(tok.encode(' world'))).toBe(' world');
  });

  it('rejects ids outside the vocabulary', () => {
    expect(() => tok.decode([15496, 50257])).toThrow(/token id 50257 at position 1 .*\[0, 50257\)/);
  });

  it('is cached: loading twice gives the same tokenizer', async () => {
    expect(await gpt2Tokenizer()).toBe(tok);
  });
});

describe('getTokenizer', () => {
  it('returns tokenizers by name', async () => {
    expect((await getTokenizer('byte')).vocabSize).toBe(256);
    expect((await getTokenizer('gpt2')).vocabSize).toBe(50257);
  });
  it('names the choices for an unknown name', async () => {
    await expect(getTokenizer('gpt4')).rejects.toThrow(TokenizerError);
    await expect(getTokenizer('gpt4')).rejects.toThrow(/unknown tokenizer "gpt4"; expected one of: byte, gpt2/);
  });
});
