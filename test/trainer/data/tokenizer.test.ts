import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkTokenizerMatchesModel, loadTokenizer, tokenizerFromJson } from '../../../src/trainer/data/tokenizer.js';
import { bertLikeJson, bertLikeTokenizer, smallBpeTokenizer } from './fixtures.js';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'fedex-tok-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('tokenizerFromJson', () => {
  test('a WordPiece tokenizer: encode with and without special tokens, vocab size, special ids by name', () => {
    const tok = bertLikeTokenizer();

    assert.deepEqual(tok.encode('The movie was good.'), [4, 5, 6, 7, 9]);
    assert.deepEqual(tok.encode('The movies was bad.', { addSpecialTokens: true }), [2, 4, 5, 10, 6, 8, 9, 3]);
    assert.equal(tok.vocabSize, 11);
    assert.deepEqual(tok.special, { bos: 2, eos: 3, pad: 0, unk: 1 });
    assert.equal(tok.decode([2, 4, 5, 3], { skipSpecialTokens: true }), 'the movie');
  });

  test('special tokens named by tokenizer_config.json, as strings or {content} objects, win over the fallbacks; null means none', () => {
    const named = tokenizerFromJson(bertLikeJson(), { bos_token: { content: '[SEP]' }, eos_token: '[CLS]', pad_token: '[UNK]' });
    const none = tokenizerFromJson(bertLikeJson(), { bos_token: null, unk_token: null });

    assert.deepEqual(named.special, { bos: 3, eos: 2, pad: 1, unk: 1 });
    assert.deepEqual(none.special, { bos: null, eos: 3, pad: 0, unk: null });
    assert.deepEqual(none.specialTokens, { bos: null, eos: '[SEP]', pad: '[PAD]', unk: null });
  });

  test("a Llama-class config rebuilds the post-processor from add_bos_token/add_eos_token; other classes keep tokenizer.json's", () => {
    const llama = tokenizerFromJson(bertLikeJson(), { tokenizer_class: 'LlamaTokenizerFast', bos_token: '[CLS]', eos_token: '[SEP]', add_eos_token: true });
    const noBos = tokenizerFromJson(bertLikeJson(), { tokenizer_class: 'LlamaTokenizer', bos_token: '[CLS]', add_bos_token: false });
    const bert = tokenizerFromJson(bertLikeJson(), { tokenizer_class: 'BertTokenizer', add_bos_token: false, add_eos_token: false });

    assert.deepEqual(llama.encode('the movie', { addSpecialTokens: true }), [2, 4, 5, 3]);
    assert.deepEqual(noBos.encode('the movie', { addSpecialTokens: true }), [4, 5]);
    assert.deepEqual(bert.encode('the movie', { addSpecialTokens: true }), [2, 4, 5, 3]);
    assert.throws(() => tokenizerFromJson(bertLikeJson(), { tokenizer_class: 'GemmaTokenizer', bos_token: null }, 'g.json'), /g\.json: add_bos_token is true but tokenizer_config\.json has no bos_token/);
  });

  test("chat templates: a string, named templates, or chat_template.jinja over the config's", () => {
    const plain = tokenizerFromJson(bertLikeJson(), { chat_template: '{{ messages[0].content }}' });
    const named = tokenizerFromJson(bertLikeJson(), { chat_template: [{ name: 'default', template: 'a' }, { name: 'tool_use', template: 'b' }] });
    const jinja = tokenizerFromJson(bertLikeJson(), { chat_template: 'a' }, 'x', 'from file');

    assert.deepEqual(plain.chatTemplates, { default: '{{ messages[0].content }}' });
    assert.deepEqual(named.chatTemplates, { default: 'a', tool_use: 'b' });
    assert.deepEqual(jinja.chatTemplates, { default: 'from file' });
    assert.equal(bertLikeTokenizer().chatTemplates, null);
    assert.throws(() => tokenizerFromJson(bertLikeJson(), { chat_template: [{ name: 1 }] }, 'c.json'), /c\.json: chat_template\[0\] is not a \{"name", "template"\} pair/);
  });

  test('a config naming a token that is not in the vocabulary is an error naming it', () => {
    assert.throws(() => tokenizerFromJson(bertLikeJson(), { eos_token: '</s>' }, 'x/tokenizer.json'), /x\/tokenizer\.json: eos_token "<\/s>" .* not in the vocabulary/);
  });

  test('decode: empty ids give the empty string; ids past the vocabulary are named; no clean-up of spaces by default', () => {
    const tok = smallBpeTokenizer();

    assert.equal(tok.decode([]), '');
    assert.throws(() => tok.decode([tok.vocabSize]), new RegExp(`id ${tok.vocabSize}, outside \\[0, ${tok.vocabSize - 1}\\]`));
    const text = "Tom , has apples ? yes . it 's";
    assert.equal(tok.decode(tok.encode(text)), text);
    assert.equal(tok.decode(new BigInt64Array(tok.encode('Tom has').map(BigInt))), 'Tom has');
  });

  test('rejects JSON that is not a tokenizer, and what the library refuses, naming the source', () => {
    assert.throws(() => tokenizerFromJson([1, 2], {}, 'a.json'), /a\.json is not a JSON object/);
    assert.throws(() => tokenizerFromJson({ added_tokens: [] }, {}, 'b.json'), /b\.json has no "model"/);
    assert.throws(() => tokenizerFromJson({ added_tokens: [], model: { type: 'Nope' } }, {}, 'c.json'), /@huggingface\/tokenizers could not load c\.json: .*Nope/);
  });
});

