// LoRA-SB in the trainer (LoraSettings.loraSb; core/loraSb.ts): only R is trained — the returned A
// and B are the start's bit for bit, R moves — and the model it evaluates is the plain LoRA model
// with the standard factors (A, B·R) (same eval loss to float32 round-off). An adapter without R for
// an SB trainer, or with R for a plain one, is refused rather than silently dropped.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { join } from 'node:path';
import { effectiveFactors } from '../../src/core/loraSb.js';
import { createTrainer } from '../../src/trainer/loraTrainer.js';
import { defaultLoraSettings } from '../../src/trainer/setup.js';
import type { AdapterTensors } from '../../src/trainer/types.js';
import { makeTempDir } from '../helpers/tempDir.js';
import { writeTinyGpt2Folder } from './fixtures.js';
import { smallSetup } from './setups.js';

describe('LoRA-SB trainer (tiny GPT-2, Conv1D c_attn, AdamW)', () => {
  const data = 'task:arith?count=64&evalCount=16';

  test('trains R only; its model is the plain LoRA model (A, B·R); mismatched adapters are refused', async () => {
    const tmp = await makeTempDir('lora-sb-trainer');
    const modelDir = join(tmp.path, 'model');
    await writeTinyGpt2Folder(modelDir);
    const setup = (loraSb: boolean): ReturnType<typeof smallSetup> => smallSetup({ modelDir, data, lora: defaultLoraSettings({ r: 3, alpha: 6, targetModules: ['c_attn'], ...(loraSb ? { loraSb } : {}) }), seed: 2, batchSize: 8, lr: 0.3 });
    const sb = await createTrainer(setup(true), { worker: false });
    const plain = await createTrainer(setup(false), { worker: false });
    try {
      assert.ok(sb.modules.length > 0 && sb.modules.every((m) => m.rInput === `${m.path}.lora_R`));
      const start = sb.initialAdapter(2);
      for (const f of start.modules.values()) assert.ok(f.r !== undefined && f.r.data.every((v) => v === 0), 'R starts at 0');

      const outcome = await sb.train({ adapter: start }, { steps: 10 });

      for (const [path, f] of outcome.adapter.modules) {
        const s = start.modules.get(path)!;
        assert.deepEqual(f.a.data, s.a.data, `${path}: A frozen`);
        assert.deepEqual(f.b.data, s.b.data, `${path}: B frozen`);
        assert.ok(f.r!.data.some((v) => v !== 0), `${path}: R trained`);
      }
      const viaSb = await sb.evaluate({ adapter: outcome.adapter });
      const standard: AdapterTensors = { modules: new Map([...outcome.adapter.modules].map(([k, f]) => [k, effectiveFactors(f)])), ...(outcome.adapter.saved !== undefined ? { saved: outcome.adapter.saved } : {}) };
      const viaPlain = await plain.evaluate({ adapter: standard });
      const untrained = await sb.evaluate({ adapter: start });
      assert.ok(Math.abs(viaSb.loss - viaPlain.loss) <= 1e-5 * viaPlain.loss, `LoRA-SB ${viaSb.loss} vs plain (A, B·R) ${viaPlain.loss}`);
      assert.ok(Math.abs(viaSb.loss - untrained.loss) > 1e-3 * untrained.loss, `training moved the loss (${untrained.loss} → ${viaSb.loss})`);

      await assert.rejects(sb.evaluate({ adapter: standard }), /built for LoRA-SB \(Fed-SB\) and the adapter has no R/);
      await assert.rejects(plain.evaluate({ adapter: outcome.adapter }), /carries a LoRA-SB R but the trainer was built for plain LoRA/);
    } finally {
      await sb.dispose();
      await plain.dispose();
      await tmp.remove();
    }
  });
});
