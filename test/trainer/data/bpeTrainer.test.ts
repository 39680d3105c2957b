import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { createRng } from '../../../src/core/random.js';
import { saveBpeTokenizer, trainByteLevelBpe } from '../../../src/trainer/data/bpeTrainer.js';
import { generateTask } from '../../../src/trainer/data/tasks.js';
import { loadTokenizer, tokenizerFromJson } from '../../../src/trainer/data/tokenizer.js';

function repeat(word: string, n: number): string[] {
  return Array.from({ length: n }, () => word);
}

/** Prompt + completion texts of the arithmetic task: the training domain of the default model. */
function arithTexts(count: number, seed: number): string[] {
  return generateTask('task:arith', { count, seed }).records.map((r) => (r.kind === 'prompt-completion' ? r.prompt + r.completion : ''));
}

/** A random string of valid code points from many scripts, whitespace and controls (no lone surrogates). */
function randomUnicode(rng: ReturnType<typeof createRng>, length: number): string {
  const ranges: Array<[number, number]> = [
    [0x00, 0x1f],
    [0x20, 0x7e],
    [0x20, 0x20],
    [0x0a, 0x0a],
    [0xa0, 0x24f],
    [0x300, 0x36f],
    [0x391, 0x3c9],
    [0x400, 0x4ff],
    [0x5d0, 0x5ea],
    [0x600, 0x6ff],
    [0x900, 0x97f],
    [0x2000, 0x206f],
    [0x3040, 0x30ff],
    [0x4e00, 0x9fff],
    [0xac00, 0xd7a3],
    [0xe000, 0xf8ff],
    [0xfe00, 0xfe0f],
    [0xfff0, 0xfffd],
    [0x1f300, 0x1faff],
    [0x10000, 0x10ffff],
  ];
  let s = '';
  for (let i = 0; i < length; i++) {
    const [lo, hi] = ranges[rng.int(ranges.length)];
    s += String.fromCodePoint(lo + rng.int(hi - lo + 1));
  }
  return s;
}

