// `fedex train --memory-budget <GB>`: documented in --help, parsed as decimal GB (bad values are
// usage errors naming the flag), a batch too large for the budget trains as micro-batches with one
// line saying so, and a budget too small for one row stops before training with the figures.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { suiteTempDir } from '../helpers/tempDir.js';
import { cli } from '../helpers/cliRun.js';

const FLAGS = ['--data', 'task:arith?count=128&evalCount=8', '--steps', '1', '--batch-size', '64', '--seq-len', '128', '--threads', '1', '--eval-examples', '0'];

describe('fedex train --memory-budget', { timeout: 60_000 }, () => {
  const tmp = suiteTempDir('cli-memory-budget');

  test('--help documents the flag and its default', async () => {
    const { code, stdout } = await cli('train', '--help');

    assert.equal(code, 0);
    assert.match(stdout, /--memory-budget <GB> +memory \(decimal GB\) a training step and evaluation may use: .*\(default: 60 % of the available memory\)/);
  });

  test('values that are not a positive number of GB are usage errors', async () => {
    for (const bad of ['abc', '0', '-1']) {
      const { code, stderr } = await cli('train', ...FLAGS, '--out', join(tmp.path, 'never'), `--memory-budget=${bad}`);
      assert.equal(code, 2, bad);
      assert.match(stderr, new RegExp(`fedex train: --memory-budget must be a number ≥ 0\\.001.*got '${bad}'`));
    }
    assert.ok(!existsSync(join(tmp.path, 'never')));
  });

  test('batch 64 under a 0.3 GB budget trains as micro-batches and says so in one line', async () => {
    const out = join(tmp.path, 'split');

    const { code, stderr } = await cli('train', ...FLAGS, '--out', out, '--memory-budget', '0.3');

    assert.equal(code, 0, stderr);
    assert.match(stderr, /^fedex train: batch 64 does not fit the 300 MB budget at seq-len 128: running \d+ micro-batches of (up to )?\d+ per step$/m);
    assert.ok(existsSync(join(out, 'adapter_model.safetensors')));
  });

  test('a budget below one row stops before training: exit 1, the estimate, the budget and what to lower', async () => {
    const out = join(tmp.path, 'too-small');

    const { code, stderr } = await cli('train', ...FLAGS, '--out', out, '--memory-budget', '0.05');

    assert.equal(code, 1);
    assert.match(stderr, /^fedex train: \[MEMORY_BUDGET\] trainer: one training step at batch 1, seq-len 128, with activation recomputation, needs about \d+ MB .* more than the memory budget of 50 MB .*--seq-len.*--memory-budget/);
    assert.ok(!existsSync(join(out, 'adapter_model.safetensors')));
  });
});
