import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FormatError } from '../../src/formats/errors.js';
import { parseHfConfig, readHfConfig } from '../../src/formats/hfConfig.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fedex-hfconfig-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

// Field values as in the hub's gpt2, a TinyLlama-style Llama, and roberta-base configs.
const GPT2 = {
  activation_function: 'gelu_new',
  architectures: ['GPT2LMHeadModel'],
  attn_pdrop: 0.1,
  layer_norm_epsilon: 1e-5,
  model_type: 'gpt2',
  n_ctx: 1024,
  n_embd: 768,
  n_head: 12,
  n_inner: null,
  n_layer: 12,
  n_positions: 1024,
  vocab_size: 50257,
};
const LLAMA = {
  architectures: ['LlamaForCausalLM'],
  hidden_act: 'silu',
  hidden_size: 2048,
  intermediate_size: 5632,
  max_position_embeddings: 2048,
  model_type: 'llama',
  num_attention_heads: 32,
  num_hidden_layers: 22,
  num_key_value_heads: 4,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  tie_word_embeddings: false,
  torch_dtype: 'bfloat16',
  vocab_size: 32000,
};
const ROBERTA = {
  architectures: ['RobertaForSequenceClassification'],
  hidden_act: 'gelu',
  hidden_size: 768,
  id2label: { 0: 'negative', 1: 'positive' },
  intermediate_size: 3072,
  layer_norm_eps: 1e-5,
  max_position_embeddings: 514,
  model_type: 'roberta',
  num_attention_heads: 12,
  num_hidden_layers: 12,
  type_vocab_size: 1,
  vocab_size: 50265,
};

async function configFile(name: string, content: string): Promise<string> {
  const folder = join(dir, name);
  await mkdir(folder, { recursive: true });
  await writeFile(join(folder, 'config.json'), content);
  return folder;
}

describe('readHfConfig', () => {
  test('GPT-2: n_* names, n_inner null → 4·n_embd, Conv1D family', async () => {
    const folder = await configFile('gpt2', JSON.stringify(GPT2));
    const c = await readHfConfig(folder);
    assert.equal(c.source, join(folder, 'config.json'));
    assert.equal(c.family, 'gpt2');
    assert.deepEqual(c.architectures, ['GPT2LMHeadModel']);
    assert.deepEqual(
      [c.hiddenSize, c.numLayers, c.numHeads, c.numKvHeads, c.headDim, c.intermediateSize, c.vocabSize, c.maxPositions],
      [768, 12, 12, 12, 64, 3072, 50257, 1024],
    );
    assert.equal(c.normEps, 1e-5);
    assert.equal(c.activation, 'gelu_new');
    assert.equal(c.tieWordEmbeddings, true);
    assert.equal(c.raw.attn_pdrop, 0.1);
  });

  test('Llama: grouped-query heads, RoPE base, dtype; the file path works as well as the folder', async () => {
    const folder = await configFile('llama', JSON.stringify(LLAMA));
    const c = await readHfConfig(join(folder, 'config.json'));
    assert.equal(c.family, 'llama');
    assert.deepEqual([c.hiddenSize, c.numHeads, c.numKvHeads, c.headDim, c.intermediateSize, c.numLayers], [2048, 32, 4, 64, 5632, 22]);
    assert.equal(c.ropeTheta, 10000);
    assert.equal(c.normEps, 1e-5);
    assert.equal(c.torchDtype, 'bfloat16');
    assert.equal(c.tieWordEmbeddings, false);
  });

  test('RoBERTa: BERT family, labels from id2label, token types', () => {
    const c = parseHfConfig(ROBERTA, 'roberta/config.json');
    assert.equal(c.family, 'bert');
    assert.equal(c.numLabels, 2);
    assert.equal(c.typeVocabSize, 1);
    assert.equal(c.maxPositions, 514);
    assert.equal(c.normEps, 1e-5);
  });

  test('a missing file is FILE_NOT_FOUND naming config.json', async () => {
    const folder = join(dir, 'empty');
    await mkdir(folder, { recursive: true });
    await assert.rejects(readHfConfig(folder), (e: unknown) => e instanceof FormatError && e.code === 'FILE_NOT_FOUND' && e.message.includes(join(folder, 'config.json')));
  });

  test('invalid JSON is CONFIG_INVALID_JSON naming the file', async () => {
    const folder = await configFile('broken', '{"model_type": "gpt2",');
    await assert.rejects(readHfConfig(folder), (e: unknown) => e instanceof FormatError && e.code === 'CONFIG_INVALID_JSON' && e.message.includes(join(folder, 'config.json')));
  });

  test('Gemma 2 / Gemma 3 text: Llama-family numbers, hidden_activation, tied unless said otherwise; multimodal gemma3 refused with the reason', () => {
    const gemma = {
      model_type: 'gemma3_text',
      hidden_size: 1152,
      num_hidden_layers: 26,
      num_attention_heads: 4,
      num_key_value_heads: 1,
      head_dim: 256,
      intermediate_size: 6912,
      vocab_size: 262144,
      max_position_embeddings: 32768,
      hidden_activation: 'gelu_pytorch_tanh',
    };
    const c = parseHfConfig(gemma, 'g/config.json');
    assert.deepEqual([c.family, c.headDim, c.activation, c.tieWordEmbeddings], ['llama', 256, 'gelu_pytorch_tanh', true]);
    assert.equal(parseHfConfig({ ...gemma, model_type: 'gemma2', tie_word_embeddings: false }, 'g/config.json').tieWordEmbeddings, false);
    assert.equal(parseHfConfig({ ...LLAMA, tie_word_embeddings: undefined }, 'l/config.json').tieWordEmbeddings, false);
    assert.throws(() => parseHfConfig({ model_type: 'gemma3', text_config: gemma }, 'mm/config.json'), (e: unknown) => e instanceof FormatError && e.code === 'CONFIG_UNSUPPORTED_MODEL' && /multimodal .*gemma3_text/.test(e.message));
  });

  test('an unsupported model_type lists the supported ones', () => {
    assert.throws(() => parseHfConfig({ model_type: 't5' }, 't5/config.json'), (e: unknown) => e instanceof FormatError && e.code === 'CONFIG_UNSUPPORTED_MODEL' && e.message.includes("'t5'") && e.message.includes('gpt2, llama'));
  });

  test('bad or inconsistent fields are named', () => {
    assert.throws(() => parseHfConfig({ ...GPT2, n_head: 0 }, 'x/config.json'), (e: unknown) => e instanceof FormatError && e.code === 'CONFIG_INVALID_FIELD' && e.message.includes("'n_head'"));
    assert.throws(() => parseHfConfig({ ...GPT2, n_head: 7 }, 'x/config.json'), (e: unknown) => e instanceof FormatError && e.code === 'CONFIG_INVALID_FIELD' && e.message.includes('not divisible'));
    assert.throws(() => parseHfConfig({ ...LLAMA, num_key_value_heads: 5 }, 'x/config.json'), (e: unknown) => e instanceof FormatError && e.code === 'CONFIG_INVALID_FIELD');
    const { vocab_size: _dropped, ...noVocab } = LLAMA;
    assert.throws(() => parseHfConfig(noVocab, 'x/config.json'), (e: unknown) => e instanceof FormatError && e.code === 'CONFIG_INVALID_FIELD' && e.message.includes("'vocab_size'"));
  });
});
