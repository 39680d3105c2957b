/**
 * Real tokenizers (Qwen3, Llama-3, Llama-2 family, Gemma 3) against Hugging Face transformers 4.57:
 * encoding of varied strings, BOS/EOS per tokenizer_config.json, TRL's prompt/completion encoding,
 * and chat templates (text, ids, assistant-only loss). References: realTokenizers.ts.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChatTemplate } from '../../../src/trainer/data/chatTemplate.js';
import { encodeDataset } from '../../../src/trainer/data/encode.js';
import type { ChatRecord, Dataset } from '../../../src/trainer/data/records.js';
import { IGNORE_INDEX } from '../../../src/trainer/data/records.js';
import { REAL_TOKENIZERS, realReferences, realTokenizer } from './realTokenizers.js';
import type { RealTokenizerName } from './realTokenizers.js';

const refs = realReferences();

/** The scored stretches of an example, decoded: one string per run of labels ≠ -100. */
function scoredTexts(name: RealTokenizerName, ids: ArrayLike<number>, labels: ArrayLike<number>): string[] {
  const tok = realTokenizer(name);
  const runs: number[][] = [];
  for (let t = 0; t < labels.length; t++) {
    if (labels[t] === IGNORE_INDEX) continue;
    if (t === 0 || labels[t - 1] === IGNORE_INDEX) runs.push([]);
    runs[runs.length - 1].push(ids[t]);
  }
  return runs.map((run) => tok.decode(run));
}

function chatDataset(messages: ChatRecord['messages'], tools?: readonly unknown[]): Dataset {
  const record: ChatRecord = { kind: 'chat', messages, ...(tools !== undefined ? { tools } : {}) };
  return { source: 'chat.jsonl', kind: 'chat', records: [record] };
}

describe('fixture tokenizers: encode matches transformers', () => {
  for (const name of REAL_TOKENIZERS) {
    test(`${name}: ${refs.tokenizers[name].encode.length} strings (Unicode, emoji, code, numbers, whitespace runs, special tokens in text), with and without special tokens`, () => {
      const tok = realTokenizer(name);

      for (const c of refs.tokenizers[name].encode) {
        assert.deepEqual(tok.encode(c.text), c.ids, `${name} ${JSON.stringify(c.text)}`);
        assert.deepEqual(tok.encode(c.text, { addSpecialTokens: true }), c.withSpecial, `${name} ${JSON.stringify(c.text)} with special tokens`);
      }
    });
  }

  test('special tokens: "bos_token": null (Qwen3) means no bos, not a fallback to <|endoftext|>', () => {
    const qwen = realTokenizer('qwen3');

    assert.deepEqual(qwen.special, { bos: null, eos: qwen.tokenToId('<|im_end|>'), pad: qwen.tokenToId('<|endoftext|>'), unk: null });
    assert.deepEqual(realTokenizer('llama2').special, { bos: 1, eos: 2, pad: null, unk: 0 });
    assert.deepEqual(realTokenizer('gemma3').specialTokens, { bos: '<bos>', eos: '<end_of_turn>', pad: '<pad>', unk: '<unk>' });
  });

  test('add_bos_token / add_eos_token: as transformers 4.57 for Llama/Gemma classes; for Qwen (tokenizer.json) as both 4.57 and 5.x', () => {
    // Every variant of the small Llama-2-family tokenizer and of Qwen3 (its class keeps tokenizer.json's
    // post-processor), and one of Gemma 3 (a second load of its 262k vocabulary costs ~1.5 s).
    for (const name of ['llama2', 'qwen3'] as const) {
      refs.tokenizers[name].variants['4.57.6'].forEach((v, i) => {
        const v5 = refs.tokenizers[name].variants['5.18.0'][i];
        if (v.error !== undefined) {
          assert.throws(() => realTokenizer(name, v.config), /add_bos_token is true but tokenizer_config\.json has no bos_token/);
          return;
        }
        const ids = realTokenizer(name, v.config).encode('Hello world', { addSpecialTokens: true });
        assert.deepEqual(ids, v.withSpecial, `${name} ${JSON.stringify(v.config)}`);
        if (name === 'qwen3') assert.deepEqual(ids, v5.withSpecial);
      });
    }
    const gemma = refs.tokenizers.gemma3.variants['4.57.6'];
    assert.deepEqual(realTokenizer('gemma3', gemma[1].config).encode('Hello world', { addSpecialTokens: true }), gemma[1].withSpecial);
  });
});

