/**
 * Chat templates rendered as transformers' `apply_chat_template` renders them (through
 * `@huggingface/jinja`, the Jinja implementation transformers.js uses), and the character spans of
 * the assistant turns in the rendered text — TRL's `assistant_only_loss`:
 *
 * - a template with `{% generation %}…{% endgeneration %}` blocks marks the spans itself (what
 *   transformers' `return_assistant_tokens_mask` reads);
 * - otherwise each assistant turn is found by rendering prefixes of the conversation: it starts
 *   where the conversation before it, rendered with the generation prompt, ends, and runs over what
 *   rendering it as the last turn adds — or, for templates that render earlier turns differently
 *   (Qwen3 drops the empty `<think>` block of all but the last turn), over the longest tail of
 *   that which the whole conversation has at that place. Trailing whitespace (the newline between
 *   turns) is left out, so the span ends with the turn's end token (`<|im_end|>`, `<|eot_id|>`).
 */
import { Template } from '@huggingface/jinja';
import type { ChatMessage } from './records.js';
import type { CharSpan } from './tokenSpans.js';
import { selectChatTemplate } from './tokenizerConfig.js';
import type { ChatTemplates, SpecialTokenNames } from './tokenizerConfig.js';

/** A conversation and what it is rendered with. */
export interface Conversation {
  readonly messages: readonly ChatMessage[];
  /** Tool (function) definitions, passed to the template as `tools`. */
  readonly tools?: readonly unknown[];
  /** More template variables (e.g. `enable_thinking`), as TRL's `chat_template_kwargs`. */
  readonly templateKwargs?: Readonly<Record<string, unknown>>;
}

/** A rendered conversation and the spans of its assistant turns. */
export interface RenderedChat {
  readonly text: string;
  readonly assistantSpans: readonly CharSpan[];
}

// Private-use characters standing for {% generation %} / {% endgeneration %} in a rendering.
const OPEN = '\uE000';
const CLOSE = '\uE001';
const GENERATION_TAG = /{%(-?)\s*(end)?generation\s*(-?)%}/g;

/** A chat template compiled for one tokenizer's special tokens. */
export class ChatTemplate {
  private readonly marked: Template | null;

  private constructor(private readonly plain: Template, marked: Template | null, private readonly specialTokens: SpecialTokenNames) {
    this.marked = marked;
  }

  /**
   * Compiles the template a conversation with (or without) tools uses. `source` names the
   * tokenizer in errors.
   */
  static compile(templates: ChatTemplates | null, specialTokens: SpecialTokenNames, withTools: boolean, source: string): ChatTemplate {
    if (templates === null) {
      throw new Error(`${source} has no chat template (tokenizer_config.json "chat_template" or chat_template.jinja); use prompt/completion or text records with this tokenizer`);
    }
    const text = selectChatTemplate(templates, withTools);
    if (text === null) throw new Error(`${source} has several chat templates (${Object.keys(templates).join(', ')}) and none is "default"`);
    let plain: Template;
    try {
      plain = parseTemplate(text);
    } catch (err) {
      throw new Error(`the chat template of ${source} does not parse: ${(err as Error).message}`, { cause: err });
    }
    // The markers go in as output between two `if true` blocks so that the tag's own whitespace
    // control (`{%-`, `-%}`) still applies on its outer side.
    const withMarkers = /{%-?\s*generation\s*-?%}/.test(text)
      ? text.replace(GENERATION_TAG, (_tag, left: string, end: string | undefined, right: string) => (end === undefined
        ? `{%${left} if true %}{{ '${OPEN}' }}{% if true ${right}%}`
        : `{%${left} endif %}{{ '${CLOSE}' }}{% endif ${right}%}`))
      : null;
    return new ChatTemplate(plain, withMarkers === null ? null : parseTemplate(withMarkers), specialTokens);
  }

  /** The text of a conversation, as apply_chat_template(tokenize=False) gives it. */
  render(conversation: Conversation, addGenerationPrompt: boolean): string {
    return this.renderWith(this.plain, conversation, addGenerationPrompt);
  }

  /**
   * The conversation rendered for training (no generation prompt) with the spans of its
   * assistant turns (see the module comment). Throws when a turn cannot be located.
   */
  renderForTraining(conversation: Conversation): RenderedChat {
    const text = this.render(conversation, false);
    const marked = this.markedSpans(conversation, text);
    if (marked !== null) return { text, assistantSpans: marked };
    const spans: CharSpan[] = [];
    conversation.messages.forEach((message, i) => {
      if (message.role !== 'assistant') return;
      const cannot = (why: string): Error => new Error(`cannot find assistant message ${i} in the rendered conversation: ${why}; a template with {% generation %} blocks marks its turns`);
      const before = this.renderPrefix(conversation, i, true, i);
      if (!text.startsWith(before)) throw cannot('the conversation before it renders differently on its own');
      const upTo = this.renderPrefix(conversation, i + 1, false, i);
      if (!upTo.startsWith(before)) throw cannot('the generation prompt is not where the turn starts');
      const turn = upTo.slice(before.length);
      let length = turn.length;
      while (length > 0 && !text.startsWith(turn.slice(turn.length - length), before.length)) length--;
      if (length === 0) throw cannot('the turn renders differently inside the conversation');
      let end = before.length + length;
      while (end > before.length && /\s/.test(text[end - 1])) end--;
      spans.push({ start: before.length, end });
    });
    return { text, assistantSpans: spans };
  }

