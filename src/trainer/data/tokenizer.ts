/**
 * Text tokenizers for the trainer: a Hugging Face `tokenizer.json` (+ optional
 * `tokenizer_config.json` and `chat_template.jinja`) loaded through `@huggingface/tokenizers`,
 * behind the small {@link TextTokenizer} interface the data pipeline uses. What the config decides
 * (special tokens, BOS/EOS, chat templates) is in tokenizerConfig.ts.
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { chatTemplatesOf, configPostProcessor, specialTokenNames, tokenName } from './tokenizerConfig.js';
import type { ChatTemplates, SpecialTokenNames } from './tokenizerConfig.js';

/** Ids of the special tokens; null where the tokenizer has none. */
export interface SpecialTokenIds {
  readonly bos: number | null;
  readonly eos: number | null;
  readonly pad: number | null;
  readonly unk: number | null;
}

/** Options of {@link TextTokenizer.encode}. */
export interface EncodeOptions {
  /**
   * Add the special tokens transformers adds by default (`add_special_tokens=True`): BERT's
   * [CLS]/[SEP], Llama's `<s>`, none for GPT-2 or Qwen. Default false.
   */
  readonly addSpecialTokens?: boolean;
}

/** Options of {@link TextTokenizer.decode}. */
export interface DecodeOptions {
  /** Drop special tokens from the text. Default false. */
  readonly skipSpecialTokens?: boolean;
}

/** What the trainer needs from a tokenizer. */
export interface TextTokenizer {
  /** Where it came from (a file path or a description), for error messages. */
  readonly source: string;
  /** One more than the largest id it can produce (added tokens included). */
  readonly vocabSize: number;
  /** Ids of the added tokens tokenizer.json marks `special` (they appear only where their literal text does). */
  readonly addedSpecialIds: ReadonlySet<number>;
  readonly special: SpecialTokenIds;
  /** The same special tokens by name (what a chat template sees as `bos_token`, `eos_token`, …). */
  readonly specialTokens: SpecialTokenNames;
  /** The chat templates of tokenizer_config.json / chat_template.jinja; null when it has none. */
  readonly chatTemplates: ChatTemplates | null;
  encode(text: string, options?: EncodeOptions): number[];
  /** Text of `ids`; the empty string for no ids. */
  decode(ids: ArrayLike<number | bigint>, options?: DecodeOptions): string;
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
}

/**
 * Builds a tokenizer from the parsed contents of tokenizer.json and (optionally)
 * tokenizer_config.json (see tokenizerConfig.ts for what the config decides). `source` names them
 * in errors; `chatTemplateJinja` is the text of a chat_template.jinja file, which replaces the
 * config's default chat template.
 */
export function tokenizerFromJson(json: unknown, config: unknown = {}, source = 'tokenizer.json', chatTemplateJinja: string | null = null): TextTokenizer {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new Error(`tokenizer: ${source} is not a JSON object`);
  for (const key of ['model', 'added_tokens']) {
    if (!(key in json)) throw new Error(`tokenizer: ${source} has no "${key}" (not a Hugging Face tokenizer.json?)`);
  }
  const cfg: Record<string, unknown> = config !== null && typeof config === 'object' && !Array.isArray(config) ? { ...config } : {};
  // Absent optional components mean "none" in the Python library; this one insists on the keys.
  const tokenizerJson: Record<string, unknown> = { normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, ...json };
  const idOf = rawVocabulary(tokenizerJson);
  const names = specialTokenNames(cfg, (t) => idOf(t) !== undefined, tokenName((tokenizerJson.model as Record<string, unknown> | null)?.unk_token));
  for (const [key, name] of Object.entries(names)) {
    if (name !== null && `${key}_token` in cfg && idOf(name) === undefined) throw new Error(`tokenizer: ${source}: ${key}_token "${name}" of tokenizer_config.json is not in the vocabulary`);
  }
  const rebuilt = configPostProcessor(cfg, names, idOf, source);
  if (rebuilt !== null) tokenizerJson.post_processor = rebuilt;
  let inner: Tokenizer;
  try {
    inner = new Tokenizer(tokenizerJson, cfg);
  } catch (err) {
    throw new Error(`tokenizer: @huggingface/tokenizers could not load ${source}: ${(err as Error).message}`, { cause: err });
  }
  let maxId = -1;
  for (const id of inner.get_vocab(true).values()) maxId = Math.max(maxId, id);
  if (maxId < 0) throw new Error(`tokenizer: ${source} has an empty vocabulary`);
  const idOrNull = (name: string | null): number | null => (name === null ? null : inner.token_to_id(name) ?? null);
  const special: SpecialTokenIds = { bos: idOrNull(names.bos), eos: idOrNull(names.eos), pad: idOrNull(names.pad), unk: idOrNull(names.unk) };
  // The library cleans up spaces before punctuation by default, which breaks encode→decode identity;
  // we only do it when the config asks for it.
  const cleanUp = cfg.clean_up_tokenization_spaces === true;

  return {
    source,
    vocabSize: maxId + 1,
    addedSpecialIds: addedSpecialIds(tokenizerJson),
    special,
    specialTokens: names,
    chatTemplates: chatTemplatesOf(cfg, chatTemplateJinja, source),
    encode(text: string, options: EncodeOptions = {}): number[] {
      return inner.encode(text, { add_special_tokens: options.addSpecialTokens ?? false }).ids;
    },
    decode(ids: ArrayLike<number | bigint>, options: DecodeOptions = {}): string {
      if (ids.length === 0) return '';
      const list = Array.from(ids, (id) => Number(id));
      for (const id of list) {
        if (!Number.isInteger(id) || id < 0 || id > maxId) throw new RangeError(`tokenizer: decode got id ${id}, outside [0, ${maxId}] of ${source}`);
      }
      return inner.decode(list, { skip_special_tokens: options.skipSpecialTokens ?? false, clean_up_tokenization_spaces: cleanUp });
    },
    tokenToId: (token: string): number | undefined => inner.token_to_id(token),
    idToToken: (id: number): string | undefined => inner.id_to_token(id),
  };
}