describe('trainByteLevelBpe', () => {
  test('learns the hand-computed merges of a tiny corpus, ties to the smaller ids', () => {
    // hug×10 pug×5 pun×12 bun×4 hugs×5. Counts: (u,g)=20 first; then (u,n)=16 (p-u fell to 12);
    // then (h,ug)=15; (p,un)=12; then (p,ug)=5 ties (hug,s)=5: 'p' (id 79) < 'hug' (id 258) wins.
    const corpus = [...repeat('hug', 10), ...repeat('pug', 5), ...repeat('pun', 12), ...repeat('bun', 4), ...repeat('hugs', 5)];

    const result = trainByteLevelBpe(corpus, { vocabSize: 262 });

    assert.deepEqual(result.merges, [['u', 'g'], ['u', 'n'], ['h', 'ug'], ['p', 'un'], ['p', 'ug']]);
    assert.equal(result.vocabSize, 262);
    assert.deepEqual(result.specialIds, [261]);
    const json = JSON.parse(result.tokenizerJson) as { model: { vocab: Record<string, number> } };
    // GPT-2's byte order: '!' is 0, 's' is 82, 'Ġ' (space) is 220; merges follow from 256.
    assert.equal(json.model.vocab['!'], 0);
    assert.equal(json.model.vocab.s, 82);
    assert.equal(json.model.vocab['Ġ'], 220);
    assert.equal(json.model.vocab.ug, 256);
    assert.equal(json.model.vocab.pug, 260);
    assert.equal(json.model.vocab['<|endoftext|>'], 261);
  });

  test('merges overlapping runs left to right ("aaaa" → aa·aa → aaaa)', () => {
    const result = trainByteLevelBpe(repeat('aaaa', 3), { vocabSize: 259 });

    // (a,a) occurs 3 times per word (9 in all) but merges twice per word, leaving (aa,aa) 3 times.
    assert.deepEqual(result.merges, [['a', 'a'], ['aa', 'aa']]);
  });

  test('breaks count ties by the smaller left id, then right id', () => {
    const result = trainByteLevelBpe([...repeat('cd', 2), ...repeat('ab', 2), ...repeat('ac', 2)], { vocabSize: 258 });

    assert.deepEqual(result.merges, [['a', 'b']]);
  });

  test('stops below vocabSize when no pair reaches minFrequency', () => {
    const result = trainByteLevelBpe(['xy', 'xy', 'zw'], { vocabSize: 300, minFrequency: 2 });

    assert.deepEqual(result.merges, [['x', 'y']]);
    assert.equal(result.vocabSize, 258);
  });

  test('is deterministic: two runs give identical bytes', () => {
    const texts = arithTexts(600, 1);

    const a = trainByteLevelBpe(texts, { vocabSize: 500 });
    const b = trainByteLevelBpe(texts, { vocabSize: 500 });

    assert.equal(a.tokenizerJson, b.tokenizerJson);
    assert.equal(a.tokenizerConfigJson, b.tokenizerConfigJson);
    assert.equal(a.vocabSize, 500);
  });

  test('the file loads in @huggingface/tokenizers and round-trips task text and random Unicode exactly', () => {
    // The arithmetic domain runs out of pairs seen twice before 1024: the vocabulary stops short.
    const result = trainByteLevelBpe(arithTexts(1500, 2), { vocabSize: 1024 });
    const lib = new Tokenizer(JSON.parse(result.tokenizerJson) as object, JSON.parse(result.tokenizerConfigJson) as object);
    const ours = tokenizerFromJson(JSON.parse(result.tokenizerJson), JSON.parse(result.tokenizerConfigJson));
    const heldOut = arithTexts(200, 99);
    const rng = createRng(5);
    const random = Array.from({ length: 200 }, () => randomUnicode(rng, 1 + rng.int(40)));
    const tricky = ['', ' ', '  leading and trailing  ', 'tabs\tand\nnew\r\nlines\n\n', "it's we'll I'M don't", 'a <|endoftext|> b', 'Ġ Ā ÿ', '1234567890 + -7 = ?'];

    for (const text of [...heldOut, ...random, ...tricky]) {
      const ids = ours.encode(text);
      assert.equal(ours.decode(ids), text, `round trip of ${JSON.stringify(text)}`);
      assert.deepEqual(lib.encode(text, { add_special_tokens: false }).ids, ids);
    }
    // The merges compress the training domain: far fewer tokens than bytes.
    const bytes = heldOut.reduce((s, t) => s + Buffer.byteLength(t), 0);
    const tokens = heldOut.reduce((s, t) => s + ours.encode(t).length, 0);
    assert.ok(tokens < bytes / 2.5, `${tokens} tokens for ${bytes} bytes`);
    assert.deepEqual(ours.encode('x<|endoftext|>').slice(-1), result.specialIds);
  });

  test('splitDigits keeps every digit its own token and still round-trips', () => {
    const result = trainByteLevelBpe(arithTexts(800, 3), { vocabSize: 600, splitDigits: true });
    const tok = tokenizerFromJson(JSON.parse(result.tokenizerJson), JSON.parse(result.tokenizerConfigJson));

    const multiDigit = result.merges.filter(([l, r]) => /[0-9]/.test(l + r));
    assert.deepEqual(multiDigit, []);
    const text = 'Q: What is 123 plus 45? A: 168';
    assert.equal(tok.decode(tok.encode(text)), text);
    assert.deepEqual(tok.encode(' 168').map((id) => tok.idToToken(id)), ['Ġ', '1', '6', '8']);
  });

  test('saveBpeTokenizer writes files that loadTokenizer reads with <|endoftext|> as bos/eos/pad/unk', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fedex-bpe-'));
    try {
      const result = trainByteLevelBpe(arithTexts(300, 4), { vocabSize: 400, modelMaxLength: 128 });

      await saveBpeTokenizer(dir, result);
      const tok = await loadTokenizer(dir);

      assert.equal(await readFile(join(dir, 'tokenizer.json'), 'utf8'), result.tokenizerJson);
      assert.equal(tok.vocabSize, 400);
      assert.deepEqual(tok.special, { bos: 399, eos: 399, pad: 399, unk: 399 });
      assert.equal((JSON.parse(result.tokenizerConfigJson) as { model_max_length: number }).model_max_length, 128);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('rejects a vocabulary smaller than the bytes plus specials', () => {
    assert.throws(() => trainByteLevelBpe(['abc'], { vocabSize: 256 }), /vocabSize must be an integer in \[257, /);
    assert.throws(() => trainByteLevelBpe(['abc'], { vocabSize: 300, specialTokens: [] }), /at least one special token/);
  });
});
