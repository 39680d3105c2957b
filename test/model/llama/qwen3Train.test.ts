// `fedex train --model <dir> --data task:arith --steps 2` on a tiny Qwen3 folder written here
// (config.json with head_dim ≠ hidden/heads and q/k norms, BF16 model.safetensors, the test BPE
// tokenizer): the CLI loads it, trains PEFT's default qwen3 targets (q_proj, v_proj) and writes the
// adapter; the same folder labelled `llama` is refused naming the q/k norms.
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { writeSafetensors } from '../../../src/formats/safetensorsWriter.js';
import { saveBpeTokenizer } from '../../../src/trainer/data/bpeTrainer.js';
import { cli } from '../../helpers/cliRun.js';
import { suiteTempDir } from '../../helpers/tempDir.js';
import { taskTokenizerFiles } from '../../trainer/fixtures.js';
import { bf16Uniform, familyShapes } from './checkpoints.js';

function qwen3Config(vocab: number): Record<string, unknown> {
  return {
    architectures: ['Qwen3ForCausalLM'],
    model_type: 'qwen3',
    hidden_size: 32,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 16,
    intermediate_size: 48,
    vocab_size: vocab,
    max_position_embeddings: 128,
    rms_norm_eps: 1e-6,
    hidden_act: 'silu',
    rope_theta: 1000000,
    rope_scaling: null,
    tie_word_embeddings: true,
    attention_bias: false,
    use_sliding_window: false,
    sliding_window: null,
    max_window_layers: 2,
    torch_dtype: 'bfloat16',
  };
}

async function writeQwen3Folder(dir: string, modelType: string): Promise<void> {
  const files = taskTokenizerFiles();
  const config = qwen3Config(files.vocabSize);
  let seed = 1;
  const tensors = new Map([...familyShapes(config)].map(([k, shape]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = /norm\.weight$/.test(k) ? bf16Uniform(n, seed++, 0.9, 1.1) : bf16Uniform(n, seed++, -0.1, 0.1);
    return [k, { dtype: 'BF16' as const, shape, data }];
  }));
  await mkdir(dir, { recursive: true });
  await writeSafetensors(join(dir, 'model.safetensors'), tensors);
  await writeFile(join(dir, 'config.json'), JSON.stringify({ ...config, model_type: modelType }));
  await saveBpeTokenizer(dir, files);
}

describe('fedex train on a tiny Qwen3 checkpoint', { timeout: 120_000 }, () => {
  const tmp = suiteTempDir('qwen3-train');

  test('--data task:arith --steps 2: trains q_proj and v_proj of both layers and writes a PEFT adapter', async () => {
    const model = join(tmp.path, 'qwen3');
    const out = join(tmp.path, 'adapter');
    await writeQwen3Folder(model, 'qwen3');

    const { code, stdout, stderr } = await cli('train', '--model', model, '--data', 'task:arith?count=32&evalCount=4', '--steps', '2', '--batch-size', '4', '--seq-len', '32', '--threads', '1', '--seed', '1', '--out', out);

    assert.equal(code, 0, `${stderr}\n${stdout}`);
    assert.match(stdout, /^trained 2 steps \(8 examples, 4 LoRA modules\) in .*; train loss \d+\.\d{4}$/m);
    const adapter = JSON.parse(await readFile(join(out, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual([...(adapter.target_modules as string[])].sort(), ['q_proj', 'v_proj']);
  });

  test('the same folder labelled llama: exit 1, the q/k norm tensors named, model_type qwen3 suggested', async () => {
    const model = join(tmp.path, 'relabelled');
    await writeQwen3Folder(model, 'llama');

    const { code, stderr, stdout } = await cli('train', '--model', model, '--data', 'task:arith?count=32&evalCount=4', '--steps', '2', '--batch-size', '4', '--seq-len', '32', '--threads', '1', '--out', join(tmp.path, 'never'));

    assert.notEqual(code, 0, stdout);
    assert.match(stderr, /model\.layers\.0\.self_attn\.q_norm\.weight/);
    assert.match(stderr, /"model_type": "qwen3"/);
  });
});
