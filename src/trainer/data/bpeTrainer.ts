/**
 * Byte-level BPE training (GPT-2 style) to a target vocabulary size, writing a Hugging Face
 * `tokenizer.json` that `@huggingface/tokenizers` and the Python `tokenizers` load.
 *
 * Vocabulary layout: ids 0..255 are the 256 bytes in GPT-2's order (so `Ġ`, the space, is 220 as in
 * GPT-2), then one id per learned merge in the order learned, then the special tokens
 * (`<|endoftext|>` by default, used as bos, eos, pad and unk like GPT-2).
 *
 * Training: pre-tokenize exactly as the tokenizer will (see byteLevel.ts), count distinct words,
 * then repeatedly merge the most frequent adjacent pair. Ties go to the pair with the smaller left
 * id, then the smaller right id (the Rust `tokenizers` trainer's rule), so the same corpus always
 * gives the same merges and the same file bytes. Pair counts are updated incrementally (only the
 * words that contain the merged pair are touched) with a lazily revalidated max-heap, which keeps
 * ~1 MB of text to a 2k vocabulary within a few seconds.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GPT2_BYTE_ORDER, BYTE_TO_CHAR, preTokenize, preTokenizerConfig } from './byteLevel.js';

/** The largest vocabulary the pair keys can address. */
const MAX_VOCAB = 1 << 20;

/** Options of {@link trainByteLevelBpe}. */
export interface BpeTrainOptions {
  /** Total vocabulary size, bytes and special tokens included (at least 256 + specials). */
  readonly vocabSize: number;
  /** Special tokens appended after the merges; the first is bos/eos/pad/unk. Default `['<|endoftext|>']`. */
  readonly specialTokens?: readonly string[];
  /** Pairs seen fewer times than this are never merged (training may stop below vocabSize). Default 2. */
  readonly minFrequency?: number;
  /** Split digits one by one before the GPT-2 regex (helps tiny models with arithmetic). Default false. */
  readonly splitDigits?: boolean;
  /** `model_max_length` written to tokenizer_config.json, when given. */
  readonly modelMaxLength?: number;
}

/** What {@link trainByteLevelBpe} produces. */
export interface BpeTrainResult {
  /** The `tokenizer.json` text (deterministic: same corpus and options → same bytes). */
  readonly tokenizerJson: string;
  /** The `tokenizer_config.json` text (special tokens, no clean-up of spaces on decode). */
  readonly tokenizerConfigJson: string;
  /** The learned merges, in rank order, as pairs of byte-level token strings. */
  readonly merges: ReadonlyArray<readonly [string, string]>;
  /** The final vocabulary size (smaller than asked when the corpus ran out of frequent pairs). */
  readonly vocabSize: number;
  /** The id of the first special token (`<|endoftext|>` by default). */
  readonly specialIds: readonly number[];
}

/**
 * Trains a byte-level BPE tokenizer on `texts`. Occurrences of the special tokens in the corpus are
 * treated as separators (never merged through), as the tokenizer will treat them.
 */
export function trainByteLevelBpe(texts: Iterable<string>, options: BpeTrainOptions): BpeTrainResult {
  const specials = [...(options.specialTokens ?? ['<|endoftext|>'])];
  const minFrequency = options.minFrequency ?? 2;
  const splitDigits = options.splitDigits ?? false;
  checkOptions(options.vocabSize, specials, minFrequency);

  const wordCounts = countWords(texts, specials, splitDigits);
  const tokens: string[] = GPT2_BYTE_ORDER.map((b) => BYTE_TO_CHAR[b]);
  const idOf = new Map<string, number>(tokens.map((t, i) => [t, i]));
  const merges = learnMerges(wordCounts, tokens, idOf, options.vocabSize - specials.length, minFrequency);
  const specialIds = specials.map((_, i) => tokens.length + i);
  const vocabSize = tokens.length + specials.length;
  return {
    tokenizerJson: serializeTokenizer(tokens, merges, specials, splitDigits),
    tokenizerConfigJson: serializeConfig(specials[0], options.modelMaxLength),
    merges,
    vocabSize,
    specialIds,
  };
}

