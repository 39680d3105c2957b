import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeSafetensors } from '../../src/formats/safetensorsWriter.js';
import type { TensorToWrite } from '../../src/formats/safetensorsWriter.js';
import { loadCheckpoint, withCheckpoint } from '../../src/model/checkpoint.js';
import { suiteTempDir } from '../helpers/tempDir.js';
import { isModelError } from './modelErrors.js';

const CONFIG = { model_type: 'gpt2', n_embd: 4, n_head: 2, n_layer: 1, vocab_size: 3, n_positions: 8 };
// Values exactly representable in F16 and BF16, so every dtype reads back identically.
const VALUES = Float32Array.of(0.5, -1.25, 3, 0, 2, -0.375);

const tmp = suiteTempDir('checkpoint');

async function folder(name: string, files: Record<string, Map<string, TensorToWrite> | string>, config: object = CONFIG): Promise<string> {
  const dir = join(tmp.path, name);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify(config));
  for (const [file, content] of Object.entries(files)) {
    if (typeof content === 'string') await writeFile(join(dir, file), content);
    else await writeSafetensors(join(dir, file), content);
  }
  return dir;
}

describe('loadCheckpoint: single file, dtypes, prefixes', () => {
  for (const dtype of ['F32', 'F16', 'BF16'] as const) {
    test(`${dtype} tensors read back as float32 with their shapes; config and model_type exposed`, async () => {
      const dir = await folder(`single-${dtype}`, {
        'model.safetensors': new Map([
          ['h.0.attn.c_attn.weight', { dtype, shape: [2, 3], data: VALUES }],
          ['wte.weight', { dtype, shape: [3, 2], data: VALUES.map((v) => -v) }],
        ]),
      });
      await withCheckpoint(dir, async (ckpt) => {
        assert.equal(ckpt.modelType, 'gpt2');
        assert.equal(ckpt.config.n_embd, 4);
        assert.equal(ckpt.hfConfig.hiddenSize, 4);
        assert.deepEqual(ckpt.tensors.get('h.0.attn.c_attn.weight'), [2, 3]);
        assert.equal(ckpt.info('wte.weight').dtype, dtype);
        assert.deepEqual(await ckpt.readFloat32('h.0.attn.c_attn.weight'), VALUES);
        assert.deepEqual(await ckpt.readFloat32('wte.weight'), VALUES.map((v) => -v));
        assert.equal(ckpt.tokenizerPath, undefined);
      });
    });
  }

  test('keys resolve with or without the transformer./model. prefix, both ways', async () => {
    const dir = await folder('prefixes', {
      'model.safetensors': new Map([
        ['h.0.ln_1.weight', { dtype: 'F32' as const, shape: [6], data: VALUES }],
        ['transformer.wte.weight', { dtype: 'F32' as const, shape: [6], data: VALUES.map((v) => v * 2) }],
      ]),
      'tokenizer.json': '{}',
    });
    const ckpt = await loadCheckpoint(dir);
    try {
      assert.equal(ckpt.resolveKey('transformer.h.0.ln_1.weight'), 'h.0.ln_1.weight');
      assert.equal(ckpt.resolveKey('wte.weight'), 'transformer.wte.weight');
      assert.equal(ckpt.resolveKey('base_model.model.transformer.wte.weight'), 'transformer.wte.weight');
      assert.deepEqual(await ckpt.readFloat32('transformer.h.0.ln_1.weight'), VALUES);
      assert.deepEqual(await ckpt.readFloat32('wte.weight'), VALUES.map((v) => v * 2));
      assert.equal(ckpt.tokenizerPath, join(dir, 'tokenizer.json'));
    } finally {
      await ckpt.close();
    }
  });

  test('a missing tensor is TENSOR_NOT_FOUND naming the file, the key and close keys', async () => {
    const dir = await folder('missing-tensor', { 'model.safetensors': new Map([['h.0.ln_1.weight', { dtype: 'F32' as const, shape: [6], data: VALUES }]]) });
    await withCheckpoint(dir, async (ckpt) => {
      await assert.rejects(ckpt.readFloat32('h.1.ln_1.weight'), isModelError('TENSOR_NOT_FOUND', /model\.safetensors/, /'h\.1\.ln_1\.weight'/, /close keys: 'h\.0\.ln_1\.weight'/));
    });
  });
});

