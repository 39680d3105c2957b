// PEFT round trips of trainer adapter folders: a RoBERTa classification head (classifier.dense,
// classifier.out_proj) is written with PEFT's module-level modules_to_save (["classifier", "score"],
// as PEFT itself writes for SEQ_CLS; listing classifier.dense makes PEFT raise KeyError on load) under
// the tensor keys PEFT saves; PEFT-written configs become trainer settings (the adapter's r, alpha,
// targets; PEFT's head names accepted; contradicting flags and unsupported fields refused by name);
// saved tensors the model does not use are refused rather than dropped.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { createRng, fillGaussian } from '../../src/core/random.js';
import { loraConfig } from '../../src/formats/peftConfig.js';
import { openSafetensors } from '../../src/formats/safetensors.js';
import type { AdaptedModule } from '../../src/model/types.js';
import { loraSettingsOfAdapter, readAdapterFolder, writeAdapterFolder } from '../../src/trainer/adapterFolder.js';
import { defaultLoraSettings } from '../../src/trainer/setup.js';
import type { AdapterTensors, SavedTensor, TrainerInfo } from '../../src/trainer/types.js';
import { suiteTempDir } from '../helpers/tempDir.js';

const D = 6;
const LABELS = 3;
const QUERY: AdaptedModule = {
  path: 'roberta.encoder.layer.0.attention.self.query',
  baseKey: 'roberta.encoder.layer.0.attention.self.query.weight',
  layout: 'linear',
  inFeatures: D,
  outFeatures: D,
  aInput: 'a',
  bInput: 'b',
};
const HEAD: SavedTensor[] = [
  { name: 'classifier.dense.weight', input: 'cdw', shape: [D, D] },
  { name: 'classifier.dense.bias', input: 'cdb', shape: [D] },
  { name: 'classifier.out_proj.weight', input: 'cow', shape: [LABELS, D] },
  { name: 'classifier.out_proj.bias', input: 'cob', shape: [LABELS] },
];
const INFO: Pick<TrainerInfo, 'modules' | 'saved' | 'task' | 'lora'> = {
  modules: [QUERY],
  saved: HEAD,
  task: 'sequence-classification',
  lora: defaultLoraSettings({ r: 2, alpha: 4, targetModules: ['query'] }),
};

function robertaAdapter(seed: number): AdapterTensors {
  const rng = createRng(seed);
  const g = (n: number): Float32Array => fillGaussian(new Float32Array(n), rng);
  return {
    modules: new Map([[QUERY.path, { a: { shape: [2, D], data: g(2 * D) }, b: { shape: [D, 2], data: g(D * 2) } }]]),
    saved: new Map(HEAD.map((s) => [s.name, g(s.shape.reduce((a, b) => a * b, 1))])),
  };
}

