/**
 * What `tokenizer_config.json` (and a `chat_template.jinja` beside it) says on top of
 * `tokenizer.json`, read as Hugging Face transformers reads it:
 *
 * - **Special tokens**: `bos_token`, `eos_token`, `pad_token`, `unk_token` as strings or
 *   `{"content"}`. An explicit `null` means the tokenizer has none (Qwen2.5-Instruct and Qwen3 write
 *   `"bos_token": null`); only a key that is absent falls back to well-known token names.
 * - **BOS/EOS added by encode** (`add_special_tokens=True`): the `tokenizer.json` post-processor,
 *   except for the tokenizer classes whose transformers 4.x fast class rebuilds it from the config
 *   (`LlamaTokenizer`, `CodeLlamaTokenizer`, `GemmaTokenizer`, `CohereTokenizer`: `add_bos_token`
 *   default true, `add_eos_token` default false; `GPTNeoXTokenizer`: both default false).
 *   transformers 5 ignores the two flags whenever a tokenizer.json exists; both versions agree on
 *   every config whose flags match its tokenizer.json, which is the case of the published ones.
 * - **Chat templates**: `chat_template` as a string or as a list of `{name, template}`; a
 *   `chat_template.jinja` file replaces the config's default template.
 */

/** Names of the special tokens; null where the tokenizer has none. */
export interface SpecialTokenNames {
  readonly bos: string | null;
  readonly eos: string | null;
  readonly pad: string | null;
  readonly unk: string | null;
}

/** Chat templates by name; the unnamed one is `default`. */
export type ChatTemplates = Readonly<Record<string, string>>;

type SpecialKey = keyof SpecialTokenNames;

/** Names tried, in order, for each special token when tokenizer_config.json has no key for it. */
const FALLBACK_NAMES: Record<SpecialKey, readonly string[]> = {
  bos: ['<|endoftext|>', '<s>', '<|begin_of_text|>', '[CLS]', '<bos>'],
  eos: ['<|endoftext|>', '</s>', '<|end_of_text|>', '[SEP]', '<eos>'],
  pad: ['<pad>', '[PAD]', '<|pad|>'],
  unk: ['<unk>', '[UNK]'],
};

/** transformers 4.x fast classes that rebuild the post-processor from add_bos_token/add_eos_token, with their defaults. */
const CONFIG_DRIVEN_CLASSES: ReadonlyMap<string, { readonly bos: boolean; readonly eos: boolean }> = new Map([
  ['LlamaTokenizer', { bos: true, eos: false }],
  ['CodeLlamaTokenizer', { bos: true, eos: false }],
  ['GemmaTokenizer', { bos: true, eos: false }],
  ['CohereTokenizer', { bos: true, eos: false }],
  ['GPTNeoXTokenizer', { bos: false, eos: false }],
]);

