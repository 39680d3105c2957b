/**
 * Hugging Face model folders: `config.json`, the weights as `model.safetensors` or as shards
 * listed by `model.safetensors.index.json`, and `tokenizer.json` when present. Only headers are
 * read up front; `readFloat32` reads one tensor at a time by byte range (F32/F16/BF16/F64 →
 * float32), so the model never has to fit in memory twice.
 *
 * Keys are accepted with or without the wrapper prefixes model classes add (`transformer.`,
 * `model.`, …): GPT-2 hub files store `h.0.attn.c_attn.weight`, PEFT paths say
 * `transformer.h.0.attn.c_attn`.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { baseKeyCandidates } from '../formats/adapterKeys.js';
import { isNotFound } from '../formats/errors.js';
import { readHfConfig } from '../formats/hfConfig.js';
import type { HfModelConfig } from '../formats/hfConfig.js';
import { openSafetensors } from '../formats/safetensors.js';
import type { SafetensorsDType, SafetensorsReader } from '../formats/safetensors.js';
import { ModelError } from './errors.js';

export const CONFIG_FILE = 'config.json';
export const SAFETENSORS_FILE = 'model.safetensors';
export const SAFETENSORS_INDEX_FILE = 'model.safetensors.index.json';
export const TOKENIZER_FILE = 'tokenizer.json';
const PYTORCH_FILES = ['pytorch_model.bin', 'pytorch_model.bin.index.json'];

/** Where one stored tensor lives. */
export interface CheckpointTensor {
  /** The key as stored. */
  readonly key: string;
  /** The safetensors file that holds it. */
  readonly file: string;
  readonly dtype: SafetensorsDType;
  readonly shape: readonly number[];
}

/** An opened model folder. Call `close()` when done (it holds the weight files open). */
export interface Checkpoint {
  readonly dir: string;
  /** `model_type` of config.json. */
  readonly modelType: string;
  /** config.json as parsed JSON (what architectures build from). */
  readonly config: Readonly<Record<string, unknown>>;
  /** config.json normalised by src/formats/hfConfig.ts. */
  readonly hfConfig: HfModelConfig;
  /** Every stored key and its shape, keys as stored. */
  readonly tensors: ReadonlyMap<string, readonly number[]>;
  /** The safetensors files, in index (or single-file) order. */
  readonly files: readonly string[];
  /** Path of tokenizer.json, when the folder has one. */
  readonly tokenizerPath: string | undefined;
  /** The stored key for `key` given with or without a wrapper prefix; throws TENSOR_NOT_FOUND naming the file and close keys. */
  resolveKey(key: string): string;
  /** The stored tensor for `key` (resolved as {@link resolveKey} does). */
  info(key: string): CheckpointTensor;
  /** One tensor as float32, read by byte range. */
  readFloat32(key: string): Promise<Float32Array>;
  /** One tensor's bytes as stored (little-endian, its `info(key).dtype`), read by byte range. */
  readRaw(key: string): Promise<Uint8Array>;
  close(): Promise<void>;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

/** The distinct shard files of an index's weight_map, in first-seen order, checked to be plain names. */
function parseIndex(json: unknown, indexPath: string): Map<string, string> {
  const weightMap = typeof json === 'object' && json !== null ? (json as Record<string, unknown>).weight_map : undefined;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw new ModelError('CHECKPOINT_INVALID_INDEX', `${indexPath}: no 'weight_map' object`);
  }
  const map = new Map<string, string>();
  for (const [key, file] of Object.entries(weightMap)) {
    if (typeof file !== 'string' || file === '' || basename(file) !== file || file === '.' || file === '..') {
      throw new ModelError('CHECKPOINT_INVALID_INDEX', `${indexPath}: weight_map entry '${key}' must name a file in the same folder, got ${JSON.stringify(file)}`);
    }
    map.set(key, file);
  }
  if (map.size === 0) throw new ModelError('CHECKPOINT_INVALID_INDEX', `${indexPath}: weight_map is empty`);
  return map;
}

/**
 * Reads a `model.safetensors.index.json`: its weight_map (key → shard file name, checked to be plain
 * names in the same folder) and the JSON itself (to write an updated copy).
 */
export async function readSafetensorsIndex(indexPath: string): Promise<{ weightMap: Map<string, string>; json: Record<string, unknown> }> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(indexPath, 'utf8'));
  } catch (cause) {
    throw new ModelError('CHECKPOINT_INVALID_INDEX', `${indexPath}: invalid JSON (${(cause as Error).message})`, { cause });
  }
  return { weightMap: parseIndex(json, indexPath), json: json as Record<string, unknown> };
}

async function readIndex(indexPath: string): Promise<Map<string, string>> {
  return (await readSafetensorsIndex(indexPath)).weightMap;
}

/** Up to five stored keys that end like `key` (same last two components), else the first few keys. */
function closeKeys(key: string, keys: readonly string[]): string[] {
  const tail = key.split('.').slice(-2).join('.');
  const near = keys.filter((k) => k.endsWith(tail));
  return (near.length > 0 ? near : keys).slice(0, 5);
}

class FolderCheckpoint implements Checkpoint {
  readonly tensors: ReadonlyMap<string, readonly number[]>;

