/**
 * From a trainer's data settings to encoded train and eval examples: parses the dataset spec
 * (`task:NAME[?count=N&seed=S&evalShare=F&evalCount=N]` or a JSONL path), takes this client's shard,
 * holds out an eval set when none is given, and tokenizes both.
 *
 * Held-out eval set by default: a task's own eval split (disjoint prompts, see tasks.ts), or for a
 * file a seeded 10 % of its records (`splitTrainEval`), which then do not train. Sharding applies
 * to the training records only; every client evaluates on the same eval set.
 *
 * Examples longer than seqLen are cut, and the result says how many and how many tokens
 * ({@link PreparedData.report}); with packing, training examples are kept whole (the packed stream
 * is cut into rows instead) and only the eval set is cut.
 */
import { loadDataset } from './dataset.js';
import type { LoadDatasetOptions } from './dataset.js';
import { encodeDataset } from './encode.js';
import type { EncodedDataset } from './encode.js';
import type { DataRecord, Dataset } from './records.js';
import { truncationCounts } from './report.js';
import type { DataReport } from './report.js';
import { splitIid, splitNonIid, splitTrainEval } from './split.js';
import { isTaskSpec } from './tasks.js';
import type { TextTokenizer } from './tokenizer.js';

/** This client's part of the training data. */
export interface ShardSpec {
  /** 0-based client index. */
  readonly index: number;
  readonly count: number;
  readonly split: 'iid' | 'non-iid';
  readonly seed: number;
  /** Non-IID: share of each group on its dominant client(s) (splitNonIid; default 0.8). */
  readonly dominance?: number;
  /** Non-IID: Dirichlet concentration instead of the dominant-group split. */
  readonly alpha?: number;
}

/** A dataset spec split into its source and options. */
export interface ParsedDataSpec {
  /** `task:NAME` or the file path. */
  readonly source: string;
  readonly options: LoadDatasetOptions;
  /** Eval examples for a task's held-out split (default: the task's default, 200). */
  readonly evalCount?: number;
}

/** What {@link prepareData} needs. */
export interface DataSettings {
  readonly data: string;
  readonly evalData?: string;
  readonly shard?: ShardSpec;
  readonly seqLen: number;
  /** Seeds the task generator (unless the spec names a seed) and the held-out split of a file. */
  readonly seed: number;
  /** Training examples will be packed (language modelling only): keep them whole. Default false. */
  readonly packing?: boolean;
}

/** Encoded train and eval data. */
export interface PreparedData {
  readonly train: EncodedDataset;
  readonly eval: EncodedDataset;
  /** The record kind of the training data. */
  readonly kind: DataRecord['kind'];
  readonly labelNames?: readonly string[];
  /** What seqLen cut from each set. */
  readonly report: DataReport;
}

const FILE_EVAL_FRACTION = 0.1;
const QUERY_KEYS = ['count', 'seed', 'evalShare', 'evalCount'] as const;

/**
 * Parses `task:NAME?count=500&seed=3` (options: count, seed, evalShare, evalCount). A path is
 * returned as it is (a `?` in a file name is not an option list).
 */
export function parseDataSpec(spec: string): ParsedDataSpec {
  if (spec.trim().length === 0) throw new Error('data: empty dataset spec; give task:NAME or a .jsonl path');
  if (!isTaskSpec(spec) || !spec.includes('?')) return { source: spec, options: {} };
  const [source, query] = [spec.slice(0, spec.indexOf('?')), spec.slice(spec.indexOf('?') + 1)];
  const options: Record<string, number> = {};
  for (const part of query.split('&').filter((p) => p.length > 0)) {
    const [key, value = ''] = part.split('=');
    if (!(QUERY_KEYS as readonly string[]).includes(key)) {
      throw new Error(`data: unknown option '${key}' in ${spec}; options: ${QUERY_KEYS.join(', ')}`);
    }
    const n = Number(value);
    const integer = key !== 'evalShare';
    if (value.trim() === '' || !Number.isFinite(n) || (integer && (!Number.isInteger(n) || n < 0))) {
      throw new Error(`data: option ${key} in ${spec} must be ${integer ? 'a non-negative integer' : 'a number'}, got '${value}'`);
    }
    options[key] = n;
  }
  const { evalCount, ...rest } = options;
  return { source, options: rest, ...(evalCount !== undefined ? { evalCount } : {}) };
}

function checkShard(shard: ShardSpec): void {
  if (!Number.isInteger(shard.count) || shard.count <= 0) throw new RangeError(`data: shard.count must be a positive integer, got ${shard.count}`);
  if (!Number.isInteger(shard.index) || shard.index < 0 || shard.index >= shard.count) {
    throw new RangeError(`data: shard.index must be an integer in [0, ${shard.count - 1}], got ${shard.index}`);
  }
  if (shard.split !== 'iid' && shard.split !== 'non-iid') throw new RangeError(`data: shard.split must be 'iid' or 'non-iid', got '${String(shard.split)}'`);
}

