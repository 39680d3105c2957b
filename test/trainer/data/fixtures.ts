/** Small hand-made tokenizers shared by the data tests. */
import { trainByteLevelBpe } from '../../../src/trainer/data/bpeTrainer.js';
import { tokenizerFromJson } from '../../../src/trainer/data/tokenizer.js';
import type { TextTokenizer } from '../../../src/trainer/data/tokenizer.js';

/** A BERT-style WordPiece tokenizer.json: [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3, lowercasing, [CLS] x [SEP]. */
export function bertLikeJson(): Record<string, unknown> {
  const special = (id: number, content: string): Record<string, unknown> => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return {
    version: '1.0',
    added_tokens: [special(0, '[PAD]'), special(1, '[UNK]'), special(2, '[CLS]'), special(3, '[SEP]')],
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
      pair: [],
      special_tokens: {},
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: '[UNK]',
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab: { '[PAD]': 0, '[UNK]': 1, '[CLS]': 2, '[SEP]': 3, the: 4, movie: 5, was: 6, good: 7, bad: 8, '.': 9, '##s': 10 },
    },
  };
}

/** The BERT-like tokenizer of {@link bertLikeJson}. */
export function bertLikeTokenizer(): TextTokenizer {
  return tokenizerFromJson(bertLikeJson(), {}, 'bert-like tokenizer.json');
}

let cached: TextTokenizer | null = null;

/** A small byte-level BPE (GPT-2 style, <|endoftext|> = bos/eos/pad) trained on a fixed corpus. */
export function smallBpeTokenizer(): TextTokenizer {
  if (cached === null) {
    const corpus = Array.from({ length: 40 }, (_, i) => `Q: What is ${i} plus ${i + 1}? A: ${2 * i + 1}. Tom has apples and pens.`);
    const result = trainByteLevelBpe(corpus, { vocabSize: 320 });
    cached = tokenizerFromJson(JSON.parse(result.tokenizerJson), JSON.parse(result.tokenizerConfigJson), 'small-bpe');
  }
  return cached;
}