describe('loadCheckpoint: sharded index', () => {
  test('weight_map key → shard: shapes of all shards, each tensor read from its shard', async () => {
    const dir = await folder('sharded', {
      'model-00001-of-00002.safetensors': new Map([['wte.weight', { dtype: 'BF16' as const, shape: [3, 2], data: VALUES }]]),
      'model-00002-of-00002.safetensors': new Map([
        ['h.0.attn.c_attn.weight', { dtype: 'F16' as const, shape: [6], data: VALUES.map((v) => v + 1) }],
        ['ln_f.bias', { dtype: 'F32' as const, shape: [2], data: Float32Array.of(7, 8) }],
      ]),
      'model.safetensors.index.json': JSON.stringify({
        metadata: { total_size: 40 },
        weight_map: {
          'wte.weight': 'model-00001-of-00002.safetensors',
          'h.0.attn.c_attn.weight': 'model-00002-of-00002.safetensors',
          'ln_f.bias': 'model-00002-of-00002.safetensors',
        },
      }),
    });
    await withCheckpoint(dir, async (ckpt) => {
      assert.deepEqual(ckpt.files, ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
      assert.deepEqual([...ckpt.tensors.keys()].sort(), ['h.0.attn.c_attn.weight', 'ln_f.bias', 'wte.weight']);
      assert.equal(ckpt.info('transformer.h.0.attn.c_attn.weight').file, 'model-00002-of-00002.safetensors');
      assert.deepEqual(await ckpt.readFloat32('wte.weight'), VALUES);
      assert.deepEqual(await ckpt.readFloat32('transformer.h.0.attn.c_attn.weight'), VALUES.map((v) => v + 1));
      assert.deepEqual(await ckpt.readFloat32('ln_f.bias'), Float32Array.of(7, 8));
      await assert.rejects(ckpt.readFloat32('h.0.mlp.c_fc.weight'), isModelError('TENSOR_NOT_FOUND', /model\.safetensors\.index\.json/, /h\.0\.mlp\.c_fc\.weight/));
    });
  });

  test('a shard the index names that is missing: CHECKPOINT_NOT_FOUND naming the shard', async () => {
    const dir = await folder('missing-shard', {
      'model.safetensors.index.json': JSON.stringify({ weight_map: { 'wte.weight': 'model-00001-of-00001.safetensors' } }),
    });
    await assert.rejects(loadCheckpoint(dir), isModelError('CHECKPOINT_NOT_FOUND', /model-00001-of-00001\.safetensors: missing/));
  });

  test('an index entry whose shard lacks the key, or that points outside the folder, is CHECKPOINT_INVALID_INDEX', async () => {
    const dir = await folder('wrong-shard', {
      'a.safetensors': new Map([['wte.weight', { dtype: 'F32' as const, shape: [1], data: Float32Array.of(1) }]]),
      'model.safetensors.index.json': JSON.stringify({ weight_map: { 'wte.weight': 'a.safetensors', 'ln_f.bias': 'a.safetensors' } }),
    });
    await assert.rejects(loadCheckpoint(dir), isModelError('CHECKPOINT_INVALID_INDEX', /maps 'ln_f\.bias' to a\.safetensors, which does not hold it/));
    const evil = await folder('evil-index', { 'model.safetensors.index.json': JSON.stringify({ weight_map: { x: '../x.safetensors' } }) });
    await assert.rejects(loadCheckpoint(evil), isModelError('CHECKPOINT_INVALID_INDEX', /must name a file in the same folder/));
  });
});

describe('loadCheckpoint: folders it cannot use', () => {
  test('a missing folder, or one without config.json, is CHECKPOINT_NOT_FOUND naming the path', async () => {
    await assert.rejects(loadCheckpoint(join(tmp.path, 'nope')), isModelError('CHECKPOINT_NOT_FOUND', /nope: no such model folder/));
    const dir = join(tmp.path, 'no-config');
    await mkdir(dir);
    await assert.rejects(loadCheckpoint(dir), isModelError('CHECKPOINT_NOT_FOUND', /no-config\/config\.json: missing/));
  });

  test('PyTorch .bin weights only: CHECKPOINT_NOT_SAFETENSORS telling to convert', async () => {
    const dir = await folder('bin-only', { 'pytorch_model.bin': 'not really a pickle' });
    await assert.rejects(loadCheckpoint(dir), isModelError('CHECKPOINT_NOT_SAFETENSORS', /pytorch_model\.bin/, /convert to safetensors/));
  });

  test('config.json without weights is CHECKPOINT_NOT_FOUND naming both file names', async () => {
    const dir = await folder('no-weights', {});
    await assert.rejects(loadCheckpoint(dir), isModelError('CHECKPOINT_NOT_FOUND', /no model\.safetensors or model\.safetensors\.index\.json/));
  });
});
