/**
 * What encoding did to the data, for the trainer to pass on and the CLI to print: how many records
 * `--seq-len` cut and which share of their tokens was lost, and how many were skipped because
 * nothing was left to score.
 */
import type { EncodedDataset } from './encode.js';

/** Truncation counts of one encoded dataset. */
export interface TruncationCounts {
  readonly records: number;
  /** Records cut to seqLen. */
  readonly truncated: number;
  /** Records skipped: no label left to score after the cut. */
  readonly dropped: number;
  /** Tokens of all records before the cut. */
  readonly tokens: number;
  /** Tokens the cut removed. */
  readonly truncatedTokens: number;
}

/** The data report of a trainer's train and eval sets. */
export interface DataReport {
  readonly seqLen: number;
  /** Training examples packed into rows (not cut one by one). */
  readonly packed: boolean;
  readonly train: TruncationCounts;
  readonly eval: TruncationCounts;
}

/** The counts of an encoded dataset. */
export function truncationCounts(data: EncodedDataset): TruncationCounts {
  return { records: data.records, truncated: data.truncated, dropped: data.dropped, tokens: data.tokens, truncatedTokens: data.truncatedTokens };
}

/** Share of the tokens the cut removed, in [0, 1] (0 for no tokens). */
export function truncatedShare(counts: TruncationCounts): number {
  return counts.tokens > 0 ? counts.truncatedTokens / counts.tokens : 0;
}

/**
 * One sentence on what `--seq-len` cut, e.g. `--seq-len 64 cut 12 of 500 training records (1234 of
 * 15000 tokens dropped, 8.2 %); 3 training records had nothing left to score and were skipped; raise
 * --seq-len, or --pack text data`; null when nothing was (or there is no report).
 */
export function describeTruncation(report: DataReport | undefined): string | null {
  if (report === undefined) return null;
  const cut = (what: string, c: TruncationCounts): string | null => (c.truncated === 0
    ? null
    : `${c.truncated} of ${c.records} ${what} records (${c.truncatedTokens} of ${c.tokens} tokens dropped, ${(100 * truncatedShare(c)).toFixed(1)} %)`);
  const skipped = (what: string, c: TruncationCounts): string | null => (c.dropped === 0 ? null : `${c.dropped} ${what} records had nothing left to score and were skipped`);
  const cuts = [cut('training', report.train), cut('eval', report.eval)].filter((p): p is string => p !== null);
  const skips = [skipped('training', report.train), skipped('eval', report.eval)].filter((p): p is string => p !== null);
  if (cuts.length === 0 && skips.length === 0) return null;
  const parts = [...(cuts.length > 0 ? [`--seq-len ${report.seqLen} cut ${cuts.join(' and ')}`] : [`at --seq-len ${report.seqLen}`]), ...skips];
  return `${parts.join('; ')}; ${report.packed ? 'raise --seq-len' : 'raise --seq-len, or --pack text data'}`;
}