describe('fixture tokenizers: prompt/completion encoded together (TRL)', () => {
  for (const name of REAL_TOKENIZERS) {
    test(`${name}: ids as TRL's; loss mask as TRL's where the prompt's tokens are a prefix, else from the merged token on`, () => {
      const tok = realTokenizer(name);
      const pairs = refs.tokenizers[name].pairs;
      const ds: Dataset = { source: 'pc', kind: 'prompt-completion', records: pairs.map((p) => ({ kind: 'prompt-completion', prompt: p.prompt, completion: p.completion })) };

      const out = encodeDataset(ds, tok, { seqLen: 256 });

      pairs.forEach((p, i) => {
        const { inputIds, labels } = out.examples[i];
        assert.deepEqual([...inputIds], p.ids, `${name} ${JSON.stringify(p.prompt)}`);
        const mask = [...labels].map((l) => (l === IGNORE_INDEX ? 0 : 1));
        if (p.promptIsPrefix) {
          assert.deepEqual(mask, p.completionMask, `${name} ${JSON.stringify(p.prompt)}`);
        } else {
          // TRL masks len(prompt_ids) tokens, which here include the token merging prompt and completion ("A: " + "Paris" → " Paris").
          const first = mask.indexOf(1);
          assert.ok(first < p.completionMask.indexOf(1), `${name}: the merged token is scored`);
          assert.ok(tok.decode(inputIds.subarray(first, first + 1)).includes(p.completion[0]));
        }
      });
    });
  }

  test('llama2 (SentencePiece): no stray "▁" before the completion, as encoding prompt and completion apart gave', () => {
    const tok = realTokenizer('llama2');
    const ds: Dataset = { source: 'pc', kind: 'prompt-completion', records: [{ kind: 'prompt-completion', prompt: 'Q: What is 2+3? A:', completion: ' 5' }] };

    const { inputIds, labels } = encodeDataset(ds, tok, { seqLen: 64 }).examples[0];

    const scored = [...inputIds].filter((_, t) => labels[t] !== IGNORE_INDEX).map((id) => tok.idToToken(id));
    assert.deepEqual(scored, ['▁', '5', '</s>']);
    assert.deepEqual(tok.encode(' 5').map((id) => tok.idToToken(id)), ['▁▁', '5']);
  });
});

describe('fixture tokenizers: chat templates', () => {
  const expectedTurns: Record<string, Record<string, string[]>> = {
    qwen3: {
      single: ['<think>\n\n</think>\n\nParis.<|im_end|>'],
      'system-multi': ['Rome<|im_end|>', '<think>\n\n</think>\n\n Madrid\n<|im_end|>'],
      tools: ['<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>', '<think>\n\n</think>\n\nIt is 21 °C in Paris.<|im_end|>'],
    },
    llama3_1: { single: ['Paris.<|eot_id|>'], 'system-multi': ['Rome<|eot_id|>', 'Madrid<|eot_id|>'] },
    gemma3: { single: ['Paris.<end_of_turn>'], 'system-multi': ['Rome<end_of_turn>', 'Madrid<end_of_turn>'] },
  };
  for (const name of ['qwen3', 'llama3_1', 'gemma3'] as const) {
    test(`${name}: text and ids as apply_chat_template; loss exactly on the assistant turns and their end token`, () => {
      const tok = realTokenizer(name);
      for (const chat of refs.tokenizers[name].chats) {
        const template = ChatTemplate.compile(tok.chatTemplates, tok.specialTokens, chat.tools !== undefined, name);

        const text = template.render({ messages: chat.messages, ...(chat.tools !== undefined ? { tools: chat.tools } : {}) }, false);
        const { inputIds, labels } = encodeDataset(chatDataset(chat.messages, chat.tools), tok, { seqLen: 1024 }).examples[0];

        assert.equal(text, chat.text, `${name} ${chat.name}`);
        assert.deepEqual([...inputIds], chat.ids, `${name} ${chat.name}`);
        assert.deepEqual(scoredTexts(name, inputIds, labels), expectedTurns[name][chat.name], `${name} ${chat.name}`);
      }
    });
  }

  test("{% generation %} blocks: the assistant mask is transformers' return_assistant_tokens_mask", () => {
    const { template, chats, tokenizer } = refs.generationTemplate;
    const tok = realTokenizer(tokenizer);
    const withTemplate = { ...tok, chatTemplates: { default: template } };
    for (const chat of chats) {
      const { inputIds, labels } = encodeDataset(chatDataset(chat.messages), withTemplate, { seqLen: 1024 }).examples[0];

      assert.deepEqual([...inputIds], chat.ids, chat.name);
      assert.deepEqual([...labels].map((l) => (l === IGNORE_INDEX ? 0 : 1)), chat.assistantMask, chat.name);
    }
  });

  test("a conversation the template refuses (Gemma: roles must alternate) names the record and the template's message", () => {
    const tok = realTokenizer('gemma3');
    const record: ChatRecord = { kind: 'chat', line: 7, messages: [{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }, { role: 'assistant', content: 'c' }] };

    assert.throws(() => encodeDataset({ source: 'd.jsonl', kind: 'chat', records: [record] }, tok, { seqLen: 64 }),
      /d\.jsonl:7: the chat template of @lenml\/tokenizer-gemma3 cannot render this conversation: .*Conversation roles must alternate/);
  });

  test('a tokenizer without a chat template (Llama-2 family) is refused naming it', () => {
    assert.throws(() => encodeDataset(chatDataset([{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }]), realTokenizer('llama2'), { seqLen: 64 }),
      /@lenml\/tokenizer-llama2 has no chat template \(tokenizer_config\.json "chat_template" or chat_template\.jinja\)/);
  });
});