  /** The first `count` messages rendered; a template error names the assistant message being located. */
  private renderPrefix(conversation: Conversation, count: number, addGenerationPrompt: boolean, assistant: number): string {
    try {
      return this.render({ ...conversation, messages: conversation.messages.slice(0, count) }, addGenerationPrompt);
    } catch (err) {
      throw new Error(`cannot find assistant message ${assistant}: the template fails on the messages before it: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Spans from {% generation %} markers; null when the template has none or they cannot be trusted here. */
  private markedSpans(conversation: Conversation, text: string): CharSpan[] | null {
    if (this.marked === null) return null;
    if (JSON.stringify(conversation).includes(OPEN) || JSON.stringify(conversation).includes(CLOSE)) return null;
    const rendered = this.renderWith(this.marked, conversation, false);
    const spans: CharSpan[] = [];
    let clean = '';
    let open = -1;
    for (const ch of rendered) {
      if (ch === OPEN) {
        if (open >= 0) return null;
        open = clean.length;
      } else if (ch === CLOSE) {
        if (open < 0) return null;
        spans.push({ start: open, end: clean.length });
        open = -1;
      } else {
        clean += ch;
      }
    }
    // The markers must not have changed the text (whitespace control around them).
    return open < 0 && clean === text ? spans : null;
  }

  private renderWith(template: Template, conversation: Conversation, addGenerationPrompt: boolean): string {
    const special: Record<string, string> = {};
    for (const [key, name] of Object.entries(this.specialTokens)) if (name !== null) special[`${key}_token`] = name;
    return template.render({
      ...STRIP_FUNCTIONS,
      ...special,
      ...conversation.templateKwargs,
      messages: conversation.messages,
      tools: conversation.tools ?? null,
      documents: null,
      add_generation_prompt: addGenerationPrompt,
    });
  }
}

const STRIP_NAMES = ['strip', 'lstrip', 'rstrip'] as const;

/** Python's str.strip/lstrip/rstrip: `chars` is a set of characters; null or absent means whitespace. */
function pythonStrip(mode: (typeof STRIP_NAMES)[number]): (value: unknown, chars?: unknown) => string {
  return (value, chars) => {
    if (typeof value !== 'string') throw new Error(`${mode}() of a ${value === null ? 'none' : typeof value}, not a string`);
    if (chars === null || chars === undefined) return mode === 'strip' ? value.trim() : mode === 'lstrip' ? value.trimStart() : value.trimEnd();
    if (typeof chars !== 'string') throw new Error(`${mode}() argument must be a string or none`);
    const set = new Set(chars);
    const points = Array.from(value);
    let start = 0;
    let end = points.length;
    if (mode !== 'rstrip') { while (start < end && set.has(points[start])) start++; }
    if (mode !== 'lstrip') { while (end > start && set.has(points[end - 1])) end--; }
    return points.slice(start, end).join('');
  };
}

const STRIP_FUNCTIONS: Record<string, (value: unknown, chars?: unknown) => string> = Object.fromEntries(
  STRIP_NAMES.map((name) => [`__fedex_${name}`, pythonStrip(name)]),
);

/** A node of @huggingface/jinja's syntax tree, as far as the rewrite below reads it. */
interface SyntaxNode {
  type: string;
  [field: string]: unknown;
}

function isNode(value: unknown): value is SyntaxNode {
  return value !== null && typeof value === 'object' && typeof (value as { type?: unknown }).type === 'string';
}

/**
 * Parses a template, rewriting `x.strip(chars)` (and lstrip/rstrip) into calls of
 * {@link pythonStrip}: @huggingface/jinja 0.5.13 ignores the argument and strips whitespace, so
 * Qwen3's `content.lstrip('\n')` would also drop the spaces a message starts with.
 */
function parseTemplate(text: string): Template {
  const template = new Template(text);
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) {
      value.forEach(visit);
      return;
    }
    if (!isNode(value)) return;
    const callee = value.callee;
    const args = value.args;
    if (value.type === 'CallExpression' && isNode(callee) && callee.type === 'MemberExpression' && callee.computed === false
      && isNode(callee.property) && callee.property.type === 'Identifier' && (STRIP_NAMES as readonly unknown[]).includes(callee.property.value)
      && Array.isArray(args) && args.length === 1 && isNode(args[0]) && args[0].type !== 'KeywordArgumentExpression') {
      const name = callee.property;
      name.value = `__fedex_${String(name.value)}`;
      value.args = [callee.object, args[0]];
      value.callee = name;
    }
    for (const field of Object.values(value)) if (field !== null && typeof field === 'object') visit(field);
  };
  visit(template.parsed);
  return template;
}
