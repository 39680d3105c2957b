import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepareData } from '../../../src/trainer/data/pipeline.js';
import { smallBpeTokenizer } from './fixtures.js';

const tok = smallBpeTokenizer();
let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fedex-pipeline-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function jsonl(name: string, records: readonly object[]): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, records.map((r) => JSON.stringify(r)).join('\n'));
  return path;
}

/** 20 text records, every other one longer than 16 tokens. */
const TEXTS = Array.from({ length: 20 }, (_, i) => ({ text: i % 2 === 0 ? 'Tom has apples and pens. '.repeat(4) : `Tom has ${i} pens.` }));

describe('prepareData: truncation report and packing', () => {
  test('the report counts the records cut and the tokens they lost, for train and eval', async () => {
    const data = await jsonl('text.jsonl', TEXTS);

    const prepared = await prepareData({ data, seqLen: 16, seed: 0 }, tok);

    const all = [...prepared.train.examples, ...prepared.eval.examples];
    const long = [...TEXTS].filter((r) => tok.encode(r.text).length + 1 > 16);
    const { train, eval: evalCounts } = prepared.report;
    assert.equal(train.records + evalCounts.records, 20);
    assert.equal(train.truncated + evalCounts.truncated, long.length);
    assert.equal(train.truncatedTokens + evalCounts.truncatedTokens, long.reduce((s, r) => s + tok.encode(r.text).length + 1 - 16, 0));
    assert.ok(all.every((e) => e.inputIds.length <= 16));
    assert.equal(prepared.report.packed, false);
  });

  test('packing keeps training examples whole (the packed stream is cut into rows) and still cuts eval examples', async () => {
    const data = await jsonl('text-pack.jsonl', TEXTS);

    const prepared = await prepareData({ data, seqLen: 16, seed: 0, packing: true }, tok);

    assert.equal(prepared.report.packed, true);
    assert.equal(prepared.report.train.truncated, 0);
    assert.ok(prepared.train.examples.some((e) => e.inputIds.length > 16));
    assert.ok(prepared.eval.examples.every((e) => e.inputIds.length <= 16));
  });

  test('packing is refused for classification data', async () => {
    const data = await jsonl('cls.jsonl', Array.from({ length: 10 }, (_, i) => ({ text: `Tom has ${i} pens.`, label: i % 2 })));

    await assert.rejects(prepareData({ data, seqLen: 16, seed: 0, packing: true }, tok), /cls\.jsonl holds classification records, which are padded one per row; packing applies to language-modelling data/);
  });
});
