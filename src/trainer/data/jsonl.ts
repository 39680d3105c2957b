/**
 * JSONL datasets: one JSON object per line, streamed. Blank lines are skipped. Every error names
 * the file and the 1-based line number. A file holds records of one format (see records.ts; an
 * Alpaca file holds prompt/completion records, but does not mix with `{"prompt","completion"}`
 * lines).
 */
import { open } from 'node:fs/promises';
import { alpacaRecord } from './alpaca.js';
import { parseChatRecord } from './chatRecord.js';
import type { ClassificationRecord, DataRecord, Dataset } from './records.js';
import { IGNORE_INDEX } from './records.js';

/** One parsed line. */
export interface JsonlLine {
  /** 1-based line number. */
  readonly line: number;
  readonly value: unknown;
}

/** Options of {@link loadJsonl}. */
export interface JsonlOptions {
  /**
   * Class names by id, for classification files. A string label must be one of them; an integer
   * label must be a valid index. Without it, string labels get ids in sorted order and integer
   * labels are used as they are.
   */
  readonly labelNames?: readonly string[];
  /** Read at most this many records. */
  readonly limit?: number;
}

/** Streams the JSON values of a JSONL file, line by line. */
export async function* readJsonl(path: string): AsyncGenerator<JsonlLine> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    throw new Error(`jsonl: cannot open ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    let line = 0;
    for await (const raw of handle.readLines({ encoding: 'utf8' })) {
      line++;
      const text = line === 1 ? raw.replace(/^\uFEFF/, '') : raw;
      if (text.trim().length === 0) continue;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (err) {
        throw new Error(`${path}:${line}: invalid JSON: ${(err as Error).message}`, { cause: err });
      }
      yield { line, value };
    }
  } finally {
    await handle.close();
  }
}

/** A classification record whose label is still as written in the file. */
type RawRecord = DataRecord | { kind: 'raw-classification'; text: string; label: string | number; group?: string };

/** What a line is written as: a record kind, or `alpaca` (read as prompt-completion). */
type LineFormat = DataRecord['kind'] | 'alpaca';

/** Reads a whole JSONL dataset (all lines one kind). */
export async function loadJsonl(path: string, options: JsonlOptions = {}): Promise<Dataset> {
  const raw: RawRecord[] = [];
  const lines: number[] = [];
  let first: { format: LineFormat; line: number } | null = null;
  const limit = options.limit ?? Infinity;
  for await (const { line, value } of readJsonl(path)) {
    if (raw.length >= limit) break;
    const where = `${path}:${line}`;
    const { record, format } = parseRecord(value, where, line);
    if (first === null) first = { format, line };
    else if (format !== first.format) {
      throw new Error(`${where}: ${article(format)} record, but line ${first.line} holds ${article(first.format)} record; one file must hold one kind (${describeKinds()})`);
    }
    raw.push(record);
    lines.push(line);
  }
  if (first === null) throw new Error(`${path}: no records (the file is empty or blank)`);
  if (first.format !== 'classification') {
    return { source: path, kind: first.format === 'alpaca' ? 'prompt-completion' : first.format, records: raw as DataRecord[] };
  }
  const { records, labelNames } = mapLabels(raw as Array<Extract<RawRecord, { kind: 'raw-classification' }>>, lines, path, options.labelNames);
  return { source: path, kind: 'classification', records, labelNames };
}

function describeKinds(): string {
  return '{"text"} | {"prompt","completion"} | {"instruction","input","output"} | {"messages"} | {"text","label"} | {"input_ids"[,"labels"]}';
}

function article(format: LineFormat): string {
  return `${/^[aeiou]/.test(format) ? 'an' : 'a'} ${format}`;
}

/** Parses one JSON value into a record; `where` (file:line) prefixes every error. */
function parseRecord(value: unknown, where: string, line: number): { record: RawRecord; format: LineFormat } {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error(`${where}: expected a JSON object, got ${jsonType(value)}`);
  const o = value as Record<string, unknown>;
  const group = optionalString(o, 'group', where);
  const withGroup = <R extends object>(r: R): R => (group === undefined ? r : { ...r, group });
  if (o.messages !== undefined) return { record: withGroup(parseChatRecord(o, where, line)), format: 'chat' };
  if (o.instruction !== undefined || o.output !== undefined) {
    for (const other of ['text', 'prompt', 'completion', 'input_ids']) {
      if (o[other] !== undefined) throw new Error(`${where}: has both "instruction"/"output" and "${other}"; pick one record kind`);
    }
    const input = o.input === undefined || o.input === null ? '' : requiredString(o, 'input', where);
    return { record: alpacaRecord(requiredString(o, 'instruction', where), input, requiredString(o, 'output', where), group), format: 'alpaca' };
  }
  const record = parseFlatRecord(o, where, withGroup);
  return { record, format: record.kind === 'raw-classification' ? 'classification' : record.kind };
}

/** The text, prompt/completion, classification and pre-tokenized records. */
function parseFlatRecord(o: Record<string, unknown>, where: string, withGroup: <R extends object>(r: R) => R): RawRecord {
  const has = (k: string): boolean => o[k] !== undefined;
  if (has('input_ids')) {
    for (const other of ['text', 'prompt', 'completion']) {
      if (has(other)) throw new Error(`${where}: has both "input_ids" and "${other}"; a record is either pre-tokenized or text`);
    }
    const inputIds = intArray(o.input_ids, 'input_ids', where, 0);
    if (inputIds.length === 0) throw new Error(`${where}: "input_ids" is empty`);
    if (!has('labels')) return withGroup({ kind: 'tokenized', inputIds });
    const labels = intArray(o.labels, 'labels', where, IGNORE_INDEX);
    if (labels.length !== inputIds.length) throw new Error(`${where}: "labels" has ${labels.length} entries but "input_ids" has ${inputIds.length}`);
    return withGroup({ kind: 'tokenized', inputIds, labels });
  }
  if (has('prompt') || has('completion')) {
    if (has('text')) throw new Error(`${where}: has both "text" and "prompt"/"completion"; pick one record kind`);
    const prompt = requiredString(o, 'prompt', where);
    const completion = requiredString(o, 'completion', where);
    return withGroup({ kind: 'prompt-completion', prompt, completion });
  }
  if (has('label')) {
    const text = requiredString(o, 'text', where);
    const label = o.label;
    if (typeof label === 'string' || (typeof label === 'number' && Number.isInteger(label) && label >= 0)) {
      return withGroup({ kind: 'raw-classification', text, label });
    }
    throw new Error(`${where}: "label" must be a string or a non-negative integer, got ${JSON.stringify(label)}`);
  }
  if (has('text')) return withGroup({ kind: 'text', text: requiredString(o, 'text', where) });
  throw new Error(`${where}: no known field (keys: ${Object.keys(o).join(', ') || 'none'}); expected one of ${describeKinds()}`);
}

/** Maps raw labels to ids; see {@link JsonlOptions.labelNames}. */
function mapLabels(
  raw: ReadonlyArray<{ text: string; label: string | number; group?: string }>,
  lines: readonly number[],
  path: string,
  given: readonly string[] | undefined,
): { records: ClassificationRecord[]; labelNames: readonly string[] } {
  let names = given;
  if (names === undefined) {
    const strings = raw.filter((r) => typeof r.label === 'string');
    if (strings.length > 0 && strings.length < raw.length) {
      const i = raw.findIndex((r) => typeof r.label !== typeof raw[0].label);
      throw new Error(`${path}:${lines[i]}: labels mix strings and integers; pass the label list to map them`);
    }
    names = strings.length > 0
      ? [...new Set(raw.map((r) => r.label as string))].sort()
      : Array.from({ length: Math.max(...raw.map((r) => r.label as number)) + 1 }, (_, i) => `${i}`);
  }
  const index = new Map(names.map((n, i) => [n, i]));
  const records = raw.map((r, i): ClassificationRecord => {
    const id = typeof r.label === 'string' ? index.get(r.label) : r.label < names.length ? r.label : undefined;
    if (id === undefined) {
      throw new Error(`${path}:${lines[i]}: label ${JSON.stringify(r.label)} is not in the label list [${names.join(', ')}]`);
    }
    const record: ClassificationRecord = { kind: 'classification', text: r.text, label: id };
    return r.group === undefined ? record : { ...record, group: r.group };
  });
  return { records, labelNames: names };
}

function requiredString(o: Record<string, unknown>, key: string, where: string): string {
  const v = o[key];
  if (v === undefined) throw new Error(`${where}: missing field "${key}"`);
  if (typeof v !== 'string') throw new Error(`${where}: "${key}" must be a string, got ${jsonType(v)}`);
  return v;
}

function optionalString(o: Record<string, unknown>, key: string, where: string): string | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new Error(`${where}: "${key}" must be a string, got ${jsonType(v)}`);
  return v;
}

/** An array of integers ≥ 0 (or equal to `allowed`, e.g. -100 for labels). */
function intArray(v: unknown, key: string, where: string, allowed: number): number[] {
  if (!Array.isArray(v)) throw new Error(`${where}: "${key}" must be an array of integers, got ${jsonType(v)}`);
  v.forEach((x, i) => {
    if (typeof x !== 'number' || !Number.isInteger(x) || (x < 0 && x !== allowed)) {
      throw new Error(`${where}: "${key}"[${i}] is ${JSON.stringify(x)}, not a ${allowed < 0 ? `token id or ${allowed}` : 'token id (integer ≥ 0)'}`);
    }
  });
  return v as number[];
}

function jsonType(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}
