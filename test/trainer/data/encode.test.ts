import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { padBatch } from '../../../src/trainer/data/batching.js';
import { encodeDataset } from '../../../src/trainer/data/encode.js';
import type { Dataset } from '../../../src/trainer/data/records.js';
import { bertLikeTokenizer, smallBpeTokenizer } from './fixtures.js';

const tok = smallBpeTokenizer();
const EOS = tok.special.eos!;

describe('encodeDataset', () => {
  test('text: every token is a label, eos appended, no bos when bos = eos (GPT-2)', () => {
    const ds: Dataset = { source: 't', kind: 'text', records: [{ kind: 'text', text: 'Tom has apples.' }] };

    const { examples } = encodeDataset(ds, tok, { seqLen: 64 });

    const ids = [...tok.encode('Tom has apples.'), EOS];
    assert.deepEqual([...examples[0].inputIds], ids);
    assert.deepEqual([...examples[0].labels], ids);
    assert.equal(examples[0].classLabel, -1);
  });

  test('prompt/completion: encoded together; labels are -100 exactly on the prompt tokens and on padding', () => {
    const records = [
      { kind: 'prompt-completion' as const, prompt: 'Q: What is 3 plus 4? A:', completion: ' 7' },
      { kind: 'prompt-completion' as const, prompt: 'Q: Tom has 12 apples. A:', completion: ' 12 apples' },
    ];
    const ds: Dataset = { source: 'pc', kind: 'prompt-completion', records };

    const { examples } = encodeDataset(ds, tok, { seqLen: 32 });
    const batch = padBatch(examples, { seqLen: 32, padId: EOS });

    let expectedLoss = 0;
    records.forEach((r, b) => {
      const ids = [...tok.encode(r.prompt + r.completion), EOS];
      const p = tok.encode(r.prompt).length;
      const row = Array.from(batch.labels.subarray(b * 32, (b + 1) * 32), Number);
      const mask = Array.from(batch.attentionMask.subarray(b * 32, (b + 1) * 32));
      assert.deepEqual([...examples[b].inputIds], ids);
      assert.deepEqual(row, [...ids.map((id, t) => (t < p ? -100 : id)), ...new Array<number>(32 - ids.length).fill(-100)]);
      assert.deepEqual(mask, [...new Array<number>(ids.length).fill(1), ...new Array<number>(32 - ids.length).fill(0)]);
      assert.equal(tok.decode(ids.slice(p)), r.completion + tok.idToToken(EOS));
      expectedLoss += ids.length - p;
    });
    assert.equal(batch.lossTokens, expectedLoss);
  });

  test('prompt/completion: a token merging the end of the prompt with the completion is scored', () => {
    const ds: Dataset = { source: 'pc', kind: 'prompt-completion', records: [{ kind: 'prompt-completion', prompt: 'Tom has ', completion: 'apples' }] };

    const { inputIds, labels } = encodeDataset(ds, tok, { seqLen: 32 }).examples[0];

    const scored = [...inputIds].filter((_, t) => labels[t] !== -100);
    assert.equal(tok.decode(scored), ' apples' + tok.idToToken(EOS));
    assert.notEqual(tok.encode('Tom has ').at(-1), inputIds[tok.encode('Tom has ').length - 1]);
  });

  test("chat: rendered with the tokenizer's template, encoded without added special tokens, loss on the assistant turns", () => {
    const template = "{%- for m in messages %}{{ m.role + ': ' + m.content + '<|endoftext|>' }}{%- endfor %}{%- if add_generation_prompt %}{{ 'assistant: ' }}{%- endif %}";
    const chatTok = { ...tok, chatTemplates: { default: template } };
    const ds: Dataset = {
      source: 'c.jsonl',
      kind: 'chat',
      records: [{ kind: 'chat', messages: [{ role: 'user', content: 'Tom has apples?' }, { role: 'assistant', content: 'Tom has 2 apples.' }] }],
    };

    const { inputIds, labels } = encodeDataset(ds, chatTok, { seqLen: 64 }).examples[0];

    assert.deepEqual([...inputIds], tok.encode('user: Tom has apples?<|endoftext|>assistant: Tom has 2 apples.<|endoftext|>'));
    // "assistant: " + "Tom" encodes as "assistant", ":", " Tom": the token holding the turn's first character is scored.
    assert.equal(tok.decode([...inputIds].filter((_, t) => labels[t] !== -100)), ' Tom has 2 apples.<|endoftext|>');
  });

  test('truncation on the right, counted in records and tokens; an example whose completion is cut away is dropped; truncate: false keeps them whole', () => {
    const ds: Dataset = {
      source: 'pc',
      kind: 'prompt-completion',
      records: [
        { kind: 'prompt-completion', prompt: 'Q: a long prompt that goes on and on. A:', completion: ' 7' },
        { kind: 'prompt-completion', prompt: 'Q: 1 A:', completion: ' 2 apples and pens and more pens' },
      ],
    };

    const lengths = ds.records.map((r) => (r.kind === 'prompt-completion' ? tok.encode(r.prompt + r.completion).length + 1 : 0));

    const out = encodeDataset(ds, tok, { seqLen: 8 });
    const whole = encodeDataset(ds, tok, { seqLen: 8, truncate: false });

    assert.equal(out.truncated, 2);
    assert.equal(out.dropped, 1);
    assert.equal(out.examples.length, 1);
    assert.equal(out.examples[0].inputIds.length, 8);
    assert.equal(out.records, 2);
    assert.equal(out.tokens, lengths[0] + lengths[1]);
    assert.equal(out.truncatedTokens, lengths[0] - 8 + lengths[1] - 8);
    assert.deepEqual(whole.examples.map((e) => e.inputIds.length), lengths);
    assert.equal(whole.truncated + whole.truncatedTokens, 0);
  });

  test('classification: the post-processor adds [CLS]/[SEP]; one class label', () => {
    const bert = bertLikeTokenizer();
    const ds: Dataset = { source: 'c', kind: 'classification', records: [{ kind: 'classification', text: 'The movie was bad.', label: 0 }], labelNames: ['neg', 'pos'] };

    const out = encodeDataset(ds, bert, { seqLen: 16 });

    assert.deepEqual([...out.examples[0].inputIds], [2, 4, 5, 6, 8, 9, 3]);
    assert.equal(out.examples[0].classLabel, 0);
    assert.deepEqual(out.labelNames, ['neg', 'pos']);
  });

  test('pre-tokenized ids pass through; ids past the vocabulary are named; no tokenizer for text is an error', () => {
    const ds: Dataset = { source: 'k', kind: 'tokenized', records: [{ kind: 'tokenized', inputIds: [1, 2, 3], labels: [-100, 2, 3] }] };
    const bad: Dataset = { source: 'k', kind: 'tokenized', records: [{ kind: 'tokenized', inputIds: [1, tok.vocabSize] }] };
    const text: Dataset = { source: 'x', kind: 'text', records: [{ kind: 'text', text: 'a' }] };

    const out = encodeDataset(ds, null, { seqLen: 8 });

    assert.deepEqual([...out.examples[0].labels], [-100, 2, 3]);
    assert.throws(() => encodeDataset(bad, tok, { seqLen: 8 }), new RegExp(`k record 0: input_ids\\[1\\] = ${tok.vocabSize} is outside the vocabulary`));
    assert.throws(() => encodeDataset(text, null, { seqLen: 8 }), /x record 0: a text record needs a tokenizer/);
  });
});
