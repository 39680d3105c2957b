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

  test('{"messages"}: messages kept as written (extra fields too), tools and chat_template_kwargs, the line remembered', async () => {
    const messages = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Weather?' },
      { role: 'assistant', content: null, tool_calls: [{ type: 'function', function: { name: 'w', arguments: {} } }] },
      { role: 'tool', content: '21' },
      { role: 'assistant', content: 'Warm.' },
    ];
    const path = await file('chat.jsonl', ['', { messages, tools: [{ type: 'function' }], chat_template_kwargs: { enable_thinking: false }, group: 'g' }]);

    const ds = await loadJsonl(path);

    assert.equal(ds.kind, 'chat');
    assert.deepEqual(ds.records, [{ kind: 'chat', messages, line: 2, tools: [{ type: 'function' }], templateKwargs: { enable_thinking: false }, group: 'g' }]);
  });

  test('Alpaca {"instruction","input","output"}: prompt/completion records in the Alpaca prompt format', async () => {
    const path = await file('alpaca.jsonl', [{ instruction: 'Add.', input: '2 and 3', output: '5' }, { instruction: 'Greet.', input: '', output: 'Hi!', group: 'g' }, { instruction: 'Count.', output: '3' }]);

    const ds = await loadJsonl(path);

    assert.equal(ds.kind, 'prompt-completion');
    assert.deepEqual(ds.records, [
      {
        kind: 'prompt-completion',
        completion: '5',
        prompt: 'Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n'
          + '### Instruction:\nAdd.\n\n### Input:\n2 and 3\n\n### Response:\n',
      },
      { kind: 'prompt-completion', completion: 'Hi!', group: 'g', prompt: 'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nGreet.\n\n### Response:\n' },
      { kind: 'prompt-completion', completion: '3', prompt: 'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nCount.\n\n### Response:\n' },
    ]);
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
    { name: 'chat-empty', lines: [{ messages: [] }], error: /chat-empty\.jsonl:1: "messages" must be a non-empty array/ },
    { name: 'chat-role', lines: [{ messages: [{ content: 'x' }] }], error: /chat-role\.jsonl:1: "messages"\[0\]: "role" must be a non-empty string/ },
    { name: 'chat-content', lines: [{ messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 3 }] }], error: /chat-content\.jsonl:1: "messages"\[1\]: "content" must be a string \(or null with "tool_calls"\)/ },
    { name: 'chat-parts', lines: [{ messages: [{ role: 'user', content: [{ type: 'text', text: 'a' }] }] }], error: /chat-parts\.jsonl:1: "messages"\[0\]: "content" is a list of parts \(multimodal\)/ },
    { name: 'chat-no-assistant', lines: [{ messages: [{ role: 'user', content: 'a' }] }], error: /chat-no-assistant\.jsonl:1: no "assistant" message/ },
    { name: 'chat-tools', lines: [{ messages: [{ role: 'assistant', content: 'a' }], tools: {} }], error: /chat-tools\.jsonl:1: "tools" must be an array/ },
    { name: 'chat-both', lines: [{ messages: [{ role: 'assistant', content: 'a' }], prompt: 'p' }], error: /chat-both\.jsonl:1: has both "messages" and "prompt"/ },
    { name: 'alpaca-missing', lines: [{ instruction: 'a' }], error: /alpaca-missing\.jsonl:1: missing field "output"/ },
    { name: 'alpaca-mixed', lines: [{ prompt: 'p', completion: 'c' }, { instruction: 'a', output: 'b' }], error: /alpaca-mixed\.jsonl:2: an alpaca record, but line 1 holds a prompt-completion record/ },
    { name: 'chat-mixed', lines: [{ text: 'a' }, { messages: [{ role: 'assistant', content: 'a' }] }], error: /chat-mixed\.jsonl:2: a chat record, but line 1 holds a text record/ },
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
