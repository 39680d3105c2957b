/**
 * Chat records of a JSONL file: `{"messages": [{"role", "content"}, …]}` — the format TRL, Axolotl
 * and OpenAI fine-tuning use — with optional `"tools"` (function definitions the template renders)
 * and `"chat_template_kwargs"` (more template variables, e.g. `{"enable_thinking": false}`).
 * Messages keep every other field (`tool_calls`, `reasoning_content`, `name`, …) for the template.
 */
import type { ChatMessage, ChatRecord } from './records.js';

/** Parses the chat record of one JSON object; `where` (file:line) prefixes every error. */
export function parseChatRecord(o: Readonly<Record<string, unknown>>, where: string, line: number): ChatRecord {
  for (const other of ['text', 'prompt', 'completion', 'input_ids', 'instruction', 'output']) {
    if (o[other] !== undefined) throw new Error(`${where}: has both "messages" and "${other}"; pick one record kind`);
  }
  if (!Array.isArray(o.messages) || o.messages.length === 0) throw new Error(`${where}: "messages" must be a non-empty array of {"role", "content"} objects`);
  const messages = o.messages.map((m: unknown, i) => checkMessage(m, `${where}: "messages"[${i}]`));
  if (!messages.some((m) => m.role === 'assistant')) {
    throw new Error(`${where}: no "assistant" message; a chat record trains on its assistant turns`);
  }
  let record: ChatRecord = { kind: 'chat', messages, line };
  if (o.tools !== undefined) {
    if (!Array.isArray(o.tools)) throw new Error(`${where}: "tools" must be an array of tool definitions`);
    record = { ...record, tools: o.tools };
  }
  const kwargs = o.chat_template_kwargs;
  if (kwargs !== undefined) {
    if (kwargs === null || typeof kwargs !== 'object' || Array.isArray(kwargs)) throw new Error(`${where}: "chat_template_kwargs" must be an object`);
    record = { ...record, templateKwargs: kwargs as Record<string, unknown> };
  }
  return record;
}

function checkMessage(m: unknown, where: string): ChatMessage {
  if (m === null || typeof m !== 'object' || Array.isArray(m)) throw new Error(`${where} must be an object with "role" and "content"`);
  const message = m as Record<string, unknown>;
  if (typeof message.role !== 'string' || message.role.length === 0) throw new Error(`${where}: "role" must be a non-empty string`);
  const content = message.content;
  if (typeof content === 'string') return message as ChatMessage;
  if (Array.isArray(content)) throw new Error(`${where}: "content" is a list of parts (multimodal); give the text as a string`);
  if ((content === undefined || content === null) && Array.isArray(message.tool_calls)) return message as ChatMessage;
  throw new Error(`${where}: "content" must be a string${message.role === 'assistant' ? ' (or null with "tool_calls")' : ''}`);
}
