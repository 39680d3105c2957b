import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDataset } from '../../../src/trainer/data/dataset.js';
import { loadJsonl, readJsonl } from '../../../src/trainer/data/jsonl.js';

let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fedex-jsonl-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes lines (objects are JSON-encoded, strings written as they are) and returns the path. */
async function file(name: string, lines: ReadonlyArray<string | object>): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n'));
  return path;
}

describe('loadJsonl: record kinds', () => {
  test('{"text"} with an optional group; blank lines skipped', async () => {
    const path = await file('text.jsonl', [{ text: 'hello' }, '', { text: 'world', group: 'g1' }]);

    const ds = await loadJsonl(path);

    assert.equal(ds.kind, 'text');
    assert.deepEqual(ds.records, [{ kind: 'text', text: 'hello' }, { kind: 'text', text: 'world', group: 'g1' }]);
  });

  test('{"prompt","completion"}', async () => {
    const path = await file('pc.jsonl', [{ prompt: 'Q: 1+1? A:', completion: ' 2' }]);

    const ds = await loadJsonl(path);

    assert.deepEqual(ds.records, [{ kind: 'prompt-completion', prompt: 'Q: 1+1? A:', completion: ' 2' }]);
  });

  test('{"text","label"}: string labels get ids in sorted order, or the ids of a given list', async () => {
    const path = await file('cls.jsonl', [{ text: 'a', label: 'pos' }, { text: 'b', label: 'neg' }, { text: 'c', label: 'pos' }]);

    const inferred = await loadJsonl(path);
    const given = await loadJsonl(path, { labelNames: ['pos', 'neg'] });

    assert.deepEqual(inferred.labelNames, ['neg', 'pos']);
    assert.deepEqual(inferred.records.map((r) => (r.kind === 'classification' ? r.label : -1)), [1, 0, 1]);
    assert.deepEqual(given.records.map((r) => (r.kind === 'classification' ? r.label : -1)), [0, 1, 0]);
  });

  test('{"text","label"} with integer labels', async () => {
    const path = await file('cls-int.jsonl', [{ text: 'a', label: 2 }, { text: 'b', label: 0 }]);

    const ds = await loadJsonl(path);

    assert.deepEqual(ds.labelNames, ['0', '1', '2']);
    assert.deepEqual(ds.records, [{ kind: 'classification', text: 'a', label: 2 }, { kind: 'classification', text: 'b', label: 0 }]);
  });

  test('{"input_ids"} with and without labels', async () => {
    const path = await file('tok.jsonl', [{ input_ids: [5, 6, 7] }, { input_ids: [1, 2], labels: [-100, 2] }]);

    const ds = await loadJsonl(path);

    assert.equal(ds.kind, 'tokenized');
    assert.deepEqual(ds.records, [{ kind: 'tokenized', inputIds: [5, 6, 7] }, { kind: 'tokenized', inputIds: [1, 2], labels: [-100, 2] }]);
  });

  test('readJsonl streams values with their line numbers', async () => {
    const path = await file('stream.jsonl', ['\uFEFF{"a":1}', '', '  ', '[2]']);

    const lines = [];
    for await (const line of readJsonl(path)) lines.push(line);

    assert.deepEqual(lines, [{ line: 1, value: { a: 1 } }, { line: 4, value: [2] }]);
  });
});

describe('loadJsonl: errors name the file and the line', () => {
  const cases: Array<{ name: string; lines: Array<string | object>; options?: { labelNames: string[] }; error: RegExp }> = [
    { name: 'bad-json', lines: [{ text: 'a' }, '', '{"text": "b",}'], error: /bad-json\.jsonl:3: invalid JSON/ },
    { name: 'missing', lines: [{ prompt: 'p', completion: 'c' }, { prompt: 'p' }], error: /missing\.jsonl:2: missing field "completion"/ },
    { name: 'missing-text', lines: [{ label: 'x' }], error: /missing-text\.jsonl:1: missing field "text"/ },
    { name: 'mixed', lines: [{ text: 'a' }, { text: 'b' }, { prompt: 'p', completion: 'c' }], error: /mixed\.jsonl:3: a prompt-completion record, but line 1 holds a text record/ },
    { name: 'label', lines: [{ text: 'a', label: 'neg' }, { text: 'b', label: 'maybe' }], options: { labelNames: ['neg', 'pos'] }, error: /label\.jsonl:2: label "maybe" is not in the label list \[neg, pos\]/ },
    { name: 'label-int', lines: [{ text: 'a', label: 2 }], options: { labelNames: ['neg', 'pos'] }, error: /label-int\.jsonl:1: label 2 is not in the label list/ },
    { name: 'label-mixed', lines: [{ text: 'a', label: 1 }, { text: 'b', label: 'x' }], error: /label-mixed\.jsonl:2: labels mix strings and integers/ },
    { name: 'wrong-type', lines: [{ text: 5 }], error: /wrong-type\.jsonl:1: "text" must be a string, got number/ },
    { name: 'ids', lines: [{ input_ids: [1, -3] }], error: /ids\.jsonl:1: "input_ids"\[1\] is -3/ },
    { name: 'ids-labels', lines: [{ input_ids: [1, 2], labels: [1] }], error: /ids-labels\.jsonl:1: "labels" has 1 entries but "input_ids" has 2/ },
    { name: 'both', lines: [{ input_ids: [1], text: 'x' }], error: /both\.jsonl:1: has both "input_ids" and "text"/ },
    { name: 'unknown', lines: [{ foo: 1 }], error: /unknown\.jsonl:1: no known field \(keys: foo\)/ },
    { name: 'not-object', lines: ['"just a string"'], error: /not-object\.jsonl:1: expected a JSON object, got string/ },
    { name: 'empty', lines: ['', ''], error: /empty\.jsonl: no records/ },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const path = await file(`${c.name}.jsonl`, c.lines);

      await assert.rejects(loadJsonl(path, c.options), c.error);
    });
  }

  test('a missing file', async () => {
    await assert.rejects(loadJsonl(join(dir, 'absent.jsonl')), /jsonl: cannot open .*absent\.jsonl/);
  });
});

describe('loadDataset', () => {
  test('task:NAME or a path; count limits a file; split is refused for a file', async () => {
    const path = await file('ds.jsonl', [{ text: 'a' }, { text: 'b' }, { text: 'c' }]);

    const task = await loadDataset('task:arith-add', { count: 5, seed: 1 });
    const limited = await loadDataset(path, { count: 2 });

    assert.equal(task.records.length, 5);
    assert.equal(task.source, 'task:arith-add');
    assert.equal(limited.records.length, 2);
    await assert.rejects(loadDataset(path, { split: 'eval' }), /split\/evalShare apply to task:… specs/);
    await assert.rejects(loadDataset('task:arith', { labelNames: ['a'] }), /has its own labels/);
  });
});
