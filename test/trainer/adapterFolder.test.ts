// Trainer adapters ↔ PEFT adapter folders: a trained-shape adapter of the tiny test model (a
// Conv1D-layout and a Linear-layout module, non-square, plus the classification head as
// modules_to_save) written and read back bit for bit, the PEFT fields and tensor keys on disk, a
// GPT-2 (Conv1D only) adapter marked fan_in_fan_out, and clear refusals of adapters that do not fit.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { LoraFactors } from '../../src/core/lora.js';
import { createRng, fillGaussian } from '../../src/core/random.js';
import { openSafetensors } from '../../src/formats/safetensors.js';
import type { AdaptedModule } from '../../src/model/types.js';
import { readAdapterFolder, writeAdapterFolder } from '../../src/trainer/adapterFolder.js';
import { InProcessTrainer } from '../../src/trainer/inProcessTrainer.js';
import { defaultLoraSettings } from '../../src/trainer/setup.js';
import type { AdapterTensors, TrainerInfo } from '../../src/trainer/types.js';
import { suiteTempDir } from '../helpers/tempDir.js';
import { tinySource } from './fixtures.js';
import { adapterBytes, smallSetup } from './setups.js';

/** Every tensor of the adapter filled with distinct random values (B is zero at init, which would hide a swap). */
function randomized(adapter: AdapterTensors, seed: number): AdapterTensors {
  const rng = createRng(seed);
  for (const f of adapter.modules.values()) {
    fillGaussian(f.a.data, rng);
    fillGaussian(f.b.data, rng);
  }
  for (const v of adapter.saved?.values() ?? []) fillGaussian(v, rng);
  return adapter;
}

