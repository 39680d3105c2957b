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

  test('special tokens named by tokenizer_config.json, as strings or {content} objects, win over the fallbacks', () => {
    const tok = tokenizerFromJson(bertLikeJson(), { bos_token: { content: '[SEP]' }, eos_token: '[CLS]', pad_token: '[UNK]', unk_token: null });

    assert.deepEqual(tok.special, { bos: 3, eos: 2, pad: 1, unk: 1 });
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
  test('reads tokenizer.json and tokenizer_config.json from a folder, or the file path', async () => {
    await withDir(async (dir) => {
      await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(bertLikeJson()));
      await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify({ pad_token: '[SEP]' }));

      const fromDir = await loadTokenizer(dir);
      const fromFile = await loadTokenizer(join(dir, 'tokenizer.json'));

      assert.equal(fromDir.special.pad, 3);
      assert.equal(fromFile.special.pad, 3);
      assert.equal(fromDir.source, join(dir, 'tokenizer.json'));
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
    assert.throws(() => checkTokenizerMatchesModel(tok, 10), /has 11 tokens but the model's vocab_size is 10/);
    assert.throws(() => checkTokenizerMatchesModel(tok, 0), /positive integer/);
  });
});
