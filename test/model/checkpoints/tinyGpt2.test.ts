import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openSafetensors } from '../../../src/formats/safetensors.js';
import { loadCheckpoint, withCheckpoint } from '../../../src/model/checkpoint.js';
import { writeRandomGpt2Checkpoint } from '../../../src/model/checkpoints/tinyGpt2.js';
import { suiteTempDir } from '../../helpers/tempDir.js';

const tmp = suiteTempDir('tiny-gpt2');

const SPEC = { vocabSize: 300, nEmbd: 32, nLayer: 3, nHead: 4, nPositions: 64, seed: 9 };

function std(x: Float32Array): number {
  let s = 0;
  for (const v of x) s += v * v;
  return Math.sqrt(s / x.length);
}

describe('writeRandomGpt2Checkpoint', () => {
  test('writes an HF GPT-2 folder: hub key names, config keys, GPT-2 init statistics', async () => {
    const dir = join(tmp.path, 'f32');
    await writeRandomGpt2Checkpoint(dir, SPEC);
    const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(config.model_type, 'gpt2');
    assert.deepEqual([config.n_embd, config.n_layer, config.n_head, config.n_positions, config.vocab_size], [32, 3, 4, 64, 300]);
    assert.deepEqual(config.architectures, ['GPT2LMHeadModel']);
    assert.equal(config.activation_function, 'gelu_new');
    await withCheckpoint(dir, async (ckpt) => {
      assert.equal(ckpt.tensors.size, 2 + 12 * 3 + 2);
      assert.deepEqual(ckpt.tensors.get('h.0.attn.c_attn.weight'), [32, 96]);
      assert.deepEqual(ckpt.tensors.get('h.2.mlp.c_fc.weight'), [32, 128]);
      assert.ok(!ckpt.tensors.has('lm_head.weight'), 'lm_head is tied to wte and not stored');
      assert.ok(Math.abs(std(await ckpt.readFloat32('wte.weight')) / 0.02 - 1) < 0.05);
      assert.ok(Math.abs(std(await ckpt.readFloat32('h.1.attn.c_attn.weight')) / 0.02 - 1) < 0.05);
      // Residual projections: 0.02 / √(2·n_layer).
      assert.ok(Math.abs(std(await ckpt.readFloat32('h.1.mlp.c_proj.weight')) / (0.02 / Math.sqrt(6)) - 1) < 0.05);
      assert.ok((await ckpt.readFloat32('h.0.ln_1.weight')).every((v) => v === 1));
      assert.ok((await ckpt.readFloat32('h.0.attn.c_attn.bias')).every((v) => v === 0));
    });
    const reader = await openSafetensors(join(dir, 'model.safetensors'));
    assert.equal(reader.metadata.format, 'pt');
    await reader.close();
  });

  test('deterministic in the seed; BF16 storage is BF16 and config says bfloat16', async () => {
    const a = join(tmp.path, 'a');
    const b = join(tmp.path, 'b');
    const c = join(tmp.path, 'c');
    await writeRandomGpt2Checkpoint(a, SPEC);
    await writeRandomGpt2Checkpoint(b, SPEC);
    await writeRandomGpt2Checkpoint(c, { ...SPEC, seed: 10, dtype: 'BF16' });
    assert.deepEqual(await readFile(join(a, 'model.safetensors')), await readFile(join(b, 'model.safetensors')));
    const ckpt = await loadCheckpoint(c);
    try {
      assert.equal(ckpt.info('wte.weight').dtype, 'BF16');
      assert.equal(ckpt.config.torch_dtype, 'bfloat16');
    } finally {
      await ckpt.close();
    }
  });

  test('bad specs are refused naming the field', async () => {
    await assert.rejects(writeRandomGpt2Checkpoint(join(tmp.path, 'bad'), { ...SPEC, nHead: 5 }), /nEmbd 32 is not divisible by nHead 5/);
    await assert.rejects(writeRandomGpt2Checkpoint(join(tmp.path, 'bad'), { ...SPEC, nLayer: 0 }), /nLayer must be a positive integer, got 0/);
  });
});
