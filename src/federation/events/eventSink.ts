/**
 * Where the CLI's event stream goes: a JSONL file, a writable stream (stdout for `--events -`), or
 * nowhere. Writing never throws into the federation: a failed sink keeps its first error in `error`
 * and drops later events.
 */
import { createWriteStream } from 'node:fs';
import { formatEventLine, type CliEventMap, type CliEventType, type SimulationMethod } from './events.js';

/** Receives events of the stream. */
export interface EventSink {
  /** Records one event; `method` tags it with the compared method (simulate). */
  emit<K extends CliEventType>(type: K, payload: CliEventMap[K], method?: SimulationMethod): void;
  /** Flushes and releases the target. */
  close(): Promise<void>;
  /** The first write error, if any. */
  readonly error?: Error;
}

/** Something lines can be written to (a file stream or process.stdout). */
export interface LineWritable {
  write(chunk: string): boolean;
}

/** A sink that drops everything. */
export const NULL_SINK: EventSink = { emit: () => undefined, close: async () => undefined };

/** A sink that writes JSONL lines to `out` (not closed by `close`: stdout belongs to the process). */
export function streamSink(out: LineWritable): EventSink {
  let failed: Error | undefined;
  return {
    emit(type, payload, method) {
      if (failed !== undefined) return;
      try {
        out.write(formatEventLine(type, payload, method !== undefined ? { method } : {}));
      } catch (err) {
        failed = err as Error;
      }
    },
    close: async () => undefined,
    get error() {
      return failed;
    },
  };
}

/** A sink that appends JSONL lines to a file (created or truncated). */
export function fileSink(path: string): EventSink {
  const stream = createWriteStream(path, { flags: 'w', encoding: 'utf8' });
  let failed: Error | undefined;
  stream.on('error', (err) => (failed ??= err));
  return {
    emit(type, payload, method) {
      if (failed !== undefined || stream.destroyed) return;
      stream.write(formatEventLine(type, payload, method !== undefined ? { method } : {}));
    },
    close: () => new Promise<void>((resolve) => {
      if (stream.destroyed || stream.writableEnded) resolve();
      else stream.end(() => resolve());
    }),
    get error() {
      return failed;
    },
  };
}

/** Sends every event to all `sinks`. */
export function teeSink(...sinks: readonly EventSink[]): EventSink {
  return {
    emit(type, payload, method) {
      for (const s of sinks) s.emit(type, payload, method);
    },
    close: async () => {
      await Promise.all(sinks.map((s) => s.close()));
    },
    get error() {
      return sinks.find((s) => s.error !== undefined)?.error;
    },
  };
}

/**
 * The sink for an `--events` flag: `-` is stdout, any other value a file path, absent is no sink.
 */
export function eventsFlagSink(target: string | undefined, stdout: LineWritable): EventSink {
  if (target === undefined) return NULL_SINK;
  return target === '-' ? streamSink(stdout) : fileSink(target);
}