  constructor(
    readonly dir: string,
    readonly hfConfig: HfModelConfig,
    readonly files: readonly string[],
    readonly tokenizerPath: string | undefined,
    private readonly readers: ReadonlyMap<string, SafetensorsReader>,
    private readonly where: ReadonlyMap<string, CheckpointTensor>,
    /** The file named in "not found" errors: the single file or the index. */
    private readonly source: string,
  ) {
    this.tensors = new Map([...where.values()].map((t) => [t.key, t.shape]));
  }

  get modelType(): string {
    return this.hfConfig.modelType;
  }

  get config(): Readonly<Record<string, unknown>> {
    return this.hfConfig.raw;
  }

  resolveKey(key: string): string {
    if (this.where.has(key)) return key;
    const dot = key.lastIndexOf('.');
    if (dot > 0) {
      const hit = baseKeyCandidates(key.slice(0, dot), key.slice(dot + 1)).find((k) => this.where.has(k));
      if (hit !== undefined) return hit;
    }
    const near = closeKeys(key, [...this.where.keys()]);
    throw new ModelError('TENSOR_NOT_FOUND',
      `${this.source}: no tensor '${key}' (with or without a 'transformer.'/'model.' prefix) among ${this.where.size} tensors; ` +
        `close keys: ${near.map((k) => `'${k}'`).join(', ')}`);
  }

  info(key: string): CheckpointTensor {
    return this.where.get(this.resolveKey(key))!;
  }

  async readFloat32(key: string): Promise<Float32Array> {
    const t = this.info(key);
    return this.readers.get(t.file)!.readFloat32(t.key);
  }

  async readRaw(key: string): Promise<Uint8Array> {
    const t = this.info(key);
    return this.readers.get(t.file)!.readRaw(t.key);
  }

  async close(): Promise<void> {
    for (const r of this.readers.values()) await r.close();
  }
}

async function closeAll(readers: Iterable<SafetensorsReader>): Promise<void> {
  for (const r of readers) await r.close();
}

/**
 * Opens a Hugging Face model folder: reads config.json and the safetensors headers (single file
 * or sharded index). Errors name the folder and file: a missing folder or config.json, a folder
 * with PyTorch `.bin` weights only ("convert to safetensors"), a shard the index names that is
 * missing, a key the index maps to a shard that does not hold it.
 */
export async function loadCheckpoint(dir: string): Promise<Checkpoint> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (err) {
    if (isNotFound(err)) throw new ModelError('CHECKPOINT_NOT_FOUND', `${dir}: no such model folder`, { cause: err });
    throw err;
  }
  if (!entries.includes(CONFIG_FILE)) throw new ModelError('CHECKPOINT_NOT_FOUND', `${join(dir, CONFIG_FILE)}: missing; a model folder needs config.json`);
  const hfConfig = await readHfConfig(join(dir, CONFIG_FILE));

  let files: string[];
  let index: Map<string, string> | undefined;
  let source: string;
  if (entries.includes(SAFETENSORS_FILE)) {
    files = [SAFETENSORS_FILE];
    source = join(dir, SAFETENSORS_FILE);
  } else if (entries.includes(SAFETENSORS_INDEX_FILE)) {
    source = join(dir, SAFETENSORS_INDEX_FILE);
    index = await readIndex(source);
    files = [...new Set(index.values())];
  } else {
    const pytorch = PYTORCH_FILES.filter((f) => entries.includes(f));
    if (pytorch.length > 0) {
      throw new ModelError('CHECKPOINT_NOT_SAFETENSORS',
        `${dir}: holds PyTorch weights only (${pytorch.join(', ')}); convert to safetensors first, e.g. in Python: ` +
          `AutoModel.from_pretrained(dir).save_pretrained(dir, safe_serialization=True)`);
    }
    throw new ModelError('CHECKPOINT_NOT_FOUND', `${dir}: no ${SAFETENSORS_FILE} or ${SAFETENSORS_INDEX_FILE} in this folder`);
  }

  const readers = new Map<string, SafetensorsReader>();
  try {
    for (const f of files) {
      const path = join(dir, f);
      if (!(await isFile(path))) {
        throw new ModelError('CHECKPOINT_NOT_FOUND', `${path}: missing${index !== undefined ? ` (a shard listed in ${SAFETENSORS_INDEX_FILE})` : ''}`);
      }
      readers.set(f, await openSafetensors(path));
    }
    const where = new Map<string, CheckpointTensor>();
    for (const [f, reader] of readers) {
      for (const t of reader.tensors.values()) where.set(t.name, { key: t.name, file: f, dtype: t.dtype, shape: t.shape });
    }
    if (index !== undefined) {
      for (const [key, f] of index) {
        const t = readers.get(f)!.tensors.get(key);
        if (t === undefined) throw new ModelError('CHECKPOINT_INVALID_INDEX', `${source}: maps '${key}' to ${f}, which does not hold it`);
        where.set(key, { key, file: f, dtype: t.dtype, shape: t.shape });
      }
    }
    const tokenizerPath = entries.includes(TOKENIZER_FILE) ? join(dir, TOKENIZER_FILE) : undefined;
    return new FolderCheckpoint(dir, hfConfig, files, tokenizerPath, readers, where, source);
  } catch (err) {
    await closeAll(readers.values());
    throw err;
  }
}

/** Opens a checkpoint, runs `fn` with it and closes it, also when `fn` throws. */
export async function withCheckpoint<T>(dir: string, fn: (checkpoint: Checkpoint) => Promise<T>): Promise<T> {
  const checkpoint = await loadCheckpoint(dir);
  try {
    return await fn(checkpoint);
  } finally {
    await checkpoint.close();
  }
}
