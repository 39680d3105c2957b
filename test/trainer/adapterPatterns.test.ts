// The trainer with a PEFT adapter's per-module settings (rank_pattern, alpha_pattern, use_rslora,
// layers_to_transform + layers_pattern) on a 3-layer Llama folder: the settings read from the
// adapter's config, each module's factors at its own rank (fresh ones initialised as PEFT does), the
// adapter written back with the same per-module configuration and read back bit for bit, and an
// adapter whose scaling disagrees with the trainer's refused by name.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createRng, fillGaussian } from '../../src/core/random.js';
import { parseLoraConfig } from '../../src/formats/peftConfig.js';
import { loraSettingsOfAdapter, readAdapterFolder, writeAdapterFolder } from '../../src/trainer/adapterFolder.js';
import { InProcessTrainer } from '../../src/trainer/inProcessTrainer.js';
import { openModelSource } from '../../src/trainer/modelFolder.js';
import type { AdapterTensors } from '../../src/trainer/types.js';
import { suiteTempDir } from '../helpers/tempDir.js';
import { writeTinyLlamaFolder } from './peftPatterns.js';
import { adapterBytes, smallSetup } from './setups.js';

const CONFIG = {
  peft_type: 'LORA',
  r: 4,
  lora_alpha: 8,
  use_rslora: true,
  target_modules: ['q_proj', 'v_proj', 'down_proj'],
  task_type: 'CAUSAL_LM',
  rank_pattern: { 'layers.0.self_attn.q_proj': 2, down_proj: 3 },
  alpha_pattern: { v_proj: 5 },
  layers_to_transform: [0, 2],
  layers_pattern: 'layers',
};
/** Path → rank by PEFT's rules (layer 1 left out). */
const RANKS: [string, number][] = [0, 2].flatMap((l) =>
  [
    [`model.layers.${l}.self_attn.q_proj`, l === 0 ? 2 : 4],
    [`model.layers.${l}.self_attn.v_proj`, 4],
    [`model.layers.${l}.mlp.down_proj`, 3],
  ] as [string, number][]
);

function randomized(adapter: AdapterTensors, seed: number): AdapterTensors {
  const rng = createRng(seed);
  for (const f of adapter.modules.values()) {
    fillGaussian(f.a.data, rng);
    fillGaussian(f.b.data, rng);
  }
  return adapter;
}

describe('the trainer with per-module ranks, alphas and layers', () => {
  let trainer: InProcessTrainer;
  after(() => trainer?.dispose());
  const tmp = suiteTempDir('adapter-patterns');
  const lora = loraSettingsOfAdapter(parseLoraConfig(CONFIG, 'given/adapter_config.json'), 'given');
  before(async () => {
    const model = join(tmp.path, 'llama');
    await writeTinyLlamaFolder(model);
    trainer = await InProcessTrainer.create(smallSetup({ modelDir: model, data: 'task:arith?count=16&evalCount=8', lora }), await openModelSource(model));
  });

  test('fresh factors: each module at its own rank, A uniform within ±1/√in, B zero', () => {
    const adapter = trainer.initialAdapter(3);

    assert.deepEqual(trainer.info.modules.map((m) => m.path), RANKS.map(([p]) => p));
    for (const [path, rank] of RANKS) {
      const m = trainer.info.modules.find((x) => x.path === path)!;
      const f = adapter.modules.get(path)!;
      assert.deepEqual([f.a.shape, f.b.shape], [[rank, m.inFeatures], [m.outFeatures, rank]], path);
      const bound = 1 / Math.sqrt(m.inFeatures);
      assert.ok(f.a.data.every((x) => Math.abs(x) <= bound) && f.a.data.some((x) => Math.abs(x) > bound / 2), `${path}: A within ±${bound}`);
      assert.ok(f.b.data.every((x) => x === 0), `${path}: B is zero`);
    }
  });

  test('written with the same rank_pattern, alpha_pattern, use_rslora, layers_to_transform, layers_pattern; read back bit for bit', async () => {
    const dir = join(tmp.path, 'written');
    const adapter = randomized(trainer.initialAdapter(0), 9);

    await writeAdapterFolder(dir, adapter, { info: trainer.info });
    const written = JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    const back = await readAdapterFolder(dir, trainer.info, lora);

    for (const [key, value] of Object.entries(CONFIG)) assert.deepEqual(written[key], value, key);
    assert.ok(adapterBytes(back).equals(adapterBytes(adapter)));
  });

  test('an adapter whose alpha_pattern gives a module another scaling than the trainer uses is refused, naming the module and both scalings', async () => {
    const dir = join(tmp.path, 'other-alpha');
    await writeAdapterFolder(dir, randomized(trainer.initialAdapter(0), 4), { info: trainer.info });
    const other = { ...lora, alphaPattern: { v_proj: 6 } };

    await assert.rejects(readAdapterFolder(dir, trainer.info, other), /module 'model\.layers\.0\.self_attn\.v_proj' has scaling 2\.5 \(alpha 5, rank 4\), the trainer uses 3 \(alpha 6\) for it/);
  });
});
