/**
 * Synthetic sequence-classification tasks for the BERT/RoBERTa path: templated sentiment (with
 * negation, so that a bag of words is not quite enough) and number parity.
 */
import type { Rng } from '../../core/random.js';
import type { ClassificationRecord } from './records.js';

export const SENTIMENT_LABELS = ['negative', 'positive'] as const;
export const PARITY_LABELS = ['even', 'odd'] as const;

/** Adjectives by polarity (exported so tests can recompute labels). */
export const POSITIVE_WORDS: readonly string[] = ['great', 'wonderful', 'excellent', 'lovely', 'fantastic', 'good', 'delightful', 'superb'];
export const NEGATIVE_WORDS: readonly string[] = ['awful', 'terrible', 'boring', 'bad', 'horrible', 'dull', 'disappointing', 'poor'];

const SUBJECTS = ['the movie', 'the food', 'the hotel', 'this book', 'the service', 'the game', 'the concert', 'the coffee'];

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[rng.int(items.length)];
}

/**
 * One sentiment example: a subject, an adjective, negated ("not …") 30% of the time. The label is
 * positive exactly when the adjective is positive and not negated, or negative and negated.
 */
export function makeSentimentExample(rng: Rng): ClassificationRecord {
  const positive = rng.next() < 0.5;
  const adjective = pick(rng, positive ? POSITIVE_WORDS : NEGATIVE_WORDS);
  const negated = rng.next() < 0.3;
  const subject = pick(rng, SUBJECTS);
  const phrase = `${negated ? 'not ' : ''}${adjective}`;
  const capital = subject[0].toUpperCase() + subject.slice(1);
  const text = pick(rng, [
    `${capital} was ${phrase}.`,
    `I think ${subject} is ${phrase}.`,
    `We all agreed that ${subject} was ${phrase}.`,
    `Honestly, ${subject} was ${phrase}.`,
    `My friends said ${subject} was ${phrase}.`,
  ]);
  const label = positive !== negated ? 1 : 0;
  return { kind: 'classification', text, label, group: SENTIMENT_LABELS[label] };
}

/** One parity example: a number in [0, 999] in a short sentence; label 0 = even, 1 = odd. */
export function makeParityExample(rng: Rng): ClassificationRecord {
  const n = rng.int(1000);
  const text = pick(rng, [`${n}`, `The number ${n}.`, `I counted ${n} sheep.`, `There are ${n} seats in the hall.`]);
  const label = n % 2;
  return { kind: 'classification', text, label, group: PARITY_LABELS[label] };
}
