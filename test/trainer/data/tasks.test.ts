import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ARITH_FAMILIES } from '../../../src/trainer/data/arithmetic.js';
import { NEGATIVE_WORDS, POSITIVE_WORDS } from '../../../src/trainer/data/classification.js';
import type { ClassificationRecord, PromptCompletionRecord } from '../../../src/trainer/data/records.js';
import { generateTask } from '../../../src/trainer/data/tasks.js';

/** Recomputes an answer from the prompt text alone (independently of the generator). */
function recompute(family: string, prompt: string): number {
  const numbers = (prompt.match(/\d+/g) ?? []).map(Number);
  const [a, b] = numbers;
  switch (family) {
    case 'add':
      return a + b;
    case 'sub':
      assert.ok(a >= b, `sub: ${prompt}`);
      return a - b;
    case 'mul':
      return a * b;
    case 'max':
      assert.notEqual(a, b);
      return a > b ? a : b;
    case 'mod':
      return a - b * Math.floor(a / b);
    case 'count': {
      assert.equal(numbers.length, 0, `count prompts hold no digits: ${prompt}`);
      const target = /"([a-z]+)"/.exec(prompt)![1];
      // Every occurrence of the word, minus its quoted mention in the question.
      return (prompt.match(new RegExp(`\\b${target}\\b`, 'g')) ?? []).length - 1;
    }
    default:
      throw new Error(`unknown family ${family}`);
  }
}

function arith(name: string, count: number, seed = 0, split: 'train' | 'eval' = 'train'): PromptCompletionRecord[] {
  return generateTask(name, { count, seed, split }).records as PromptCompletionRecord[];
}

describe('arithmetic tasks', () => {
  for (const family of ARITH_FAMILIES) {
    test(`task:arith-${family}: every answer equals the arithmetic recomputed from the prompt`, () => {
      const records = arith(`task:arith-${family}`, 300, 11);

      assert.equal(records.length, 300);
      for (const r of records) {
        assert.match(r.prompt, /^Q: .+ A:$/);
        assert.match(r.completion, /^ \d+$/);
        assert.equal(r.group, family);
        assert.equal(Number(r.completion.trim()), recompute(family, r.prompt), r.prompt);
      }
      const operandCount = family === 'count' ? 0 : 2;
      assert.ok(records.every((r) => (r.prompt.match(/\d+/g) ?? []).length === operandCount));
    });
  }

  test('task:arith mixes all families in equal shares, with varied phrasing', () => {
    const records = arith('task:arith', 600, 3);

    const perFamily = new Map<string, number>();
    for (const r of records) perFamily.set(r.group!, (perFamily.get(r.group!) ?? 0) + 1);
    assert.deepEqual([...perFamily.keys()].sort(), [...ARITH_FAMILIES].sort());
    for (const n of perFamily.values()) assert.equal(n, 100);
    // Phrasings: strip numbers and names, count distinct templates.
    const shapes = new Set(records.map((r) => r.prompt.replace(/\d+/g, 'N').replace(/\b[A-Z][a-z]+\b/g, 'X').replace(/\b(apples|pens|books|coins|cards|eggs|stamps|shells|marbles|stickers)\b/g, 'O')));
    assert.ok(shapes.size >= 20, `only ${shapes.size} prompt shapes`);
  });

  test('same seed → same records; another seed → others', () => {
    assert.deepEqual(arith('task:arith', 50, 7), arith('task:arith', 50, 7));
    assert.notDeepEqual(arith('task:arith', 50, 7), arith('task:arith', 50, 8));
  });

  test('train and eval share no prompt', () => {
    const train = new Set(arith('task:arith', 3000, 1).map((r) => r.prompt));
    const evalRecords = arith('task:arith', 400, 1, 'eval');

    assert.equal(evalRecords.length, 400);
    assert.ok(evalRecords.every((r) => !train.has(r.prompt)));
  });
});

describe('classification tasks', () => {
  test('task:sentiment: label = adjective polarity, flipped by "not"', () => {
    const ds = generateTask('task:sentiment', { count: 300, seed: 2 });

    assert.deepEqual(ds.labelNames, ['negative', 'positive']);
    assert.equal(ds.kind, 'classification');
    const labels = new Set<number>();
    for (const r of ds.records as ClassificationRecord[]) {
      const adjective = /(\w+)\.$/.exec(r.text)![1];
      const positive = POSITIVE_WORDS.includes(adjective);
      assert.ok(positive || NEGATIVE_WORDS.includes(adjective), r.text);
      const negated = /\bnot\b/.test(r.text);
      assert.equal(r.label, positive !== negated ? 1 : 0, r.text);
      labels.add(r.label);
    }
    assert.equal(labels.size, 2);
  });

  test('task:parity: label = the number mod 2', () => {
    const ds = generateTask('task:parity', { count: 200, seed: 4 });

    assert.deepEqual(ds.labelNames, ['even', 'odd']);
    for (const r of ds.records as ClassificationRecord[]) assert.equal(r.label, Number(/\d+/.exec(r.text)![0]) % 2, r.text);
  });
});

describe('task registry', () => {
  test("every task of docs/data.md's table generates records of its kind; an unknown one is refused, naming them all", () => {
    const doc = readFileSync(new URL('../../../docs/data.md', import.meta.url), 'utf8');
    const section = doc.slice(doc.indexOf('## Built-in tasks'), doc.indexOf('\n## ', doc.indexOf('## Built-in tasks') + 1));
    const rows = [...section.matchAll(/^\| `(task:[a-z-]+)` \| ([a-z-]+) \|/gm)].map(([, name, kind]) => ({ name, kind }));

    assert.deepEqual(rows.map((r) => r.name), ['task:arith', ...ARITH_FAMILIES.map((f) => `task:arith-${f}`), 'task:sentiment', 'task:parity']);
    for (const { name, kind } of rows) assert.equal(generateTask(name, { count: 4 }).kind, kind, name);
    assert.throws(() => generateTask('task:nope'), (e: unknown) => e instanceof Error && e.message === `unknown task "task:nope"; built-in tasks: ${rows.map((r) => r.name).join(', ')}`);
    assert.throws(() => generateTask('task:arith', { count: -1 }), /count must be a non-negative integer/);
  });
});
