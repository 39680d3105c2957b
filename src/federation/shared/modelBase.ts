/**
 * A Hugging Face model folder as a federation's base model: its content hash (docs/protocol.md §8)
 * over a fixed list of files — config.json, the weights (model.safetensors, or the index and its
 * shards), tokenizer.json and tokenizer_config.json when present — and a `BaseSource` that reads
 * the adapted modules' weights as float32 in stored layout. Coordinator and clients compute the
 * same hash from the same files, whatever else the folders hold.
 */
import { createReadStream } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Matrix } from '../../core/tensor.js';
import { withCheckpoint } from '../../model/checkpoint.js';
import { baseModelHash, type ModelFile } from '../protocol/baseModel.js';
import { architectureFor } from '../../model/registry.js';
import { ALL_LINEAR } from '../../model/targetModules.js';
import type { LoraSettings } from '../../model/types.js';
import type { AdapterLayout } from '../protocol/adapterTensors.js';
import type { BaseSource } from './baseWeights.js';

/** The model files that make up the hash, in hash order (weights shards are inserted after the index). */
const HASHED = ['config.json', 'model.safetensors', 'model.safetensors.index.json', 'tokenizer.json', 'tokenizer_config.json'];

/** The files and content hash of a model folder. */
export interface ModelManifest {
  readonly dir: string;
  readonly files: readonly ModelFile[];
  readonly hash: string;
}

/** SHA-256 (lower-case hex) of a file's contents, read as a stream. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function shardNames(indexPath: string): Promise<string[]> {
  const index = JSON.parse(await readFile(indexPath, 'utf8')) as { weight_map?: Record<string, string> };
  const names = [...new Set(Object.values(index.weight_map ?? {}))];
  for (const n of names) if (!/^[A-Za-z0-9_.-]+$/.test(n) || n.startsWith('.')) throw new Error(`${indexPath}: shard name '${n}' is not a plain file name`);
  return names;
}

/**
 * The names of a model folder's files that make up its content hash, in hash order (what
 * `modelManifest` hashes). Throws naming the folder when it has no config.json or weights.
 */
export async function manifestNames(dir: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    throw new Error(`model folder ${dir} does not exist or cannot be read`);
  }
  if (!entries.includes('config.json')) throw new Error(`model folder ${dir} has no config.json`);
  const names: string[] = [];
  for (const name of HASHED) {
    if (!entries.includes(name)) continue;
    names.push(name);
    if (name === 'model.safetensors.index.json') names.push(...await shardNames(join(dir, name)));
  }
  if (!names.includes('model.safetensors') && !names.includes('model.safetensors.index.json')) throw new Error(`model folder ${dir} has no model.safetensors`);
  return names;
}

/** Reads the manifest of a model folder and computes its content hash. Throws naming the folder when it has no config.json or weights. */
export async function modelManifest(dir: string): Promise<ModelManifest> {
  const names = await manifestNames(dir);
  const files: ModelFile[] = [];
  for (const name of names) {
    const path = join(dir, name);
    files.push({ name, bytes: (await stat(path)).size, sha256: await sha256File(path) });
  }
  return { dir, files, hash: baseModelHash(files) };
}

/** An adaptable module: its PEFT path and the checkpoint key of its base weight. */
export interface BaseModuleKey {
  readonly path: string;
  readonly baseKey: string;
}

/**
 * Every module of a model folder that LoRA can adapt (the architecture's `all-linear` candidates),
 * with the checkpoint key of its weight: builds the model's graph, reads no weights.
 */
export async function adaptableModules(dir: string): Promise<BaseModuleKey[]> {
  return withCheckpoint(dir, async (checkpoint) => {
    const arch = architectureFor(checkpoint.config);
    const lora: LoraSettings = { r: 1, alpha: 1, useRslora: false, dropout: 0, targetModules: [ALL_LINEAR], freezeA: false, modulesToSave: [] };
    const graph = arch.build({ config: checkpoint.config, tensors: checkpoint.tensors, lora, task: 'causal-lm', training: false });
    return graph.modules.map((m) => ({ path: m.path, baseKey: m.baseKey }));
  });
}

/**
 * The base source of a model folder: `hash` from its manifest; `load(layout)` reads exactly the
 * layout's modules' weights (as stored: in × out for Conv1D), once per layout, and returns the same
 * matrices on every call. `modules` are the modules it can serve (default: every adaptable one);
 * a layout module outside them is refused naming it (the client reports it as `C_BASE_LAYOUT`).
 */
export function modelBaseSource(dir: string, hash: string, modules?: readonly BaseModuleKey[]): BaseSource {
  let keys: Promise<Map<string, string>> | undefined;
  const loaded = new Map<string, Promise<ReadonlyMap<string, Matrix<Float32Array>>>>();
  const read = async (layout: AdapterLayout): Promise<ReadonlyMap<string, Matrix<Float32Array>>> => {
    keys ??= (modules !== undefined ? Promise.resolve(modules) : adaptableModules(dir)).then((list) => new Map(list.map((m) => [m.path, m.baseKey])));
    const byPath = await keys;
    for (const m of layout) {
      if (!byPath.has(m.module)) {
        throw new RangeError(`the federation adapts module ${m.module}, which the model in ${dir} does not have (its adaptable modules look like ${[...byPath.keys()].slice(0, 3).join(', ')})`);
      }
    }
    return withCheckpoint(dir, async (checkpoint) => {
      const out = new Map<string, Matrix<Float32Array>>();
      for (const m of layout) {
        const baseKey = byPath.get(m.module)!;
        const info = checkpoint.info(baseKey);
        if (info.shape.length !== 2) throw new RangeError(`${dir}: base weight ${baseKey} of module ${m.module} has shape [${info.shape.join(', ')}], not 2-D`);
        out.set(m.module, { shape: [info.shape[0], info.shape[1]], data: await checkpoint.readFloat32(baseKey) });
      }
      return out;
    });
  };
  return {
    hash,
    load(layout) {
      const key = layout.map((m) => m.module).join('\n');
      let hit = loaded.get(key);
      if (hit === undefined) {
        hit = read(layout);
        loaded.set(key, hit);
        hit.catch(() => loaded.delete(key));
      }
      return hit;
    },
  };
}
