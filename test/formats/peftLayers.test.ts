// PEFT's layers_to_transform in adapter folders: a folder whose modules are all in the listed layers
// is read and written back with the field; a module outside them is refused (PEFT would not create
// it, so its factors would be silently ignored on load).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FormatError } from '../../src/formats/errors.js';
import { readPeftAdapter, writePeftAdapter } from '../../src/formats/peft.js';
import type { LoraModuleInput } from '../../src/formats/peft.js';
import { suiteTempDir } from '../helpers/tempDir.js';

function module(path: string): LoraModuleInput {
  return { modulePath: path, A: { shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) }, B: { shape: [3, 2], data: new Float32Array([6, 5, 4, 3, 2, 1]) } };
}

describe('layers_to_transform in adapter folders', () => {
  const tmp = suiteTempDir('peft-layers');

  test('modules in the listed layers are written and read back with layers_to_transform and layers_pattern', async () => {
    const dir = join(tmp.path, 'ok');

    await writePeftAdapter(dir, { config: { loraAlpha: 4, targetModules: ['q_proj'], layersToTransform: [1], layersPattern: 'layers' }, modules: [module('model.layers.1.self_attn.q_proj')] });
    const back = await readPeftAdapter(dir);

    const json = JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual([json.layers_to_transform, json.layers_pattern], [[1], 'layers']);
    assert.deepEqual(back.modules.map((m) => m.modulePath), ['model.layers.1.self_attn.q_proj']);
  });

  test('a module outside layers_to_transform is refused on writing, naming it', async () => {
    const write = writePeftAdapter(join(tmp.path, 'bad'), {
      config: { loraAlpha: 4, targetModules: ['q_proj'], layersToTransform: [1] },
      modules: [module('model.layers.0.self_attn.q_proj')],
    });

    await assert.rejects(write, (e: unknown) => e instanceof FormatError && e.code === 'PEFT_TARGET_MISMATCH' && /module 'model\.layers\.0\.self_attn\.q_proj' is not matched/.test(e.message));
  });
});