/** The ids of tokenizer.json's `added_tokens` with `"special": true`. */
function addedSpecialIds(json: Record<string, unknown>): Set<number> {
  const ids = new Set<number>();
  if (!Array.isArray(json.added_tokens)) return ids;
  for (const t of json.added_tokens as Array<{ id?: unknown; special?: unknown }>) if (t.special === true && typeof t.id === 'number') ids.add(t.id);
  return ids;
}

/**
 * Token → id as a tokenizer.json lists them (added tokens, then the model's vocabulary), for the
 * checks made before the library builds the tokenizer.
 */
function rawVocabulary(json: Record<string, unknown>): (token: string) => number | undefined {
  const added = new Map<string, number>();
  if (Array.isArray(json.added_tokens)) {
    for (const t of json.added_tokens as Array<{ content?: unknown; id?: unknown }>) {
      if (typeof t.content === 'string' && typeof t.id === 'number') added.set(t.content, t.id);
    }
  }
  const vocab = (json.model as { vocab?: unknown } | null)?.vocab;
  let model: (token: string) => number | undefined = () => undefined;
  if (Array.isArray(vocab)) {
    // Unigram: [[piece, score], …], the id is the position.
    const ids = new Map(vocab.map((entry: unknown, i): [string, number] => [Array.isArray(entry) ? String(entry[0]) : String(entry), i]));
    model = (token) => ids.get(token);
  } else if (vocab !== null && typeof vocab === 'object') {
    const table = vocab as Record<string, unknown>;
    model = (token) => (Object.hasOwn(table, token) && typeof table[token] === 'number' ? table[token] : undefined);
  }
  return (token) => added.get(token) ?? model(token);
}

/**
 * Loads a tokenizer from a directory holding tokenizer.json (and optionally tokenizer_config.json
 * and chat_template.jinja), or from the path of a tokenizer.json file (its siblings are read if
 * present).
 */
export async function loadTokenizer(path: string): Promise<TextTokenizer> {
  let info;
  try {
    info = await stat(path);
  } catch {
    throw new Error(`tokenizer: ${path} does not exist (expected a tokenizer.json or a folder holding one)`);
  }
  const file = info.isDirectory() ? join(path, 'tokenizer.json') : path;
  const configFile = join(dirname(file), 'tokenizer_config.json');
  const json = await readJsonFile(file, `tokenizer: no tokenizer.json in ${path}`);
  const config = await readJsonFile(configFile, null);
  const jinja = await readFile(join(dirname(file), 'chat_template.jinja'), 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw new Error(`tokenizer: cannot read ${join(dirname(file), 'chat_template.jinja')}: ${err.message}`, { cause: err });
  });
  return tokenizerFromJson(json, config ?? {}, file, jinja);
}

/** Reads and parses a JSON file; a missing file gives `missing` (or throws it when it is a message). */
async function readJsonFile(file: string, missing: string | null): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      if (missing === null) return null;
      throw new Error(missing, { cause: err });
    }
    throw new Error(`tokenizer: cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new Error(`tokenizer: ${file} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Throws when the tokenizer can produce ids the model has no embedding for (tokenizer vocabulary
 * larger than the model's `vocab_size`), naming both sizes and the first such tokens. Special added
 * tokens past the table are allowed: Gemma 3's shared tokenizer ends with `<image_soft_token>`
 * (id 262144), which its text models (vocab_size 262144) never embed; it appears only where a text
 * spells it out. A model vocabulary larger than the tokenizer's is fine (models often pad it to a
 * multiple of 64).
 */
export function checkTokenizerMatchesModel(tokenizer: TextTokenizer, modelVocabSize: number): void {
  if (!Number.isInteger(modelVocabSize) || modelVocabSize <= 0) {
    throw new RangeError(`checkTokenizerMatchesModel: model vocab size must be a positive integer, got ${modelVocabSize}`);
  }
  const past: string[] = [];
  for (let id = modelVocabSize; id < tokenizer.vocabSize; id++) {
    const token = tokenizer.idToToken(id);
    if (token !== undefined && !tokenizer.addedSpecialIds.has(id)) past.push(token);
  }
  if (past.length > 0) {
    throw new Error(
      `tokenizer ${tokenizer.source} has ${tokenizer.vocabSize} tokens but the model's vocab_size is ${modelVocabSize}: ` +
        `ids past the embedding table would be produced (${past.length} token${past.length === 1 ? '' : 's'}: ${past.slice(0, 3).map((t) => JSON.stringify(t)).join(', ')}${past.length > 3 ? ', …' : ''}); ` +
        'use the tokenizer that was trained with this model',
    );
  }
}