function checkOptions(vocabSize: number, specials: readonly string[], minFrequency: number): void {
  const least = 256 + specials.length;
  if (!Number.isInteger(vocabSize) || vocabSize < least || vocabSize > MAX_VOCAB) {
    throw new RangeError(`trainByteLevelBpe: vocabSize must be an integer in [${least}, ${MAX_VOCAB}] (256 bytes + ${specials.length} special tokens), got ${vocabSize}`);
  }
  if (specials.length === 0) throw new RangeError('trainByteLevelBpe: at least one special token (eos) is needed');
  for (const s of specials) {
    if (s.length === 0) throw new RangeError('trainByteLevelBpe: a special token is empty');
  }
  if (new Set(specials).size !== specials.length) throw new RangeError(`trainByteLevelBpe: special tokens repeat: ${specials.join(', ')}`);
  if (!Number.isInteger(minFrequency) || minFrequency < 1) throw new RangeError(`trainByteLevelBpe: minFrequency must be a positive integer, got ${minFrequency}`);
}

/** Distinct byte-level pre-tokens and their counts, in first-seen order. */
function countWords(texts: Iterable<string>, specials: readonly string[], splitDigits: boolean): Map<string, number> {
  const counts = new Map<string, number>();
  const escaped = specials.map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  const specialSplit = new RegExp(escaped.join('|'), 'u');
  for (const text of texts) {
    for (const piece of text.split(specialSplit)) {
      if (piece.length === 0) continue;
      for (const word of preTokenize(piece, { splitDigits })) counts.set(word, (counts.get(word) ?? 0) + 1);
    }
  }
  return counts;
}

/**
 * The merge loop. Appends new tokens to `tokens`/`idOf` until the vocabulary (without specials)
 * reaches `target` or no pair is seen `minFrequency` times. Returns merges as string pairs.
 */
function learnMerges(
  wordCounts: Map<string, number>,
  tokens: string[],
  idOf: Map<string, number>,
  target: number,
  minFrequency: number,
): Array<[string, string]> {
  const words: Int32Array[] = [];
  const counts: number[] = [];
  for (const [word, count] of wordCounts) {
    const chars = Array.from(word);
    if (chars.length < 2) continue;
    words.push(Int32Array.from(chars, (c) => idOf.get(c)!));
    counts.push(count);
  }
  const pairCounts = new Map<number, number>();
  const where = new Map<number, number[]>();
  for (let w = 0; w < words.length; w++) {
    const word = words[w];
    for (let i = 0; i + 1 < word.length; i++) {
      const key = word[i] * MAX_VOCAB + word[i + 1];
      pairCounts.set(key, (pairCounts.get(key) ?? 0) + counts[w]);
      addWhere(where, key, w);
    }
  }
  const heap = new PairHeap();
  for (const [key, count] of pairCounts) heap.push(count, key);

  const merges: Array<[string, string]> = [];
  const seen = new Int32Array(words.length).fill(-1);
  while (tokens.length < target && heap.size > 0) {
    const { count, key } = heap.pop();
    const current = pairCounts.get(key) ?? 0;
    if (current !== count) {
      if (current > 0) heap.push(current, key); // stale entry: requeue with the true count
      continue;
    }
    if (count < minFrequency) break;
    const a = Math.floor(key / MAX_VOCAB);
    const b = key - a * MAX_VOCAB;
    const merged = tokens[a] + tokens[b];
    let id = idOf.get(merged);
    if (id === undefined) {
      id = tokens.length;
      tokens.push(merged);
      idOf.set(merged, id);
    }
    merges.push([tokens[a], tokens[b]]);
    pairCounts.delete(key);

    const delta = new Map<number, number>();
    for (const w of where.get(key) ?? []) {
      if (seen[w] === merges.length) continue;
      seen[w] = merges.length;
      const next = mergeWord(words[w], a, b, id);
      if (next === null) continue;
      const c = counts[w];
      applyPairs(delta, words[w], -c, key);
      applyPairs(delta, next, c, key);
      words[w] = next;
      for (let i = 0; i + 1 < next.length; i++) {
        if (next[i] === id || next[i + 1] === id) addWhere(where, next[i] * MAX_VOCAB + next[i + 1], w);
      }
    }
    where.delete(key);
    for (const [k, d] of delta) {
      if (d === 0) continue;
      const n = (pairCounts.get(k) ?? 0) + d;
      if (n > 0) pairCounts.set(k, n);
      else pairCounts.delete(k);
      if (d > 0) heap.push(n, k);
    }
  }
  return merges;
}

function addWhere(where: Map<number, number[]>, key: number, w: number): void {
  const list = where.get(key);
  if (list === undefined) where.set(key, [w]);
  else if (list[list.length - 1] !== w) list.push(w);
}

