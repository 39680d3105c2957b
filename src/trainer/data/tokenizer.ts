/**
 * Text tokenizers for the trainer: a Hugging Face `tokenizer.json` (+ optional
 * `tokenizer_config.json`) loaded through `@huggingface/tokenizers`, behind the small
 * {@link TextTokenizer} interface the data pipeline uses.
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';

/** Ids of the special tokens; null where the tokenizer has none. */
export interface SpecialTokenIds {
  readonly bos: number | null;
  readonly eos: number | null;
  readonly pad: number | null;
  readonly unk: number | null;
}

/** Options of {@link TextTokenizer.encode}. */
export interface EncodeOptions {
  /** Let the tokenizer's post-processor add its special tokens (BERT's [CLS]/[SEP], Llama's <s>). Default false. */
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
  readonly special: SpecialTokenIds;
  encode(text: string, options?: EncodeOptions): number[];
  /** Text of `ids`; the empty string for no ids. */
  decode(ids: ArrayLike<number | bigint>, options?: DecodeOptions): string;
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
}

/** Names tried, in order, for each special token when tokenizer_config.json does not name it. */
const FALLBACK_NAMES: Record<keyof SpecialTokenIds, readonly string[]> = {
  bos: ['<|endoftext|>', '<s>', '<|begin_of_text|>', '[CLS]', '<bos>'],
  eos: ['<|endoftext|>', '</s>', '<|end_of_text|>', '[SEP]', '<eos>'],
  pad: ['<pad>', '[PAD]', '<|pad|>'],
  unk: ['<unk>', '[UNK]'],
};

/**
 * Builds a tokenizer from the parsed contents of tokenizer.json and (optionally)
 * tokenizer_config.json. `source` names them in errors.
 */
export function tokenizerFromJson(json: unknown, config: unknown = {}, source = 'tokenizer.json'): TextTokenizer {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new Error(`tokenizer: ${source} is not a JSON object`);
  for (const key of ['model', 'added_tokens']) {
    if (!(key in json)) throw new Error(`tokenizer: ${source} has no "${key}" (not a Hugging Face tokenizer.json?)`);
  }
  // Absent optional components mean "none" in the Python library; this one insists on the keys.
  const tokenizerJson: Record<string, unknown> = { normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, ...json };
  const cfg: Record<string, unknown> = config !== null && typeof config === 'object' && !Array.isArray(config) ? { ...config } : {};
  let inner: Tokenizer;
  try {
    inner = new Tokenizer(tokenizerJson, cfg);
  } catch (err) {
    throw new Error(`tokenizer: @huggingface/tokenizers could not load ${source}: ${(err as Error).message}`, { cause: err });
  }
  const vocab = inner.get_vocab(true);
  let maxId = -1;
  for (const id of vocab.values()) maxId = Math.max(maxId, id);
  if (maxId < 0) throw new Error(`tokenizer: ${source} has an empty vocabulary`);

  const resolve = (key: keyof SpecialTokenIds): number | null => {
    const named = tokenName(cfg[`${key}_token`]);
    if (named !== null) {
      const id = inner.token_to_id(named);
      if (id === undefined) throw new Error(`tokenizer: ${source}: ${key}_token "${named}" of tokenizer_config.json is not in the vocabulary`);
      return id;
    }
    if (key === 'unk') {
      const modelUnk = tokenName((tokenizerJson.model as Record<string, unknown> | null)?.unk_token);
      if (modelUnk !== null) return inner.token_to_id(modelUnk) ?? null;
    }
    for (const name of FALLBACK_NAMES[key]) {
      const id = inner.token_to_id(name);
      if (id !== undefined) return id;
    }
    return null;
  };
  const special: SpecialTokenIds = { bos: resolve('bos'), eos: resolve('eos'), pad: resolve('pad'), unk: resolve('unk') };
  // The library cleans up spaces before punctuation by default, which breaks encode→decode identity;
  // we only do it when the config asks for it.
  const cleanUp = cfg.clean_up_tokenization_spaces === true;

  return {
    source,
    vocabSize: maxId + 1,
    special,
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

/**
 * Loads a tokenizer from a directory holding tokenizer.json (and optionally tokenizer_config.json),
 * or from the path of a tokenizer.json file (its sibling tokenizer_config.json is read if present).
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
  return tokenizerFromJson(json, config ?? {}, file);
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

/** A special token as tokenizer_config.json writes it: a string or `{ "content": ... }`. */
function tokenName(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (value !== null && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return null;
}

/**
 * Throws when the tokenizer can produce ids the model has no embedding for (tokenizer vocabulary
 * larger than the model's `vocab_size`). A model vocabulary larger than the tokenizer's is fine
 * (models often pad it to a multiple of 64).
 */
export function checkTokenizerMatchesModel(tokenizer: TextTokenizer, modelVocabSize: number): void {
  if (!Number.isInteger(modelVocabSize) || modelVocabSize <= 0) {
    throw new RangeError(`checkTokenizerMatchesModel: model vocab size must be a positive integer, got ${modelVocabSize}`);
  }
  if (tokenizer.vocabSize > modelVocabSize) {
    throw new Error(
      `tokenizer ${tokenizer.source} has ${tokenizer.vocabSize} tokens but the model's vocab_size is ${modelVocabSize}: ` +
        'ids past the embedding table would be produced; use the tokenizer that was trained with this model',
    );
  }
}
