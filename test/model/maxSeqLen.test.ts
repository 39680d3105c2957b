// Architecture.maxSeqLen: the longest sequence each family's position table covers, read from the
// config.json a synthetic checkpoint writes (the trainer refuses a longer seqLen up front).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { writeSyntheticCheckpoint } from '../../src/model/checkpoints/synthetic.js';
import type { SyntheticModelSpec } from '../../src/model/checkpoints/synthetic.js';
import { architectureFor } from '../../src/model/registry.js';
import { suiteTempDir } from '../helpers/tempDir.js';

describe('Architecture.maxSeqLen', () => {
  const tmp = suiteTempDir('max-seq-len');

  async function maxSeqLen(name: string, spec: SyntheticModelSpec): Promise<{ value: number; key: string } | undefined> {
    const dir = join(tmp.path, name);
    await writeSyntheticCheckpoint(dir, spec);
    const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    return architectureFor(config).maxSeqLen?.(config);
  }

  test('GPT-2 n_positions, Llama max_position_embeddings, BERT its table, RoBERTa its table less pad_token_id + 1', async () => {
    const base = { layers: 1, hidden: 8, heads: 2, vocab: 16, positions: 48 };

    assert.deepEqual(await maxSeqLen('gpt2', { family: 'gpt2', ...base }), { value: 48, key: 'n_positions' });
    assert.deepEqual(await maxSeqLen('llama', { family: 'llama', ...base }), { value: 48, key: 'max_position_embeddings' });
    assert.deepEqual(await maxSeqLen('bert', { family: 'bert', ...base }), { value: 48, key: 'max_position_embeddings' });
    // RoBERTa's table has 48 + 2 rows; positions start at pad_token_id + 1 = 2.
    assert.deepEqual(await maxSeqLen('roberta', { family: 'bert', modelType: 'roberta', ...base }), { value: 48, key: 'max_position_embeddings − pad_token_id − 1' });
  });
});