describe('trainer adapter folders: PEFT round trips', () => {
  const tmp = suiteTempDir('adapter-folder-peft');

  test('a RoBERTa head is written as PEFT writes it: modules_to_save ["classifier", "score"], keys base_model.model.classifier.dense.weight …', async () => {
    const dir = join(tmp.path, 'roberta');
    const adapter = robertaAdapter(1);

    await writeAdapterFolder(dir, adapter, { info: INFO });

    const config = JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(config.modules_to_save, ['classifier', 'score']);
    assert.equal(config.task_type, 'SEQ_CLS');
    const reader = await openSafetensors(join(dir, 'adapter_model.safetensors'));
    try {
      assert.deepEqual([...reader.tensors.keys()].filter((k) => !k.includes('lora_')).sort(), [
        'base_model.model.classifier.dense.bias',
        'base_model.model.classifier.dense.weight',
        'base_model.model.classifier.out_proj.bias',
        'base_model.model.classifier.out_proj.weight',
      ]);
    } finally {
      await reader.close();
    }
    const back = await readAdapterFolder(dir, INFO, 2);
    for (const s of HEAD) assert.deepEqual(back.saved?.get(s.name), adapter.saved!.get(s.name), s.name);
  });

  test("a PEFT SEQ_CLS config becomes trainer settings: PEFT's head names are left to the trainer's always-trained head", () => {
    const config = loraConfig({ r: 16, loraAlpha: 32, loraDropout: 0.1, targetModules: ['query', 'value'], taskType: 'SEQ_CLS', modulesToSave: ['classifier', 'score'] });

    const lora = loraSettingsOfAdapter(config, '/a');

    assert.deepEqual([lora.r, lora.alpha, lora.dropout, lora.useRslora], [16, 32, 0.1, false]);
    assert.deepEqual(lora.targetModules, ['query', 'value']);
    assert.deepEqual(lora.modulesToSave, [], 'classifier / score match no leaf module of the model; the head is trained anyway');
  });

  test("the adapter's own r, lora_alpha and target_modules are used; flags that agree pass, flags that contradict are named with the adapter's value", () => {
    const config = loraConfig({ r: 4, loraAlpha: 8, targetModules: ['c_attn'] });
    const names = { r: '--rank', alpha: '--alpha', targetModules: '--target-modules' };

    const agreeing = loraSettingsOfAdapter(config, '/a', { r: 4, alpha: 8, targetModules: ['c_attn'], dropout: 0.2 }, names);
    const rank = (): unknown => loraSettingsOfAdapter(config, '/a', { r: 8 }, names);
    const both = (): unknown => loraSettingsOfAdapter(config, '/a', { alpha: 16, targetModules: ['c_proj'] }, names);

    assert.deepEqual([agreeing.r, agreeing.alpha, agreeing.dropout], [4, 8, 0.2]);
    assert.throws(rank, /--rank 8 contradicts r = 4 in \/a\/adapter_config\.json; leave it out to use the adapter's own settings/);
    assert.throws(both, /--alpha 16 contradicts lora_alpha = 8; --target-modules \["c_proj"\] contradicts target_modules = \["c_attn"\] in \/a\/adapter_config\.json; leave them out/);
  });

  test('rank_pattern, alpha_pattern, layers_to_transform and layers_pattern are carried into the settings; with a regex target_modules layers_to_transform is refused as PEFT does', () => {
    const base = { r: 4, loraAlpha: 8, targetModules: ['c_attn'] };

    const settings = loraSettingsOfAdapter(loraConfig({ ...base, rankPattern: { 'h.0.attn.c_attn': 2 }, alphaPattern: { c_attn: 3 }, layersToTransform: [0, 1], layersPattern: 'h' }), '/a');
    const plain = loraSettingsOfAdapter(loraConfig(base), '/a');
    const regex = (): unknown => loraSettingsOfAdapter(loraConfig({ ...base, targetModules: '.*c_attn', layersToTransform: [0] }), '/a');

    assert.deepEqual([settings.rankPattern, settings.alphaPattern, settings.layersToTransform, settings.layersPattern], [{ 'h.0.attn.c_attn': 2 }, { c_attn: 3 }, [0, 1], 'h']);
    assert.deepEqual([plain.rankPattern, plain.alphaPattern, plain.layersToTransform], [undefined, undefined, undefined], 'a uniform adapter gives the uniform settings');
    assert.throws(regex, /layers_to_transform \[0\] with a regular-expression target_modules "\.\*c_attn": PEFT refuses the pair/);
  });

  test('a saved tensor the model has no place for is refused, not dropped', async () => {
    const dir = join(tmp.path, 'unused');
    await writeAdapterFolder(dir, robertaAdapter(2), { info: INFO });
    const noHead = { modules: [QUERY], saved: HEAD.slice(0, 2) };

    await assert.rejects(readAdapterFolder(dir, noHead, 2), /holds trained tensors this model does not use: classifier\.out_proj\.weight, classifier\.out_proj\.bias/);
  });
});
