// `fedex train|eval --base-precision fp32|fp16|bf16|int4` as real processes: bf16 training writes an
// adapter and reports the bytes held and the rounding; the plan (--plan --json) counts the frozen
// bytes of each precision; bad values and bf16 on webgpu are refused with the reason.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { spawnFedex } from '../helpers/fedexProcess.js';
import { suiteTempDir } from '../helpers/tempDir.js';

// models/tiny-gpt2: 393 216 parameters in matrices, 3 936 in vectors. int4: 4 bits a weight, and a
// float32 scale per block of 64 for c_fc (rows of 384: 3 × 96·384 weights) and of 32 for the rest (rows of 96, 288).
const MATRICES = 393_216;
const VECTORS = 3_936;
const C_FC = 3 * 96 * 384;
const INT4_BYTES = MATRICES / 2 + 4 * (C_FC / 64 + (MATRICES - C_FC) / 32);
const DATA = ['--data', 'task:arith?count=48&evalCount=8', '--threads', '1'];

describe('fedex train --base-precision (a fedex process)', { timeout: 120_000 }, () => {
  const tmp = suiteTempDir('cli-base-precision');

  test('bf16: trains, writes the adapter, reports what is held in bf16 and the rounding', async () => {
    const out = join(tmp.path, 'bf16');
    const { code, stdout, stderr } = await spawnFedex(['train', ...DATA, '--steps', '2', '--eval-examples', '8', '--base-precision', 'bf16', '--out', out, '--json']).done;
    assert.equal(code, 0, stderr);
    const summary = JSON.parse(stdout) as { base: { precision: string; held: Record<string, { parameters: number; bytes: number }>; relativeRounding: number } };
    assert.equal(summary.base.precision, 'bf16');
    assert.deepEqual(summary.base.held, { bf16: { parameters: MATRICES, bytes: 2 * MATRICES }, fp32: { parameters: VECTORS, bytes: 4 * VECTORS } });
    assert.ok(summary.base.relativeRounding > 0 && summary.base.relativeRounding < 2 ** -8, `bf16 rounding ${summary.base.relativeRounding}`);
    assert.match(stderr, /fedex train: frozen base held in bf16: .*relative rounding of the stored weights/);
    assert.ok(existsSync(join(out, 'adapter_model.safetensors')));
  });

  test('--plan --json: frozen bytes by precision, int4 against fp32', async () => {
    const plans: Record<string, { estimate: { inputParts: { frozenBytes: number; frozenByPrecision: Record<string, number> } } }> = {};
    for (const p of ['fp32', 'int4']) {
      const { code, stdout, stderr } = await spawnFedex(['train', '--plan', '--json', '--base-precision', p]).done;
      assert.equal(code, 0, stderr);
      plans[p] = JSON.parse(stdout) as typeof plans[string];
    }
    assert.deepEqual(plans.fp32.estimate.inputParts.frozenByPrecision, { fp32: 4 * (MATRICES + VECTORS) });
    assert.deepEqual(plans.int4.estimate.inputParts.frozenByPrecision, { fp32: 4 * VECTORS, int4: INT4_BYTES });
    const { stdout } = await spawnFedex(['train', '--plan', '--base-precision', 'int4']).done;
    assert.match(stdout, /frozen weights held in the session, int4 \(393\.2 k parameters\) +238\.8 kB/);
    assert.match(stdout, /frozen weights held in the session, fp32 \(3\.9 k parameters: vectors \(norms, biases\)\) +15\.7 kB/);
  });

  test('bad values and bf16 on webgpu are refused naming the flag and the reason', async () => {
    const bad = await spawnFedex(['train', ...DATA, '--steps', '1', '--base-precision', 'fp8', '--out', join(tmp.path, 'never')]).done;
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--base-precision must be one of fp32, fp16, bf16, int4.*got 'fp8'/);
    const gpu = await spawnFedex(['train', ...DATA, '--steps', '1', '--base-precision', 'bf16', '--device', 'webgpu', '--out', join(tmp.path, 'never')]).done;
    assert.notEqual(gpu.code, 0);
    assert.match(gpu.stderr, /basePrecision bf16 runs on the CPU only .*on webgpu use fp16 or int4/);
    assert.ok(!existsSync(join(tmp.path, 'never')));
  });

  test('fedex eval --base-precision int4 evaluates the base held in 4-bit blocks', async () => {
    const fp32 = await spawnFedex(['eval', '--data', 'task:arith?count=48&evalCount=8', '--max-examples', '8', '--no-exact-match', '--json']).done;
    const int4 = await spawnFedex(['eval', '--data', 'task:arith?count=48&evalCount=8', '--max-examples', '8', '--no-exact-match', '--json', '--base-precision', 'int4']).done;
    assert.equal(fp32.code, 0, fp32.stderr);
    assert.equal(int4.code, 0, int4.stderr);
    const [a, b] = [JSON.parse(fp32.stdout) as { loss: number }, JSON.parse(int4.stdout) as { loss: number }];
    assert.notEqual(a.loss, b.loss);
    assert.ok(Math.abs(a.loss - b.loss) < 0.25 * a.loss, `int4 eval loss ${b.loss} vs fp32 ${a.loss}`);
  });
});