/** The position of the first record without a string `group` or a numeric `label` (what a non-IID split groups by), or -1. */
export function firstUngrouped(records: readonly DataRecord[]): number {
  return records.findIndex((r) => typeof (r as { group?: unknown }).group !== 'string' && typeof (r as { label?: unknown }).label !== 'number');
}

/** Why a non-IID split of these records cannot be made (record `at` has no group), for errors. */
function ungroupedMessage(at: number): string {
  return `a non-IID split (--split non-iid) groups records by their "group" (or numeric "label"), and record ${at + 1} has neither: use --split iid, or add a "group" field to each record`;
}

/**
 * The split a federation uses for the records of `spec`: `requested` when given (a non-IID split of
 * records without groups throws a RangeError saying so); else non-IID when every record carries a
 * group or a label, and IID otherwise — then `note` says why, so the choice is never silent.
 */
export async function resolveSplit(spec: string, seed: number, requested?: 'iid' | 'non-iid'): Promise<{ split: 'iid' | 'non-iid'; note?: string }> {
  if (requested === 'iid') return { split: 'iid' };
  const at = firstUngrouped((await loadSpec(spec, seed)).records);
  if (at < 0) return { split: 'non-iid' };
  if (requested === 'non-iid') throw new RangeError(`${spec}: ${ungroupedMessage(at)}`);
  return { split: 'iid', note: `${spec}: record ${at + 1} has no "group" (nor a numeric "label") to split by, so clients get an IID share (--split iid); add a "group" field to each record for a non-IID split` };
}

/** The records of this client's shard (all records without a shard). */
export function shardRecords<R extends DataRecord>(records: readonly R[], shard: ShardSpec | undefined): R[] {
  if (shard === undefined) return [...records];
  checkShard(shard);
  if (shard.split === 'non-iid') {
    const at = firstUngrouped(records);
    if (at >= 0) throw new RangeError(`data: ${ungroupedMessage(at)}`);
  }
  const parts = shard.split === 'iid'
    ? splitIid(records, shard.count, { seed: shard.seed })
    : splitNonIid(records, shard.count, {
      seed: shard.seed,
      ...(shard.dominance !== undefined ? { dominance: shard.dominance } : {}),
      ...(shard.alpha !== undefined ? { alpha: shard.alpha } : {}),
    });
  return parts[shard.index];
}

/** Loads one spec's records (train split for a task). */
export async function loadSpec(spec: string, seed: number, split?: 'train' | 'eval'): Promise<Dataset> {
  const parsed = parseDataSpec(spec);
  if (!isTaskSpec(parsed.source)) return loadDataset(parsed.source, parsed.options);
  const options: LoadDatasetOptions = { seed, ...parsed.options, ...(split !== undefined ? { split } : {}) };
  if (split === 'eval') return loadDataset(parsed.source, { ...options, count: parsed.evalCount ?? 200 });
  return loadDataset(parsed.source, options);
}

/** Loads, shards, holds out and encodes the data of a trainer (see the module comment). */
export async function prepareData(settings: DataSettings, tokenizer: TextTokenizer | null): Promise<PreparedData> {
  const full = await loadSpec(settings.data, settings.seed, isTaskSpec(settings.data) ? 'train' : undefined);
  let trainRecords: readonly DataRecord[] = full.records;
  let evalSet: Dataset;
  if (settings.evalData !== undefined) {
    evalSet = await loadSpec(settings.evalData, settings.seed, isTaskSpec(settings.evalData) ? 'eval' : undefined);
  } else if (isTaskSpec(settings.data)) {
    evalSet = await loadSpec(settings.data, settings.seed, 'eval');
  } else {
    const parts = splitTrainEval(full.records, FILE_EVAL_FRACTION, settings.seed);
    trainRecords = parts.train;
    evalSet = { ...full, records: parts.eval };
  }
  if (evalSet.kind !== full.kind) {
    throw new Error(`data: the eval data ${evalSet.source} holds ${evalSet.kind} records but the training data ${full.source} holds ${full.kind} records`);
  }
  const trainSet: Dataset = { ...full, records: shardRecords(trainRecords, settings.shard) };
  if (trainSet.records.length === 0) {
    throw new Error(`data: no training records in ${full.source}${settings.shard !== undefined ? ` for shard ${settings.shard.index} of ${settings.shard.count}` : ''}`);
  }
  const packed = settings.packing === true;
  if (packed && full.kind === 'classification') throw new Error(`data: ${full.source} holds classification records, which are padded one per row; packing applies to language-modelling data`);
  const train = encodeDataset(trainSet, tokenizer, { seqLen: settings.seqLen, truncate: !packed });
  const evalEncoded = encodeDataset(evalSet, tokenizer, { seqLen: settings.seqLen });
  if (train.examples.length === 0) {
    throw new Error(`data: every training example of ${full.source} was dropped at seqLen ${settings.seqLen} (no label left to score); raise seqLen`);
  }
  const report: DataReport = { seqLen: settings.seqLen, packed, train: truncationCounts(train), eval: truncationCounts(evalEncoded) };
  return { train, eval: evalEncoded, kind: full.kind, ...(full.labelNames !== undefined ? { labelNames: full.labelNames } : {}), report };
}
