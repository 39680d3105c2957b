/**
 * Synthetic arithmetic word problems: small numbers, several phrasings per operation family, each a
 * `{prompt, completion}` pair such as `"Q: Tom has 12 apples and buys 7 more. How many apples does
 * Tom have now? A:"` → `" 19"`. The operands are the only digits in a prompt and appear in the
 * order the operation takes them (so a test can recompute every answer from the prompt alone).
 */
import type { Rng } from '../../core/random.js';
import type { PromptCompletionRecord } from './records.js';

/** The operation families, also the records' `group`. */
export const ARITH_FAMILIES = ['add', 'sub', 'mul', 'max', 'mod', 'count'] as const;
export type ArithFamily = (typeof ARITH_FAMILIES)[number];

const NAMES = ['Tom', 'Ann', 'Mia', 'Leo', 'Sam', 'Zoe', 'Ben', 'Eva', 'Noah', 'Lily'];
const OBJECTS = ['apples', 'pens', 'books', 'coins', 'cards', 'eggs', 'stamps', 'shells', 'marbles', 'stickers'];
const COUNT_WORDS = ['cat', 'dog', 'bird', 'fish', 'frog', 'duck'];

/** Uniform integer in [lo, hi]. */
function between(rng: Rng, lo: number, hi: number): number {
  return lo + rng.int(hi - lo + 1);
}

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[rng.int(items.length)];
}

/** Two different names. */
function twoNames(rng: Rng): [string, string] {
  const n = pick(rng, NAMES);
  let m = pick(rng, NAMES);
  while (m === n) m = pick(rng, NAMES);
  return [n, m];
}

type Problem = { body: string; answer: number };

function addProblem(rng: Rng): Problem {
  const a = between(rng, 1, 50);
  const b = between(rng, 1, 50);
  const [n, m] = twoNames(rng);
  const o = pick(rng, OBJECTS);
  const bodies = [
    `${n} has ${a} ${o} and buys ${b} more. How many ${o} does ${n} have now?`,
    `${n} had ${a} ${o}. ${m} gave ${n} ${b} more ${o}. How many ${o} does ${n} have?`,
    `What is ${a} plus ${b}?`,
    `A box holds ${a} ${o}. ${n} puts ${b} more ${o} in it. How many ${o} are in the box?`,
    `${a} + ${b} = ?`,
  ];
  return { body: pick(rng, bodies), answer: a + b };
}

function subProblem(rng: Rng): Problem {
  const a = between(rng, 1, 50);
  const b = between(rng, 0, a);
  const [n, m] = twoNames(rng);
  const o = pick(rng, OBJECTS);
  const bodies = [
    `${n} has ${a} ${o} and gives ${b} to ${m}. How many ${o} does ${n} have left?`,
    `There were ${a} ${o} on the table. ${n} took ${b}. How many ${o} are left?`,
    `What is ${a} minus ${b}?`,
    `${n} had ${a} ${o} and lost ${b} of them. How many ${o} remain?`,
    `${a} - ${b} = ?`,
  ];
  return { body: pick(rng, bodies), answer: a - b };
}

function mulProblem(rng: Rng): Problem {
  const a = between(rng, 2, 9);
  const b = between(rng, 2, 9);
  const [n] = twoNames(rng);
  const o = pick(rng, OBJECTS);
  const bodies = [
    `${n} has ${a} bags with ${b} ${o} in each bag. How many ${o} does ${n} have?`,
    `What is ${a} times ${b}?`,
    `There are ${a} rows of ${b} ${o}. How many ${o} are there in total?`,
    `${a} * ${b} = ?`,
  ];
  return { body: pick(rng, bodies), answer: a * b };
}

function maxProblem(rng: Rng): Problem {
  const a = between(rng, 0, 99);
  let b = between(rng, 0, 99);
  while (b === a) b = between(rng, 0, 99);
  const [n, m] = twoNames(rng);
  const o = pick(rng, OBJECTS);
  const bodies = [
    `${n} has ${a} ${o} and ${m} has ${b} ${o}. How many ${o} does the one with more have?`,
    `Which is larger, ${a} or ${b}?`,
    `What is the maximum of ${a} and ${b}?`,
    `${n} scored ${a} points and ${m} scored ${b} points. What was the higher score?`,
  ];
  return { body: pick(rng, bodies), answer: Math.max(a, b) };
}

function modProblem(rng: Rng): Problem {
  const a = between(rng, 2, 50);
  const b = between(rng, 2, 9);
  const o = pick(rng, OBJECTS);
  const bodies = [
    `What is the remainder when ${a} is divided by ${b}?`,
    `${a} ${o} are shared equally among ${b} kids. How many ${o} are left over?`,
    `${a} mod ${b} = ?`,
  ];
  return { body: pick(rng, bodies), answer: a % b };
}

function countProblem(rng: Rng): Problem {
  const kinds = 2 + rng.int(2);
  const pool: string[] = [];
  while (pool.length < kinds) {
    const w = pick(rng, COUNT_WORDS);
    if (!pool.includes(w)) pool.push(w);
  }
  const list = Array.from({ length: between(rng, 3, 8) }, () => pick(rng, pool));
  const target = pick(rng, list);
  const [n] = twoNames(rng);
  const bodies = [
    `Count the word "${target}" in: ${list.join(' ')}.`,
    `In the list ${list.join(', ')}, how many times does "${target}" appear?`,
    `${n} saw: ${list.join(' ')}. How many times did ${n} see "${target}"?`,
  ];
  return { body: pick(rng, bodies), answer: list.filter((w) => w === target).length };
}

const MAKERS: Record<ArithFamily, (rng: Rng) => Problem> = {
  add: addProblem,
  sub: subProblem,
  mul: mulProblem,
  max: maxProblem,
  mod: modProblem,
  count: countProblem,
};

/** One random problem of `family`, as a prompt/completion record grouped by family. */
export function makeArithExample(family: ArithFamily, rng: Rng): PromptCompletionRecord {
  const { body, answer } = MAKERS[family](rng);
  return { kind: 'prompt-completion', prompt: `Q: ${body} A:`, completion: ` ${answer}`, group: family };
}