/** A special token as tokenizer_config.json writes it: a string or `{ "content": ... }`; anything else is null. */
export function tokenName(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (value !== null && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return null;
}

/**
 * The special tokens of a config: a key with a string or `{content}` names the token, a key set
 * to null (or anything not a token) means none, and an absent key tries the well-known names that
 * `inVocab` accepts (and, for unk, the model's own `unk_token`).
 */
export function specialTokenNames(config: Readonly<Record<string, unknown>>, inVocab: (token: string) => boolean, modelUnk: string | null): SpecialTokenNames {
  const resolve = (key: SpecialKey): string | null => {
    const field = `${key}_token`;
    if (field in config) return tokenName(config[field]);
    if (key === 'unk' && modelUnk !== null) return modelUnk;
    return FALLBACK_NAMES[key].find(inVocab) ?? null;
  };
  return { bos: resolve('bos'), eos: resolve('eos'), pad: resolve('pad'), unk: resolve('unk') };
}

/** A tokenizer.json `TemplateProcessing` post-processor. */
export interface TemplateProcessingConfig {
  readonly type: 'TemplateProcessing';
  readonly single: Array<{ SpecialToken: { id: string; type_id: number } } | { Sequence: { id: 'A' | 'B'; type_id: number } }>;
  readonly pair: TemplateProcessingConfig['single'];
  readonly special_tokens: Record<string, { id: string; ids: number[]; tokens: string[] }>;
}

/**
 * For a config-driven tokenizer class (see the module comment), the TemplateProcessing
 * `[bos] $A [eos]` that add_bos_token/add_eos_token ask for; null when the tokenizer.json's own
 * post-processor applies. Throws when a flag asks for a token the config does not name, as
 * transformers does.
 */
export function configPostProcessor(
  config: Readonly<Record<string, unknown>>,
  special: SpecialTokenNames,
  idOf: (token: string) => number | undefined,
  source: string,
): TemplateProcessingConfig | null {
  const tokenizerClass = typeof config.tokenizer_class === 'string' ? config.tokenizer_class.replace(/Fast$/, '') : '';
  const defaults = CONFIG_DRIVEN_CLASSES.get(tokenizerClass);
  if (defaults === undefined) return null;
  const flag = (key: string, fallback: boolean): boolean => (typeof config[key] === 'boolean' ? (config[key] as boolean) : fallback);
  const addBos = flag('add_bos_token', defaults.bos);
  const addEos = flag('add_eos_token', defaults.eos);
  const piece = (key: 'bos' | 'eos', add: boolean): { token: string; id: number } | null => {
    if (!add) return null;
    const token = special[key];
    if (token === null) throw new Error(`tokenizer: ${source}: add_${key}_token is true but tokenizer_config.json has no ${key}_token`);
    const id = idOf(token);
    if (id === undefined) throw new Error(`tokenizer: ${source}: ${key}_token "${token}" is not in the vocabulary`);
    return { token, id };
  };
  const bos = piece('bos', addBos);
  const eos = piece('eos', addEos);
  const special_tokens: TemplateProcessingConfig['special_tokens'] = {};
  for (const p of [bos, eos]) if (p !== null) special_tokens[p.token] = { id: p.token, ids: [p.id], tokens: [p.token] };
  const sequence = (id: 'A' | 'B', typeId: number): TemplateProcessingConfig['single'] => [
    ...(bos !== null ? [{ SpecialToken: { id: bos.token, type_id: typeId } }] : []),
    { Sequence: { id, type_id: typeId } },
    ...(eos !== null ? [{ SpecialToken: { id: eos.token, type_id: typeId } }] : []),
  ];
  return { type: 'TemplateProcessing', single: sequence('A', 0), pair: [...sequence('A', 0), ...sequence('B', 1)], special_tokens };
}

/**
 * The chat templates of a config (`chat_template` as a string, or a list of `{name, template}`),
 * with `jinja` (the text of a chat_template.jinja file) as the default template when given.
 * Null when there is none.
 */
export function chatTemplatesOf(config: Readonly<Record<string, unknown>>, jinja: string | null, source: string): ChatTemplates | null {
  const templates: Record<string, string> = {};
  const value = config.chat_template;
  if (typeof value === 'string') {
    templates.default = value;
  } else if (Array.isArray(value)) {
    value.forEach((entry: unknown, i) => {
      const e = entry as { name?: unknown; template?: unknown } | null;
      if (e === null || typeof e !== 'object' || typeof e.name !== 'string' || typeof e.template !== 'string') {
        throw new Error(`tokenizer: ${source}: chat_template[${i}] is not a {"name", "template"} pair`);
      }
      templates[e.name] = e.template;
    });
  } else if (value !== undefined && value !== null) {
    throw new Error(`tokenizer: ${source}: chat_template must be a string or a list of {"name", "template"}`);
  }
  if (jinja !== null) templates.default = jinja;
  return Object.keys(templates).length === 0 ? null : templates;
}

/**
 * The template transformers picks: `tool_use` for a conversation with tools when there is one,
 * else `default`, else the only one. Null when the choice is ambiguous.
 */
export function selectChatTemplate(templates: ChatTemplates, withTools: boolean): string | null {
  if (withTools && templates.tool_use !== undefined) return templates.tool_use;
  if (templates.default !== undefined) return templates.default;
  const names = Object.keys(templates);
  return names.length === 1 ? templates[names[0]] : null;
}
