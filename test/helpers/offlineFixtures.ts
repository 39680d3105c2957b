// Shared fixtures of the offline aggregation tests: small generated checkpoints with client
// adapters, the onnxruntime kernels the aggregations run on, and structural checks of an output model
// against its input.
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after } from 'node:test';
import { openSafetensors } from '../../src/formats/safetensors.js';
import { writeSafetensors } from '../../src/formats/safetensorsWriter.js';
import type { TensorToWrite } from '../../src/formats/safetensorsWriter.js';
import { writeSyntheticAdapters, writeSyntheticCheckpoint } from '../../src/model/checkpoints/synthetic.js';
import type { SyntheticAdapterOptions, SyntheticModelSpec } from '../../src/model/checkpoints/synthetic.js';
import { createOrtProductBackend, type OrtProductBackend } from '../../src/runtime/kernels/factoredUpdate.js';
import { createStoredUpdateKernel, type StoredUpdateKernel } from '../../src/runtime/kernels/storedUpdate.js';

/** GPT-2 layout (Conv1D, in × out): c_attn [32, 96], attn.c_proj [32, 32] (square), c_fc [32, 128], mlp.c_proj [128, 32]. */
export const GPT2_SPEC: SyntheticModelSpec = { family: 'gpt2', layers: 2, hidden: 32, heads: 4, vocab: 64, positions: 16, seed: 11 };
export const GPT2_TARGETS = ['c_attn', 'c_proj', 'c_fc'];

/** Llama layout (Linear, out × in), grouped-query: q/o [48, 48], k/v [24, 48], gate/up [80, 48], down [48, 80]. */
export const LLAMA_SPEC: SyntheticModelSpec = { family: 'llama', layers: 2, hidden: 48, heads: 4, kvHeads: 2, intermediate: 80, vocab: 64, seed: 12 };
export const LLAMA_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

/**
 * The stored-weight update kernel (onnxruntime, one intra-op thread) of the enclosing `describe` (or file), disposed
 * after its last test. Call it before suiteTempDir, so that it is disposed before the folder is removed.
 */
export function suiteUpdater(): StoredUpdateKernel {
  const updater = createStoredUpdateKernel({ intraOpThreads: 1 });
  after(() => updater.dispose());
  return updater;
}

/** The onnxruntime product backend (one intra-op thread) of the enclosing `describe` (or file), disposed as suiteUpdater's kernel is. */
export function suiteProductBackend(): OrtProductBackend {
  const backend = createOrtProductBackend({ intraOpThreads: 1 });
  after(() => backend.dispose());
  return backend;
}

export interface Fixture {
  readonly base: string;
  readonly adapters: string[];
}

/** Writes `<root>/base` and `<root>/clients/client-<i>` (3 clients, r = 4, alpha 8 unless overridden). */
export async function makeFixture(
  root: string,
  spec: SyntheticModelSpec,
  targets: readonly string[],
  adapter: Partial<SyntheticAdapterOptions> = {},
): Promise<Fixture> {
  const base = join(root, 'base');
  await writeSyntheticCheckpoint(base, spec);
  const adapters = await writeSyntheticAdapters(join(root, 'clients'), spec, {
    clients: 3,
    rank: 4,
    alpha: 8,
    targetModules: targets,
    bStd: 0.05,
    seed: 21,
    ...adapter,
  });
  return { base, adapters };
}

/** Name, dtype and shape of every tensor in file order, plus the metadata. */
export async function layoutOf(file: string): Promise<{ tensors: { name: string; dtype: string; shape: number[] }[]; metadata: Record<string, string> }> {
  const reader = await openSafetensors(file);
  try {
    return { tensors: [...reader.tensors.values()].map((t) => ({ name: t.name, dtype: t.dtype, shape: [...t.shape] })), metadata: { ...reader.metadata } };
  } finally {
    await reader.close();
  }
}

/**
 * Checks that `outFile` holds the same tensors as `inFile` in the same order and shapes, the same
 * metadata, dtypes unchanged except adapted tensors (which get `adaptedDtype` when given), and that
 * every tensor not in `adapted` is byte-identical. Returns how many tensors were compared bytewise.
 */
export async function assertStructurePreserved(inFile: string, outFile: string, adapted: ReadonlySet<string>, adaptedDtype?: string): Promise<number> {
  const before = await layoutOf(inFile);
  const after = await layoutOf(outFile);
  assert.deepEqual(after.metadata, before.metadata, 'metadata preserved');
  assert.deepEqual(after.tensors.map((t) => t.name), before.tensors.map((t) => t.name), 'tensor names and order preserved');
  for (const [i, t] of before.tensors.entries()) {
    assert.deepEqual(after.tensors[i].shape, t.shape, `shape of ${t.name}`);
    const want = adapted.has(t.name) && adaptedDtype !== undefined ? adaptedDtype : t.dtype;
    assert.equal(after.tensors[i].dtype, want, `dtype of ${t.name}`);
  }
  const a = await openSafetensors(inFile);
  const b = await openSafetensors(outFile);
  let compared = 0;
  try {
    for (const t of before.tensors) {
      if (adapted.has(t.name)) continue;
      assert.ok(Buffer.from(await b.readRaw(t.name)).equals(Buffer.from(await a.readRaw(t.name))), `unadapted tensor '${t.name}' is byte-identical`);
      compared++;
    }
  } finally {
    await a.close();
    await b.close();
  }
  return compared;
}

/** File names of the three shards `shardCheckpoint` writes. */
export const SHARDS = ['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors'];

/**
 * Splits `<fx.base>/model.safetensors` into three shards (tensors in file order, dealt in runs) in
 * `dir`, with config.json and an index as transformers writes them. Returns the weight_map.
 */
export async function shardCheckpoint(fx: Fixture, dir: string): Promise<Record<string, string>> {
  await mkdir(dir, { recursive: true });
  const reader = await openSafetensors(join(fx.base, 'model.safetensors'));
  const names = [...reader.tensors.keys()];
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  const per = Math.ceil(names.length / SHARDS.length);
  for (const [i, file] of SHARDS.entries()) {
    const part = new Map<string, TensorToWrite>();
    for (const name of names.slice(i * per, (i + 1) * per)) {
      const info = reader.info(name);
      part.set(name, { dtype: info.dtype, shape: info.shape, data: await reader.readRaw(name) });
      weightMap[name] = file;
      totalSize += info.byteLength;
    }
    await writeSafetensors(join(dir, file), part, { format: 'pt' });
  }
  await reader.close();
  await writeFile(join(dir, 'config.json'), await readFile(join(fx.base, 'config.json')));
  await writeFile(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2));
  return weightMap;
}
