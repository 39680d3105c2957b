/**
 * GPT-2 byte-level pre-tokenization, reproduced exactly as `@huggingface/tokenizers` (and the Rust
 * `tokenizers` crate) apply it, so that a BPE trained here segments text the same way the loaded
 * tokenizer does: the GPT-2 byte-to-unicode map and the GPT-2 split regex.
 */

/** The GPT-2 split pattern (the one the `ByteLevel` pre-tokenizer uses when `use_regex` is true). */
const GPT2_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** The `Digits` pre-tokenizer with `individual_digits: true` (JavaScript `\d` with `u` is ASCII 0-9). */
const DIGITS_PATTERN = /[^\d]+|\d/gu;

/**
 * GPT-2's byte order: the 188 printable bytes first (`!`..`~`, `¡`..`¬`, `®`..`ÿ`), then the other 68
 * bytes. Position `i` in this list is the vocabulary id GPT-2 gives the byte (so `Ġ`, the space, is 220).
 */
export const GPT2_BYTE_ORDER: readonly number[] = (() => {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const printable = new Set(bs);
  for (let b = 0; b < 256; b++) if (!printable.has(b)) bs.push(b);
  return bs;
})();

/** byte → the printable character GPT-2 stands it for (`BYTE_TO_CHAR[32] === 'Ġ'`). */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const out = new Array<string>(256);
  let extra = 0;
  for (const b of GPT2_BYTE_ORDER) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    out[b] = String.fromCharCode(printable ? b : 256 + extra++);
  }
  return out;
})();

const encoder = new TextEncoder();

/** Maps a string's UTF-8 bytes to GPT-2's byte characters (`' hi'` → `'Ġhi'`). */
export function toByteLevel(text: string): string {
  const bytes = encoder.encode(text);
  let out = '';
  for (const b of bytes) out += BYTE_TO_CHAR[b];
  return out;
}

/** Options of the pre-tokenizer. */
export interface ByteLevelOptions {
  /** Split every ASCII digit into its own pre-token before the GPT-2 regex (Llama-style numbers). */
  readonly splitDigits: boolean;
}

/**
 * Splits one piece of text (no special tokens in it) into byte-level pre-tokens, exactly like the
 * tokenizer.json this module's trainer writes: optional `Digits(individual_digits)`, then the GPT-2
 * regex, then the byte-to-unicode map.
 */
export function preTokenize(text: string, options: ByteLevelOptions): string[] {
  const pieces = options.splitDigits ? text.match(DIGITS_PATTERN) ?? [] : [text];
  const out: string[] = [];
  for (const piece of pieces) {
    for (const match of piece.match(GPT2_PATTERN) ?? []) out.push(toByteLevel(match));
  }
  return out;
}

/** The `pre_tokenizer` entry of tokenizer.json for these options. */
export function preTokenizerConfig(options: ByteLevelOptions): Record<string, unknown> {
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  if (!options.splitDigits) return byteLevel;
  return { type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: true }, byteLevel] };
}
