/**
 * Reading PEFT LoRA adapter folders (`adapter_config.json` + `adapter_model.safetensors`) by index:
 * the config and every tensor's entry are read and checked up front (pairs, shapes, ranks against
 * the config, targets, dtypes), the values of one module only when asked for. A whole model's
 * adapters can then be streamed module by module (`fedex aggregate`) instead of held in memory.
 *
 * Tensor keys are `base_model.model.<module path>.lora_A.weight` (r × in) and `.lora_B.weight`
 * (out × r), without the adapter name; other tensors (modules_to_save, trained biases) are
 * `base_model.model.<path>`.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Matrix, Tensor } from '../core/tensor.js';
import { FormatError } from './errors.js';
import { readJsonFile } from './jsonFile.js';
import { openSafetensors } from './safetensors.js';
import type { SafetensorsReader } from './safetensors.js';
import type { SafetensorsDType } from './safetensorsHeader.js';
import { alphaOf, isTargetModule, loraScaling, parseLoraConfig, patternKey, rankOf } from './peftConfig.js';
import type { LoraConfig } from './peftConfig.js';

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';
/** Prefix of every key PEFT writes. */
export const PEFT_KEY_PREFIX = 'base_model.model.';

/** One adapted module: W_eff = W0 + scaling · B·A (Linear layout). */
export interface LoraModule {
  readonly modulePath: string;
  /** r × in */
  readonly A: Matrix<Float32Array>;
  /** out × r */
  readonly B: Matrix<Float32Array>;
  readonly rank: number;
  readonly alpha: number;
  readonly scaling: number;
}

/** What the index knows of a module before its values are read. */
export interface LoraModuleEntry {
  readonly modulePath: string;
  /** Safetensors keys of lora_A and lora_B. */
  readonly keyA: string;
  readonly keyB: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly rank: number;
  readonly alpha: number;
  readonly scaling: number;
}

/** An open adapter folder. Call `close()` when done. */
export interface PeftAdapterIndex {
  readonly dir: string;
  /** The weights file (named in errors). */
  readonly file: string;
  readonly config: LoraConfig;
  /** In file order. */
  readonly modules: readonly LoraModuleEntry[];
  /** Keys of the non-LoRA tensors (modules_to_save weights, trained biases), in file order. */
  readonly extraKeys: readonly string[];
  /** Dtype the LoRA factors are stored in (F32 when there are none). */
  readonly dtype: SafetensorsDType;
  /** One module's factors as float32; values checked finite unless the index allows non-finite ones. */
  readModule(modulePath: string): Promise<LoraModule>;
  /** One extra tensor as float32, checked finite likewise. */
  readExtra(key: string): Promise<Tensor<Float32Array>>;
  /** The stored shape of an extra tensor (from the header; nothing is read). */
  extraShape(key: string): readonly number[];
  /**
   * Checks that every extra tensor is finite without holding it: read a block of rows at a time
   * (what `readExtra` would refuse, without its memory).
   */
  checkExtrasFinite(): Promise<void>;
  close(): Promise<void>;
}

/** The safetensors key of a module's factor. */
export function adapterTensorKey(modulePath: string, factor: 'A' | 'B'): string {
  return `${PEFT_KEY_PREFIX}${modulePath}.lora_${factor}.weight`;
}

/** Throws PEFT_NON_FINITE naming the file, the tensor and the first bad flat index (offset by `first`). */
export function checkFinite(data: ArrayLike<number>, file: string, tensor: string, first = 0): void {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) throw new FormatError('PEFT_NON_FINITE', `holds ${data[i]} at flat index ${first + i}`, { file, tensor });
  }
}

/** Reads and checks `adapter_config.json` of a folder. */
export async function readLoraConfig(dir: string): Promise<LoraConfig> {
  const file = join(dir, ADAPTER_CONFIG_FILE);
  return parseLoraConfig(await readJsonFile(file, `adapter folder has no ${ADAPTER_CONFIG_FILE}`, 'PEFT_CONFIG_INVALID'), file);
}

