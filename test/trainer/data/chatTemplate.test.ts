import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChatTemplate } from '../../../src/trainer/data/chatTemplate.js';
import type { Conversation } from '../../../src/trainer/data/chatTemplate.js';
import type { SpecialTokenNames } from '../../../src/trainer/data/tokenizerConfig.js';

const SPECIAL: SpecialTokenNames = { bos: '<s>', eos: '</s>', pad: null, unk: null };

/** A ChatML template without generation markers. */
const CHATML = "{%- for m in messages %}{{- '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{%- endfor %}"
  + "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

/** Like Qwen3: the last assistant turn gets an empty think block, earlier ones do not. */
const THINK_LAST = "{%- for m in messages %}{{- '<|im_start|>' + m.role + '\\n' }}"
  + "{%- if m.role == 'assistant' and loop.last %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
  + "{{- m.content + '<|im_end|>\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

function compile(template: string): ChatTemplate {
  return ChatTemplate.compile({ default: template }, SPECIAL, false, 'test tokenizer');
}

/** The text of every assistant span. */
function turns(template: ChatTemplate, conversation: Conversation): string[] {
  const { text, assistantSpans } = template.renderForTraining(conversation);
  return assistantSpans.map((s) => text.slice(s.start, s.end));
}

const TWO_TURNS: Conversation = {
  messages: [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Hi' },
    { role: 'assistant', content: 'Hello!' },
    { role: 'user', content: 'Bye' },
    { role: 'assistant', content: ' See you\n' },
  ],
};

describe('ChatTemplate: assistant spans by rendering prefixes', () => {
  test('each assistant turn from after its generation prompt to its end token; the newline between turns is not scored', () => {
    const template = compile(CHATML);

    const { text, assistantSpans } = template.renderForTraining(TWO_TURNS);

    assert.equal(text, '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n'
      + '<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n See you\n<|im_end|>\n');
    assert.deepEqual(assistantSpans.map((s) => text.slice(s.start, s.end)), ['Hello!<|im_end|>', ' See you\n<|im_end|>']);
  });

  test('a template that renders the last turn differently (Qwen3 think block): earlier turns as the conversation has them', () => {
    assert.deepEqual(turns(compile(THINK_LAST), TWO_TURNS), ['Hello!<|im_end|>', '<think>\n\n</think>\n\n See you\n<|im_end|>']);
  });

  test('a template whose rendering of the messages before a turn is not a prefix of the whole is refused naming the message', () => {
    const counting = `{{ messages|length }}${CHATML}`;

    assert.throws(() => compile(counting).renderForTraining(TWO_TURNS),
      /cannot find assistant message 2 in the rendered conversation: the conversation before it renders differently on its own; a template with \{% generation %\} blocks marks its turns/);
  });

  test("a template that fails on the messages before a turn names the turn and the template's message", () => {
    const noPrompt = "{%- if add_generation_prompt %}{{ raise_exception('no generation prompt here') }}{%- endif %}" + CHATML;

    assert.throws(() => compile(noPrompt).renderForTraining(TWO_TURNS), /cannot find assistant message 2: the template fails on the messages before it: no generation prompt here/);
  });
});

describe('ChatTemplate: {% generation %} blocks', () => {
  const GENERATION = "{%- for m in messages %}{{- '<|im_start|>' + m.role + '\\n' }}"
    + "{%- if m.role == 'assistant' %}{%- generation -%}\n  {{ m.content }}\n{%- endgeneration %}\n{{- '<|im_end|>\\n' }}"
    + "{%- else %}{{- m.content + '<|im_end|>\\n' }}{%- endif %}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

  test("the blocks mark the spans (here without the end token); the text is the template's own rendering (whitespace control kept)", () => {
    const template = compile(GENERATION);

    const { text, assistantSpans } = template.renderForTraining(TWO_TURNS);

    assert.equal(text, template.render(TWO_TURNS, false));
    assert.equal(text, compile(CHATML).render(TWO_TURNS, false));
    assert.deepEqual(assistantSpans.map((s) => text.slice(s.start, s.end)), ['Hello!', ' See you\n']);
  });

  test('blocks with plain tags and no generation prompt in the template', () => {
    const plain = "{%- for m in messages %}{{- m.role + ': ' }}{%- if m.role == 'assistant' %}{% generation %}{{- m.content }}{% endgeneration %}{%- else %}{{- m.content }}{%- endif %}{{- '\\n' }}{%- endfor %}";

    assert.deepEqual(turns(compile(plain), TWO_TURNS), ['Hello!', ' See you\n']);
  });

  test('messages holding the marker characters fall back to rendering prefixes', () => {
    const odd: Conversation = { messages: [{ role: 'user', content: 'a\uE000b' }, { role: 'assistant', content: 'ok' }] };

    assert.deepEqual(turns(compile(GENERATION), odd), ['ok<|im_end|>']);
  });
});

describe('ChatTemplate: rendering', () => {
  test('str.strip/lstrip/rstrip with an argument strip those characters, as in Python (not whitespace)', () => {
    const template = compile("{{ messages[0].content.strip('x') }}|{{ messages[0].content.lstrip('x') }}|{{ messages[1].content.lstrip('\\n') }}|{{ messages[1].content.rstrip() }}|");
    const conversation: Conversation = { messages: [{ role: 'user', content: 'xx hi xx' }, { role: 'assistant', content: '\n  two\n ' }] };

    assert.equal(template.render(conversation, false), ' hi | hi xx|  two\n |\n  two|');
  });

  test('special tokens, tools, documents, the generation prompt and template kwargs reach the template as transformers passes them', () => {
    const template = compile('{{ bos_token }}{{ eos_token }}[{{ pad_token is defined }}][{{ tools is none }}][{{ documents is none }}]{% if tools %}{{ tools|length }}{% endif %}{{ flag }}{{ add_generation_prompt }}');

    assert.equal(template.render({ messages: [] }, true), '<s></s>[false][true][true]true');
    assert.equal(template.render({ messages: [], tools: [{ a: 1 }], templateKwargs: { flag: 'F' } }, false), '<s></s>[false][false][true]1Ffalse');
  });

  test('the tool_use template for conversations with tools; errors name the tokenizer', () => {
    const templates = { default: 'plain', tool_use: 'tools' };

    assert.equal(ChatTemplate.compile(templates, SPECIAL, true, 't').render({ messages: [] }, false), 'tools');
    assert.equal(ChatTemplate.compile(templates, SPECIAL, false, 't').render({ messages: [] }, false), 'plain');
    assert.throws(() => ChatTemplate.compile(null, SPECIAL, false, 'tok.json'), /tok\.json has no chat template/);
    assert.throws(() => ChatTemplate.compile({ a: 'x', b: 'y' }, SPECIAL, false, 'tok.json'), /tok\.json has several chat templates \(a, b\) and none is "default"/);
    assert.throws(() => ChatTemplate.compile({ default: '{% if %}' }, SPECIAL, false, 'tok.json'), /the chat template of tok\.json does not parse/);
  });
});