describe('adapter folders (PEFT)', () => {
  let trainer: InProcessTrainer;
  after(() => trainer.dispose());
  const tmp = suiteTempDir('adapter-folder');
  before(async () => {
    trainer = await InProcessTrainer.create(smallSetup({ lora: defaultLoraSettings({ r: 3, alpha: 12 }) }), tinySource({ D: 8, H: 12 }));
  });

  test('write then read gives back every factor and the saved head bit for bit', async () => {
    const dir = join(tmp.path, 'round-trip');
    const adapter = randomized(trainer.initialAdapter(0), 5);

    await writeAdapterFolder(dir, adapter, { info: trainer.info, baseModel: 'tiny-test' });
    const back = await readAdapterFolder(dir, trainer.info, 3);

    assert.deepEqual([...back.modules.keys()].sort(), ['model.fc', 'model.out']);
    for (const [path, f] of adapter.modules) {
      assert.deepEqual(back.modules.get(path)!.a.shape, f.a.shape, `${path} A shape`);
      assert.deepEqual(back.modules.get(path)!.b.shape, f.b.shape, `${path} B shape`);
    }
    assert.deepEqual([...(back.saved?.keys() ?? [])], ['score.weight']);
    assert.ok(adapterBytes(back).equals(adapterBytes(adapter)));
  });

  test('the folder is what PEFT reads: adapter_config.json fields and base_model.model.* tensor keys', async () => {
    const dir = join(tmp.path, 'fields');
    const adapter = randomized(trainer.initialAdapter(0), 6);

    await writeAdapterFolder(dir, adapter, { info: trainer.info, baseModel: 'tiny-test' });

    const config = JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(config.peft_type, 'LORA');
    assert.equal(config.r, 3);
    assert.equal(config.lora_alpha, 12);
    assert.deepEqual(config.target_modules, ['fc', 'out']);
    assert.equal(config.task_type, 'SEQ_CLS');
    assert.deepEqual(config.modules_to_save, ['classifier', 'score'], 'as PEFT writes it for SEQ_CLS');
    assert.equal(config.fan_in_fan_out, false, 'one module is Linear-layout');
    assert.equal(config.base_model_name_or_path, 'tiny-test');
    const reader = await openSafetensors(join(dir, 'adapter_model.safetensors'));
    try {
      assert.deepEqual([...reader.tensors.keys()].sort(), [
        'base_model.model.model.fc.lora_A.weight',
        'base_model.model.model.fc.lora_B.weight',
        'base_model.model.model.out.lora_A.weight',
        'base_model.model.model.out.lora_B.weight',
        'base_model.model.score.weight',
      ]);
      assert.deepEqual(reader.tensors.get('base_model.model.model.fc.lora_A.weight')!.shape, [3, 8]);
      assert.deepEqual(reader.tensors.get('base_model.model.model.fc.lora_B.weight')!.shape, [12, 3]);
      assert.deepEqual(await reader.readFloat32('base_model.model.model.out.lora_B.weight'), adapter.modules.get('model.out')!.b.data);
    } finally {
      await reader.close();
    }
  });

  test('an adapter of Conv1D modules only (GPT-2) is written with fan_in_fan_out and task CAUSAL_LM', async () => {
    const dir = join(tmp.path, 'gpt2');
    const module: AdaptedModule = {
      path: 'transformer.h.0.attn.c_attn',
      baseKey: 'transformer.h.0.attn.c_attn.weight',
      layout: 'conv1d',
      inFeatures: 16,
      outFeatures: 48,
      aInput: 'a',
      bInput: 'b',
    };
    const info: Pick<TrainerInfo, 'modules' | 'saved' | 'task' | 'lora'> = { modules: [module], saved: [], task: 'causal-lm', lora: defaultLoraSettings({ r: 2, alpha: 4, targetModules: ['c_attn'] }) };
    const factors: LoraFactors = { a: { shape: [2, 16], data: fillGaussian(new Float32Array(32), createRng(1)) }, b: { shape: [48, 2], data: fillGaussian(new Float32Array(96), createRng(2)) } };
    const adapter: AdapterTensors = { modules: new Map([[module.path, factors]]) };

    await writeAdapterFolder(dir, adapter, { info });
    const back = await readAdapterFolder(dir, info, 2);

    const config = JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(config.fan_in_fan_out, true);
    assert.equal(config.task_type, 'CAUSAL_LM');
    assert.equal(config.modules_to_save ?? null, null);
    assert.ok(adapterBytes(back).equals(adapterBytes(adapter)));
  });

  test('reading refuses a different rank, a missing module and an extra module, naming the module', async () => {
    const dir = join(tmp.path, 'refusals');
    await writeAdapterFolder(dir, randomized(trainer.initialAdapter(0), 7), { info: trainer.info });
    const fcOnly = { modules: trainer.info.modules.filter((m) => m.path === 'model.fc'), saved: [] };
    const plusOne = { modules: [...trainer.info.modules, { ...trainer.info.modules[0], path: 'model.extra' }], saved: [] };

    const wrongRank = (): Promise<AdapterTensors> => readAdapterFolder(dir, trainer.info, 4);
    const extraInFolder = (): Promise<AdapterTensors> => readAdapterFolder(dir, fcOnly, 3);
    const missingInFolder = (): Promise<AdapterTensors> => readAdapterFolder(dir, plusOne, 3);

    await assert.rejects(wrongRank, /module 'model\.fc' has rank 3, the trainer uses r = 4/);
    await assert.rejects(extraInFolder, /the adapter adapts modules this model configuration does not: model\.out/);
    await assert.rejects(missingInFolder, /the adapter has no factors for module 'model\.extra' \(it holds model\.fc, model\.out\); train with the same target modules/);
  });

  test('writing refuses an adapter that lacks a module or the saved head', async () => {
    const full = trainer.initialAdapter(0);
    const noOut: AdapterTensors = { modules: new Map([...full.modules].filter(([p]) => p !== 'model.out')), saved: full.saved! };
    const noHead: AdapterTensors = { modules: full.modules, saved: new Map() };

    await assert.rejects(writeAdapterFolder(join(tmp.path, 'w1'), noOut, { info: trainer.info }), /writeAdapterFolder: the adapter has no factors for module 'model\.out'/);
    await assert.rejects(writeAdapterFolder(join(tmp.path, 'w2'), noHead, { info: trainer.info }), /writeAdapterFolder: the adapter has no value for the saved tensor 'score\.weight'/);
  });
});