describe('loadTokenizer', () => {
  test('reads tokenizer.json, tokenizer_config.json and chat_template.jinja from a folder, or the file path', async () => {
    await withDir(async (dir) => {
      await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(bertLikeJson()));
      await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify({ pad_token: '[SEP]', chat_template: 'config' }));
      await writeFile(join(dir, 'chat_template.jinja'), '{{ messages[0].content }}');

      const fromDir = await loadTokenizer(dir);
      const fromFile = await loadTokenizer(join(dir, 'tokenizer.json'));

      assert.equal(fromDir.special.pad, 3);
      assert.equal(fromFile.special.pad, 3);
      assert.equal(fromDir.source, join(dir, 'tokenizer.json'));
      assert.deepEqual(fromDir.chatTemplates, { default: '{{ messages[0].content }}' });
    });
  });

  test('errors: missing path, folder without tokenizer.json, invalid JSON', async () => {
    await withDir(async (dir) => {
      await mkdir(join(dir, 'empty'));
      await writeFile(join(dir, 'bad.json'), '{"model": ');

      await assert.rejects(loadTokenizer(join(dir, 'nope')), /nope does not exist/);
      await assert.rejects(loadTokenizer(join(dir, 'empty')), /no tokenizer\.json in .*empty/);
      await assert.rejects(loadTokenizer(join(dir, 'bad.json')), /bad\.json is not valid JSON/);
    });
  });
});

describe('checkTokenizerMatchesModel', () => {
  test('accepts a model vocabulary at least as large, names both sizes otherwise', () => {
    const tok = bertLikeTokenizer();

    assert.doesNotThrow(() => checkTokenizerMatchesModel(tok, 11));
    assert.doesNotThrow(() => checkTokenizerMatchesModel(tok, 64));
    assert.throws(() => checkTokenizerMatchesModel(tok, 10), /has 11 tokens but the model's vocab_size is 10: .*\(1 token: "##s"\)/);
    assert.throws(() => checkTokenizerMatchesModel(tok, 0), /positive integer/);
  });

  test("special added tokens past the table are allowed (Gemma 3's <image_soft_token> beyond its text models' vocab_size), others are not", () => {
    const json = bertLikeJson();
    const image = { id: 11, content: '<image_soft_token>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
    const plain = { ...image, id: 12, content: '<unused0>', special: false };
    const withImage = tokenizerFromJson({ ...json, added_tokens: [...(json.added_tokens as unknown[]), image] });
    const withBoth = tokenizerFromJson({ ...json, added_tokens: [...(json.added_tokens as unknown[]), image, plain] });

    assert.deepEqual([withImage.vocabSize, [...withImage.addedSpecialIds]], [12, [0, 1, 2, 3, 11]]);
    assert.doesNotThrow(() => checkTokenizerMatchesModel(withImage, 11));
    assert.throws(() => checkTokenizerMatchesModel(withBoth, 11), /has 13 tokens but the model's vocab_size is 11: .*\(1 token: "<unused0>"\)/);
  });
});
