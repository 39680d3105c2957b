// Federation adapters as PEFT folders (the host's final adapter, join --out, simulate
// --save-adapters): adapter_config.json carries task_type, which AutoPeftModelForCausalLM (and
// PeftModel.from_pretrained's task class) needs; the federation trains causal LMs.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { Adapter } from '../../../src/core/lora.js';
import { adapterFields, writeFederationAdapter } from '../../../src/federation/shared/adapterFolders.js';
import type { AdapterLayout } from '../../../src/federation/protocol/adapterTensors.js';
import { readPeftAdapter } from '../../../src/formats/peft.js';
import { suiteTempDir } from '../../helpers/tempDir.js';

const LAYOUT: AdapterLayout = [{ module: 'model.layers.0.self_attn.q_proj', in: 4, out: 6, rank: 2 }];
const ADAPTER: Adapter = new Map([[LAYOUT[0].module, {
  a: { shape: [2, 4], data: Float32Array.from({ length: 8 }, (_, i) => i / 8) },
  b: { shape: [6, 2], data: Float32Array.from({ length: 12 }, (_, i) => 1 - i / 12) },
}]]);

describe('writeFederationAdapter', () => {
  const tmp = suiteTempDir('federation-adapter');

  test('writes task_type CAUSAL_LM so AutoPeftModelForCausalLM loads the folder', async () => {
    const dir = join(tmp.path, 'causal');

    await writeFederationAdapter(dir, ADAPTER, LAYOUT, adapterFields(LAYOUT, { rank: 2, alpha: 4, targetModules: ['q_proj'] }));

    const config = JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(config.task_type, 'CAUSAL_LM');
    assert.deepEqual([config.r, config.lora_alpha, config.target_modules], [2, 4, ['q_proj']]);
    assert.deepEqual((await readPeftAdapter(dir)).modules[0].B.data, ADAPTER.get(LAYOUT[0].module)!.b.data);
  });

  test('a caller that knows another task or the base model names them (AutoPeftModel loads the base from base_model_name_or_path)', async () => {
    const dir = join(tmp.path, 'seq-cls');

    await writeFederationAdapter(dir, ADAPTER, LAYOUT, { ...adapterFields(LAYOUT, { rank: 2, alpha: 4, targetModules: ['q_proj'] }), taskType: 'SEQ_CLS', baseModel: '/models/base' });

    const config = JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual([config.task_type, config.base_model_name_or_path], ['SEQ_CLS', '/models/base']);
  });
});
