/**
 * Splits a child process's stdout into lines and parses each as one event of the CLI's JSONL
 * stream. Chunks may end anywhere, also inside a multi-byte UTF-8 character: the splitter keeps
 * the tail until the next newline. No vscode here: unit-tested on its own.
 */
import { StringDecoder } from 'node:string_decoder';
import { parseEventLine } from '../../federation/events/events.js';
import type { CliEvent } from '../../federation/events/events.js';

/** An event of the stream: a declared one, or one of a type a newer CLI added (kept, not narrowed). */
export type StreamEvent = CliEvent | { readonly type: string; readonly time: number };

/** What one line turned into. */
export type ParsedLine =
  | { readonly kind: 'event'; readonly event: StreamEvent }
  | { readonly kind: 'malformed'; readonly line: string; readonly reason: string };

/** Longest line kept (a runaway line is reported as malformed instead of growing without bound). */
export const MAX_LINE_CHARS = 16 * 1024 * 1024;

/** Accumulates chunks and returns the complete lines they close. */
export class LineSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private tail = '';
  private overflowed = false;

  constructor(private readonly maxLineChars: number = MAX_LINE_CHARS) {}

  /** Adds a chunk; returns the lines completed by it (without their `\n` or `\r\n`). */
  push(chunk: Buffer | string): string[] {
    const text = this.tail + (typeof chunk === 'string' ? chunk : this.decoder.write(chunk));
    const parts = text.split('\n');
    this.tail = parts.pop() ?? '';
    const lines = parts.map((p) => (p.endsWith('\r') ? p.slice(0, -1) : p));
    if (this.overflowed && lines.length > 0) {
      // The first completed line is the end of the oversized one: replace it by a marker.
      lines[0] = `\u0000overflow:${lines[0].slice(0, 80)}`;
      this.overflowed = false;
    }
    if (this.tail.length > this.maxLineChars) {
      this.tail = '';
      this.overflowed = true;
    }
    return lines;
  }

  /** The last, unterminated line (the stream ended without a newline), if any. */
  flush(): string[] {
    const rest = this.tail + this.decoder.end();
    this.tail = '';
    if (this.overflowed) {
      this.overflowed = false;
      return [`\u0000overflow:${rest.slice(0, 80)}`];
    }
    return rest.trim() === '' ? [] : [rest];
  }
}

/** Parses one line of the stream; blank lines give null, bad ones a `malformed` result naming why. */
export function parseLine(line: string, maxLineChars: number = MAX_LINE_CHARS): ParsedLine | null {
  if (line.startsWith('\u0000overflow:')) {
    return { kind: 'malformed', line: line.slice(10), reason: `line longer than ${maxLineChars} characters` };
  }
  try {
    const event = parseEventLine(line);
    return event === null ? null : { kind: 'event', event };
  } catch (err) {
    return { kind: 'malformed', line: line.length > 200 ? `${line.slice(0, 200)}…` : line, reason: (err as Error).message };
  }
}

/** A splitter and parser together: chunks in, parsed lines out. */
export class JsonlEventParser {
  private readonly splitter: LineSplitter;

  constructor(private readonly maxLineChars: number = MAX_LINE_CHARS) {
    this.splitter = new LineSplitter(maxLineChars);
  }

  /** Parses the lines a chunk completes. */
  push(chunk: Buffer | string): ParsedLine[] {
    return this.collect(this.splitter.push(chunk));
  }

  /** Parses what is left when the stream ends. */
  end(): ParsedLine[] {
    return this.collect(this.splitter.flush());
  }

  private collect(lines: readonly string[]): ParsedLine[] {
    const out: ParsedLine[] = [];
    for (const line of lines) {
      const parsed = parseLine(line, this.maxLineChars);
      if (parsed !== null) out.push(parsed);
    }
    return out;
  }
}