function applyPairs(delta: Map<number, number>, word: Int32Array, by: number, skip: number): void {
  for (let i = 0; i + 1 < word.length; i++) {
    const key = word[i] * MAX_VOCAB + word[i + 1];
    if (key !== skip) delta.set(key, (delta.get(key) ?? 0) + by);
  }
}

/** Replaces every non-overlapping (a, b), left to right, by `id`; null when the pair is absent. */
function mergeWord(word: Int32Array, a: number, b: number, id: number): Int32Array | null {
  const out: number[] = [];
  let changed = false;
  for (let i = 0; i < word.length; i++) {
    if (i + 1 < word.length && word[i] === a && word[i + 1] === b) {
      out.push(id);
      i++;
      changed = true;
    } else {
      out.push(word[i]);
    }
  }
  return changed ? Int32Array.from(out) : null;
}

/** A binary max-heap of (count, pair key); ties go to the smaller key (smaller left id, then right id). */
class PairHeap {
  private readonly counts: number[] = [];
  private readonly keys: number[] = [];

  get size(): number {
    return this.keys.length;
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.keys.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  pop(): { count: number; key: number } {
    const top = { count: this.counts[0], key: this.keys[0] };
    const lastCount = this.counts.pop()!;
    const lastKey = this.keys.pop()!;
    if (this.keys.length > 0) {
      this.counts[0] = lastCount;
      this.keys[0] = lastKey;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < this.keys.length && this.before(l, best)) best = l;
        if (r < this.keys.length && this.before(r, best)) best = r;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return top;
  }

  private before(i: number, j: number): boolean {
    return this.counts[i] > this.counts[j] || (this.counts[i] === this.counts[j] && this.keys[i] < this.keys[j]);
  }

  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j], this.counts[i]];
    [this.keys[i], this.keys[j]] = [this.keys[j], this.keys[i]];
  }
}

/** tokenizer.json, laid out like the Python library's pretty output, with ids in vocabulary order. */
function serializeTokenizer(tokens: readonly string[], merges: ReadonlyArray<readonly [string, string]>, specials: readonly string[], splitDigits: boolean): string {
  const q = (s: string): string => JSON.stringify(s);
  const addedTokens = specials.map((content, i) => `    ${JSON.stringify({ id: tokens.length + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })}`);
  const vocab = [...tokens, ...specials].map((t, i) => `      ${q(t)}: ${i}`);
  // Byte-level tokens never contain a space, so the classic "left right" merge format is unambiguous
  // and readable by every version of the Python library.
  const mergeLines = merges.map(([l, r]) => `      ${q(`${l} ${r}`)}`);
  const section = (value: unknown): string => JSON.stringify(value);
  return [
    '{',
    '  "version": "1.0",',
    '  "truncation": null,',
    '  "padding": null,',
    `  "added_tokens": [\n${addedTokens.join(',\n')}\n  ],`,
    '  "normalizer": null,',
    `  "pre_tokenizer": ${section(preTokenizerConfig({ splitDigits }))},`,
    `  "post_processor": ${section({ type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true })},`,
    `  "decoder": ${section({ type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true })},`,
    '  "model": {',
    '    "type": "BPE",',
    '    "dropout": null,',
    '    "unk_token": null,',
    '    "continuing_subword_prefix": "",',
    '    "end_of_word_suffix": "",',
    '    "fuse_unk": false,',
    '    "byte_fallback": false,',
    `    "vocab": {\n${vocab.join(',\n')}\n    },`,
    `    "merges": [\n${mergeLines.join(',\n')}\n    ]`,
    '  }',
    '}',
    '',
  ].join('\n');
}

function serializeConfig(special: string, modelMaxLength: number | undefined): string {
  const config: Record<string, unknown> = {
    add_bos_token: false,
    add_prefix_space: false,
    bos_token: special,
    eos_token: special,
    pad_token: special,
    unk_token: special,
    clean_up_tokenization_spaces: false,
    tokenizer_class: 'GPT2Tokenizer',
  };
  if (modelMaxLength !== undefined) config.model_max_length = modelMaxLength;
  return `${JSON.stringify(config, null, 2)}\n`;
}

/** Writes `tokenizer.json` and `tokenizer_config.json` of a trained tokenizer into `dir` (created if missing). */
export async function saveBpeTokenizer(dir: string, result: BpeTrainResult): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'tokenizer.json'), result.tokenizerJson, 'utf8');
  await writeFile(join(dir, 'tokenizer_config.json'), result.tokenizerConfigJson, 'utf8');
}
