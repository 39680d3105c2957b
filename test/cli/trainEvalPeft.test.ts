// PEFT round trips through `fedex train` and `fedex eval` on the shipped tiny GPT-2 (sequence
// classification): a classification adapter with PEFT's own modules_to_save (["classifier", "score"])
// evaluates to exactly what training measured; `train --adapter DIR` takes the adapter's r,
// lora_alpha and target_modules and refuses flags that contradict them, naming both; `eval` on a
// model with fewer positions than its default --seq-len uses the model's limit and says so.
import assert from 'node:assert/strict';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openSafetensors } from '../../src/formats/safetensors.js';
import { writeSafetensors } from '../../src/formats/safetensorsWriter.js';
import type { TensorToWrite } from '../../src/formats/safetensorsWriter.js';
import { suiteTempDir } from '../helpers/tempDir.js';
import { cli } from '../helpers/cliRun.js';

const SHIPPED_MODEL = fileURLToPath(new URL('../../models/tiny-gpt2', import.meta.url));
const DATA = 'task:sentiment?count=64&evalCount=32&seed=1';
const COMMON = ['--data', DATA, '--batch-size', '16', '--seq-len', '32', '--threads', '1', '--seed', '1'];

/** The shipped model with its position table cut to `positions` rows (n_positions / n_ctx to match). */
async function shortModel(dir: string, positions: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  const config = JSON.parse(await readFile(join(SHIPPED_MODEL, 'config.json'), 'utf8')) as Record<string, unknown>;
  await writeFile(join(dir, 'config.json'), JSON.stringify({ ...config, n_positions: positions, n_ctx: positions }));
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) await copyFile(join(SHIPPED_MODEL, f), join(dir, f));
  const reader = await openSafetensors(join(SHIPPED_MODEL, 'model.safetensors'));
  const tensors = new Map<string, TensorToWrite>();
  try {
    for (const info of reader.tensors.values()) {
      const t = await reader.readTensor(info.name);
      const cut = info.name === 'wpe.weight' ? { shape: [positions, t.shape[1]], data: t.data.slice(0, positions * t.shape[1]) } : t;
      tensors.set(info.name, { dtype: 'F32', shape: cut.shape, data: cut.data });
    }
  } finally {
    await reader.close();
  }
  await writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
}

describe('fedex train / eval: PEFT round trips', { timeout: 120_000 }, () => {
  const tmp = suiteTempDir('cli-peft');
  let adapter: string;
  let trained: { code: number; stdout: string; stderr: string };
  before(async () => {
    adapter = join(tmp.path, 'adapter');
    trained = await cli('train', ...COMMON, '--steps', '6', '--lr', '0.01', '--rank', '4', '--alpha', '8', '--eval-examples', '32', '--out', adapter);
  });

  test('eval --adapter takes a classification adapter with PEFT\'s modules_to_save ["classifier", "score"] and gives train\'s own evaluation', async () => {
    assert.equal(trained.code, 0, trained.stderr);
    const configFile = join(adapter, 'adapter_config.json');
    // What PEFT writes for SEQ_CLS (and what fedex now writes itself).
    const config = JSON.parse(await readFile(configFile, 'utf8')) as Record<string, unknown>;
    await writeFile(configFile, JSON.stringify({ ...config, modules_to_save: ['classifier', 'score'] }, null, 2));
    const metrics = (await readFile(join(adapter, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const trainEval = metrics.find((l) => l.type === 'eval') as { loss: number; accuracy: number };

    const evaluated = await cli('eval', '--data', DATA, '--max-examples', '32', '--seq-len', '32', '--threads', '1', '--adapter', adapter, '--json');

    assert.equal(evaluated.code, 0, evaluated.stderr);
    const result = JSON.parse(evaluated.stdout) as { loss: number; accuracy: number };
    assert.ok(Math.abs(result.loss - trainEval.loss) < 1e-5, `eval ${result.loss} vs train ${trainEval.loss}`);
    assert.equal(result.accuracy, trainEval.accuracy);
  });

  test("train --adapter DIR without --rank/--alpha/--target-modules continues with the adapter's r 4, lora_alpha 8, target_modules", async () => {
    const out = join(tmp.path, 'continued');

    const run = await cli('train', ...COMMON, '--steps', '2', '--eval-examples', '0', '--adapter', adapter, '--out', out);

    assert.equal(run.code, 0, run.stderr);
    const config = JSON.parse(await readFile(join(out, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual([config.r, config.lora_alpha, config.target_modules], [4, 8, ['c_attn']]);
  });

  test('train --adapter refuses a flag that contradicts the adapter, naming the flag and the adapter value', async () => {
    const run = await cli('train', ...COMMON, '--steps', '1', '--rank', '8', '--alpha', '8', '--adapter', adapter, '--out', join(tmp.path, 'never'));

    assert.equal(run.code, 1);
    assert.match(run.stderr, /fedex train: --adapter: --rank 8 contradicts r = 4 in .*adapter_config\.json; leave it out to use the adapter's own settings/);
  });

  test('eval on a model with 48 positions (fewer than the default --seq-len 64) uses 48 and says so', async () => {
    const model = join(tmp.path, 'short-model');
    await shortModel(model, 48);

    const run = await cli('eval', '--model', model, '--data', DATA, '--max-examples', '8', '--threads', '1', '--no-exact-match');

    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /fedex eval: --seq-len 48: the model takes at most 48 positions \(n_positions\), fewer than the default 64/);
    assert.match(run.stdout, /^loss \d+\.\d{4}, /);
  });
});
