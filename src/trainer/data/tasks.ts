/**
 * Built-in synthetic tasks, named `task:NAME`: generated on the fly (no download), seeded and
 * deterministic.
 *
 * Train and eval never share a prompt: every example's text is hashed (FNV-1a) into one of 1000
 * buckets and the first `evalShare`·1000 buckets belong to eval. The split is therefore a fixed
 * partition of the example space, independent of the seed and of how many examples are asked for;
 * the seed only decides which examples are drawn from each side.
 */
import { createRng } from '../../core/random.js';
import type { Rng } from '../../core/random.js';
import { ARITH_FAMILIES, makeArithExample } from './arithmetic.js';
import type { ArithFamily } from './arithmetic.js';
import { PARITY_LABELS, SENTIMENT_LABELS, makeParityExample, makeSentimentExample } from './classification.js';
import type { ClassificationRecord, Dataset, PromptCompletionRecord } from './records.js';
import { deriveSeed, fnv1a, shuffleInPlace } from './sampling.js';

/** Options of {@link generateTask}. */
export interface TaskOptions {
  /** Default 0. */
  readonly seed?: number;
  /** Number of examples. Default 2000 for train, 200 for eval. */
  readonly count?: number;
  /** Default 'train'. */
  readonly split?: 'train' | 'eval';
  /** Share of the example space held out for eval, in (0, 1). Default 0.2. */
  readonly evalShare?: number;
}

type TaskRecord = PromptCompletionRecord | ClassificationRecord;

/** A task of the registry (docs/data.md lists them; a test checks it). */
interface TaskDef {
  readonly name: string;
  readonly kind: 'prompt-completion' | 'classification';
  readonly description: string;
  /** The i-th example (i lets a task balance its families exactly). */
  readonly make: (i: number, rng: Rng) => TaskRecord;
  readonly labelNames?: readonly string[];
}

const FAMILY_TEXT: Record<ArithFamily, string> = {
  add: 'addition of two numbers in 1..50',
  sub: 'subtraction a − b with 0 ≤ b ≤ a ≤ 50',
  mul: 'multiplication of two numbers in 2..9',
  max: 'the larger of two different numbers in 0..99',
  mod: 'remainder of a in 2..50 divided by b in 2..9',
  count: 'how many times a word occurs in a short list',
};

function arithTask(name: string, families: readonly ArithFamily[], description: string): TaskDef {
  return {
    name,
    kind: 'prompt-completion',
    description,
    make: (i, rng) => makeArithExample(families[i % families.length], rng),
  };
}

const TASKS: readonly TaskDef[] = [
  arithTask('task:arith', ARITH_FAMILIES, `arithmetic word problems, all families in equal shares (${ARITH_FAMILIES.join(', ')})`),
  ...ARITH_FAMILIES.map((f) => arithTask(`task:arith-${f}`, [f], `arithmetic word problems: ${FAMILY_TEXT[f]}`)),
  {
    name: 'task:sentiment',
    kind: 'classification',
    description: 'templated review sentences with negation; labels negative, positive',
    make: (_i, rng) => makeSentimentExample(rng),
    labelNames: SENTIMENT_LABELS,
  },
  {
    name: 'task:parity',
    kind: 'classification',
    description: 'is the number in the sentence even or odd; labels even, odd',
    make: (_i, rng) => makeParityExample(rng),
    labelNames: PARITY_LABELS,
  },
];

/** True for `task:…` dataset specs. */
export function isTaskSpec(spec: string): boolean {
  return spec.startsWith('task:');
}

/** Whether an example's text falls in the eval part of the example space. */
export function isEvalText(text: string, evalShare = 0.2): boolean {
  return fnv1a(text) % 1000 < Math.round(evalShare * 1000);
}

/**
 * Generates `count` examples of a built-in task. Same name, seed, split and count → the same
 * records in the same order. Arithmetic families come in equal shares (± 1), shuffled; class
 * labels come as drawn (about equal shares).
 */
export function generateTask(name: string, options: TaskOptions = {}): Dataset<TaskRecord> {
  const def = TASKS.find((t) => t.name === name);
  if (def === undefined) {
    throw new Error(`unknown task "${name}"; built-in tasks: ${TASKS.map((t) => t.name).join(', ')}`);
  }
  const split = options.split ?? 'train';
  const count = options.count ?? (split === 'train' ? 2000 : 200);
  const evalShare = options.evalShare ?? 0.2;
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`${name}: count must be a non-negative integer, got ${count}`);
  if (!(evalShare > 0 && evalShare < 1)) throw new RangeError(`${name}: evalShare must be in (0, 1), got ${evalShare}`);
  const rng = createRng(deriveSeed(options.seed ?? 0, name, split));
  const records: TaskRecord[] = [];
  const maxTries = 100 * count + 1000;
  for (let tries = 0; records.length < count; tries++) {
    if (tries >= maxTries) throw new Error(`${name}: could not draw ${count} ${split} examples (got ${records.length}); lower count or change evalShare`);
    const record = def.make(records.length, rng);
    const text = record.kind === 'prompt-completion' ? record.prompt : record.text;
    if (isEvalText(text, evalShare) === (split === 'eval')) records.push(record);
  }
  shuffleInPlace(records, rng);
  const dataset: Dataset<TaskRecord> = { source: name, kind: def.kind, records };
  return def.labelNames === undefined ? dataset : { ...dataset, labelNames: def.labelNames };
}