interface KeyPair {
  A?: string;
  B?: string;
}

/** Sorts a file's keys into LoRA factor pairs and other tensors; refuses LoRA variants it cannot represent. */
function classifyKeys(keys: Iterable<string>, file: string): { pairs: Map<string, KeyPair>; extras: string[] } {
  const pairs = new Map<string, KeyPair>();
  const extras: string[] = [];
  for (const key of keys) {
    const path = key.startsWith(PEFT_KEY_PREFIX) ? key.slice(PEFT_KEY_PREFIX.length) : key;
    const m = /^(.+)\.lora_([AB])\.weight$/.exec(path);
    if (m !== null) {
      const pair = pairs.get(m[1]) ?? {};
      pair[m[2] as 'A' | 'B'] = key;
      pairs.set(m[1], pair);
    } else if (/(^|\.)lora_/.test(path)) {
      throw new FormatError('PEFT_UNSUPPORTED', 'is not a plain LoRA factor (lora_A/lora_B .weight without adapter name); embedding LoRA, DoRA and LoRA biases are not supported', { file, tensor: key });
    } else {
      extras.push(key);
    }
  }
  return { pairs, extras };
}

/** Checks one module's entries against each other and the config; returns what the index keeps. */
function moduleEntry(reader: SafetensorsReader, config: LoraConfig, modulePath: string, pair: KeyPair, file: string): LoraModuleEntry {
  if (pair.A === undefined || pair.B === undefined) {
    const have = (pair.A ?? pair.B)!;
    throw new FormatError('PEFT_MISSING_TENSOR', `has no partner ${adapterTensorKey(modulePath, pair.A === undefined ? 'A' : 'B')}`, { file, tensor: have });
  }
  const infoA = reader.info(pair.A);
  const infoB = reader.info(pair.B);
  for (const info of [infoA, infoB]) {
    if (info.shape.length !== 2) throw new FormatError('PEFT_SHAPE_MISMATCH', `must be 2-D, has shape [${info.shape.join(', ')}]`, { file, tensor: info.name });
  }
  const rank = infoA.shape[0];
  if (infoB.shape[1] !== rank) {
    throw new FormatError('PEFT_RANK_MISMATCH', `lora_A has rank ${rank} (shape [${infoA.shape.join(', ')}]) but lora_B has shape [${infoB.shape.join(', ')}]`, { file, tensor: pair.B });
  }
  const want = rankOf(config, modulePath);
  if (rank !== want) {
    const key = patternKey(config.rankPattern, modulePath);
    throw new FormatError('PEFT_RANK_MISMATCH', `has rank ${rank} but the config gives this module r = ${want}${key === undefined ? '' : ` (rank_pattern '${key}')`}`, { file, tensor: pair.A });
  }
  if (!isTargetModule(config, modulePath)) {
    throw new FormatError('PEFT_TARGET_MISMATCH', `module '${modulePath}' is not matched by target_modules ${JSON.stringify(config.targetModules)}; PEFT would ignore it`, { file, tensor: pair.A });
  }
  const alpha = alphaOf(config, modulePath);
  return {
    modulePath,
    keyA: pair.A,
    keyB: pair.B,
    inFeatures: infoA.shape[1],
    outFeatures: infoB.shape[0],
    rank,
    alpha,
    scaling: loraScaling(alpha, rank, config.useRslora),
  };
}

/** Stored bytes per block when an extra tensor is checked without reading it whole. */
const CHECK_BLOCK_BYTES = 4 << 20;

class FolderIndex implements PeftAdapterIndex {
  private readonly byPath: Map<string, LoraModuleEntry>;

  constructor(
    readonly dir: string,
    readonly file: string,
    readonly config: LoraConfig,
    readonly modules: readonly LoraModuleEntry[],
    readonly extraKeys: readonly string[],
    readonly dtype: SafetensorsDType,
    private readonly reader: SafetensorsReader,
    private readonly allowNonFinite: boolean,
  ) {
    this.byPath = new Map(modules.map((m) => [m.modulePath, m]));
  }

