// Full fine-tuning output (trainAll → writeFullModel): the trained tensors written back as a plain
// Hugging Face folder under the checkpoint's own keys; the folder reloads with the trained values
// and evaluates exactly as the trained weights did.
import assert from 'node:assert/strict';
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { openSafetensors } from '../../src/formats/safetensors.js';
import { writeFullModel } from '../../src/trainer/fullModel.js';
import { createTrainer } from '../../src/trainer/loraTrainer.js';
import { openModelSource } from '../../src/trainer/modelFolder.js';
import type { AdapterTensors } from '../../src/trainer/types.js';
import { suiteTinyGpt2Trainer } from './tinyTrainer.js';

describe('writeFullModel', () => {
  const tiny = suiteTinyGpt2Trainer('full-model', 'base', { data: 'task:arith?count=32&evalCount=8', seqLen: 64, trainAll: true, lr: 1e-2 }, { worker: false });
  let trained: AdapterTensors;
  before(async () => {
    trained = (await tiny.trainer.train({ adapter: tiny.trainer.initialAdapter(0) }, { steps: 3 })).adapter;
  });

  test('writes every trained tensor under its checkpoint key; the folder reloads with the trained values', async () => {
    const out = join(tiny.path, 'trained');
    await mkdir(out);
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) await copyFile(join(tiny.modelDir, f), join(out, f));

    await writeFullModel(out, trained, tiny.trainer.info, { recipe: 'test' });

    const original = await openModelSource(tiny.modelDir);
    const reloaded = await openModelSource(out);
    try {
      assert.ok(tiny.trainer.info.saved.length > 0);
      assert.deepEqual([...reloaded.tensors.keys()].sort(), tiny.trainer.info.saved.map((s) => s.key!).sort());
      let moved = 0;
      for (const s of tiny.trainer.info.saved) {
        assert.deepEqual(reloaded.tensors.get(s.key!), s.shape, `${s.key} shape`);
        assert.deepEqual(await reloaded.readFloat32(s.key!), trained.saved!.get(s.name), `${s.key} values`);
        assert.deepEqual(original.tensors.get(s.key!), s.shape, `${s.key} is a key of the base checkpoint`);
        const before = await original.readFloat32(s.key!);
        if (before.some((v, i) => v !== trained.saved!.get(s.name)![i])) moved++;
      }
      assert.ok(moved > 0, 'training changed some tensors');
    } finally {
      await original.close();
      await reloaded.close();
    }
    const reader = await openSafetensors(join(out, 'model.safetensors'));
    try {
      assert.deepEqual({ ...reader.metadata }, { format: 'pt', recipe: 'test' });
      assert.ok([...reader.tensors.values()].every((t) => t.dtype === 'F32'));
    } finally {
      await reader.close();
    }
  });

  test('the written folder evaluates exactly as the trained weights did', async () => {
    const out = join(tiny.path, 'trained-eval');
    await mkdir(out);
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) await copyFile(join(tiny.modelDir, f), join(out, f));
    await writeFullModel(out, trained, tiny.trainer.info);
    const expected = await tiny.trainer.evaluate({ adapter: trained }, { exactMatch: false });
    const base = await tiny.trainer.evaluate({ adapter: tiny.trainer.initialAdapter(0) }, { exactMatch: false });

    const reloaded = await createTrainer({ ...tiny.setup, modelDir: out, trainAll: false }, { worker: false });
    try {
      const got = await reloaded.evaluate({ adapter: reloaded.initialAdapter(0) }, { exactMatch: false });

      assert.ok(Math.abs(base.loss - expected.loss) > 1e-3, `training changed the loss (${base.loss} → ${expected.loss})`);
      assert.ok(Math.abs(got.loss - expected.loss) < 1e-5, `reloaded ${got.loss} vs trained ${expected.loss}`);
      assert.equal(got.scored, expected.scored);
    } finally {
      await reloaded.dispose();
    }
  });

  test('a trainer without fully trained tensors is refused', async () => {
    const info = { saved: [] };

    const write = writeFullModel(join(tiny.path, 'none'), trained, info);

    await assert.rejects(write, /writeFullModel: the trainer has no fully trained tensors \(was it built with trainAll\?\)/);
  });
});