  async readModule(modulePath: string): Promise<LoraModule> {
    const m = this.byPath.get(modulePath);
    if (m === undefined) throw new FormatError('PEFT_MISSING_TENSOR', `adapter has no module '${modulePath}'`, { file: this.file, tensor: adapterTensorKey(modulePath, 'A') });
    const A = await this.reader.readMatrix(m.keyA);
    const B = await this.reader.readMatrix(m.keyB);
    if (!this.allowNonFinite) {
      checkFinite(A.data, this.file, m.keyA);
      checkFinite(B.data, this.file, m.keyB);
    }
    return { modulePath, A, B, rank: m.rank, alpha: m.alpha, scaling: m.scaling };
  }

  async readExtra(key: string): Promise<Tensor<Float32Array>> {
    const t = await this.reader.readTensor(key);
    if (!this.allowNonFinite) checkFinite(t.data, this.file, key);
    return t;
  }

  extraShape(key: string): readonly number[] {
    return this.reader.info(key).shape;
  }

  async checkExtrasFinite(): Promise<void> {
    if (this.allowNonFinite) return;
    for (const key of this.extraKeys) {
      const info = this.reader.info(key);
      const rows = info.shape.length === 0 ? 1 : info.shape[0];
      const rowBytes = rows === 0 ? 0 : info.byteLength / rows;
      const block = Math.max(1, Math.floor(CHECK_BLOCK_BYTES / Math.max(1, rowBytes)));
      const perRow = rows === 0 ? 0 : (info.shape.length === 0 ? 1 : info.shape.slice(1).reduce((a, b) => a * b, 1));
      for (let r0 = 0; r0 < rows; r0 += block) {
        const r1 = Math.min(rows, r0 + block);
        checkFinite(await this.reader.readRows(key, r0, r1), this.file, key, r0 * perRow);
      }
    }
  }

  close(): Promise<void> {
    return this.reader.close();
  }
}

/**
 * Opens a PEFT LoRA adapter folder: reads the config and the weights file's header, and checks that
 * both factors of every module exist, are 2-D, agree in rank with each other and with the config
 * (r / rank_pattern), that the module is one the config targets, and that extra tensors are float.
 * Values are read (and checked finite, unless `allowNonFinite`) by `readModule` / `readExtra`.
 */
export async function openPeftAdapterIndex(dir: string, options: { allowNonFinite?: boolean } = {}): Promise<PeftAdapterIndex> {
  const config = await readLoraConfig(dir);
  const file = join(dir, ADAPTER_WEIGHTS_FILE);
  const reader = await openSafetensors(file).catch(async (err: unknown) => {
    if (err instanceof FormatError && err.code === 'FILE_NOT_FOUND') {
      const bin = await readFile(join(dir, 'adapter_model.bin')).then(() => true, () => false);
      if (bin) throw new FormatError('PEFT_UNSUPPORTED', 'only adapter_model.bin (pickle) is present; save the adapter with safe_serialization=True', { file: dir });
    }
    throw err;
  });
  try {
    const { pairs, extras } = classifyKeys(reader.tensors.keys(), file);
    const modules = [...pairs].map(([modulePath, pair]) => moduleEntry(reader, config, modulePath, pair, file));
    for (const key of extras) {
      const info = reader.info(key);
      if (!['F16', 'BF16', 'F32', 'F64'].includes(info.dtype)) {
        throw new FormatError('PEFT_UNSUPPORTED', `extra tensor has dtype ${info.dtype}; only float tensors are supported`, { file, tensor: key });
      }
    }
    const dtype = modules.length > 0 ? reader.info(modules[0].keyA).dtype : 'F32';
    return new FolderIndex(dir, file, config, modules, extras, dtype, reader, options.allowNonFinite === true);
  } catch (err) {
    await reader.close();
    throw err;
  }
}
