/**
 * Runs the `fedex` CLI as a child process with `--events -`: JSONL events on stdout, human logs on
 * stderr. The extension host never trains or aggregates itself; it only reads these streams.
 * Stopping is SIGTERM first (the CLI closes the federation cleanly), SIGKILL after a grace period.
 * stdin is a pipe for operator lines (`send('start')` to `host --manual-rounds`); commands that do
 * not read it never see it.
 */
import { spawn as nodeSpawn } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { StringDecoder } from 'node:string_decoder';
import { JsonlEventParser, LineSplitter } from './jsonlLines.js';
import type { StreamEvent } from './jsonlLines.js';

/** How the child ended. `signal` is set when it was killed; `stopped` when we asked it to stop. */
export interface CliExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stopped: boolean;
  /** Set when the process could not be started at all (e.g. ENOENT). */
  readonly error?: string;
}

/** What the runner reports while the child runs. */
export interface CliProcessHandlers {
  onEvent(event: StreamEvent): void;
  /** A stdout line that is not an event (bad JSON, no `type`/`time`, too long). */
  onMalformed?(line: string, reason: string): void;
  /** Raw stdout text (only with `stdout: 'raw'`, where nothing is parsed as events). */
  onStdout?(text: string): void;
  /** One line of the child's stderr (its human log). */
  onStderr?(line: string): void;
  onExit?(exit: CliExit): void;
}

/** The spawn function (injected so tests can substitute a fake). */
export type SpawnFn = (command: string, args: readonly string[], options: SpawnOptions) => ChildProcess;

/** Where the CLI is and how to start it. */
export interface CliProcessOptions {
  /** The Node binary (in the extension: `process.execPath`, the editor's own Node). */
  readonly nodePath: string;
  /** The bundled CLI script (`<extensionPath>/dist/cli.cjs`). */
  readonly cliPath: string;
  /** Arguments after the script, e.g. `['simulate', '--out', dir, '--events', '-']`. */
  readonly args: readonly string[];
  readonly cwd?: string;
  /** Extra environment variables (merged over the parent's). */
  readonly env?: Readonly<Record<string, string>>;
  /** Time between SIGTERM and SIGKILL when stopping (default 5000 ms). */
  readonly killGraceMs?: number;
  /** `events` (default): stdout is the JSONL event stream; `raw`: handed over as text (e.g. `aggregate --json`). */
  readonly stdout?: 'events' | 'raw';
  /** Cancels the run: same as `stop()`. */
  readonly signal?: AbortSignal;
  readonly spawn?: SpawnFn;
}

/** Default time a stopped child gets to exit before SIGKILL. */
export const DEFAULT_KILL_GRACE_MS = 5000;

/** A running CLI child. */
export class CliProcess {
  /** Resolves once the child has exited and its streams are drained. */
  readonly exited: Promise<CliExit>;
  private stopRequested = false;
  private killTimer: NodeJS.Timeout | undefined;
  private done = false;

  constructor(private readonly child: ChildProcess, handlers: CliProcessHandlers, private readonly killGraceMs: number, stdoutMode: 'events' | 'raw' = 'events') {
    const events = new JsonlEventParser();
    const stderr = new LineSplitter();
    const deliver = (parsed: ReturnType<JsonlEventParser['push']>): void => {
      for (const p of parsed) {
        if (p.kind === 'event') handlers.onEvent(p.event);
        else handlers.onMalformed?.(p.line, p.reason);
      }
    };
    const rawDecoder = new StringDecoder('utf8');
    child.stdout?.on('data', (chunk: Buffer) => {
      if (stdoutMode === 'raw') handlers.onStdout?.(rawDecoder.write(chunk));
      else deliver(events.push(chunk));
    });
    child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk).forEach((l) => handlers.onStderr?.(l)));
    // A line sent as the child exits fails with EPIPE: the exit itself is reported through 'close'.
    child.stdin?.on('error', () => undefined);
    this.exited = new Promise<CliExit>((resolve) => {
      const finish = (exit: CliExit): void => {
        if (this.done) return;
        this.done = true;
        if (this.killTimer !== undefined) clearTimeout(this.killTimer);
        if (stdoutMode === 'raw') {
          const rest = rawDecoder.end();
          if (rest !== '') handlers.onStdout?.(rest);
        } else deliver(events.end());
        stderr.flush().forEach((l) => handlers.onStderr?.(l));
        handlers.onExit?.(exit);
        resolve(exit);
      };
      // 'close' (not 'exit') so that stdout is fully read before the exit is reported.
      child.on('close', (code, signal) => finish({ code, signal, stopped: this.stopRequested }));
      child.on('error', (err) => {
        // A spawn failure emits 'error' and never 'close'; an error after start is followed by 'close'.
        if (child.pid === undefined) finish({ code: null, signal: null, stopped: this.stopRequested, error: err.message });
      });
    });
  }

  /** The child's process id (undefined when it failed to start). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** True until the child has exited. */
  get running(): boolean {
    return !this.done;
  }

  /** True once `stop()` was called. */
  get stopping(): boolean {
    return this.stopRequested;
  }

  /**
   * Writes one line to the child's stdin (e.g. `start` for `fedex host --manual-rounds`). False when
   * the child no longer runs (or is being stopped) and nothing was written.
   */
  send(line: string): boolean {
    if (/[\r\n]/.test(line)) throw new Error(`CliProcess.send: one line without line breaks, got ${JSON.stringify(line)}`);
    const stdin = this.child.stdin;
    if (this.done || this.stopRequested || stdin === null || !stdin.writable) return false;
    stdin.write(`${line}\n`);
    return true;
  }

  /** SIGTERM now, SIGKILL after the grace period if it is still alive; resolves on exit. */
  stop(graceMs: number = this.killGraceMs): Promise<CliExit> {
    if (!this.done && !this.stopRequested) {
      this.stopRequested = true;
      this.child.kill('SIGTERM');
      this.killTimer = setTimeout(() => {
        if (!this.done) this.child.kill('SIGKILL');
      }, graceMs);
      this.killTimer.unref?.();
    }
    return this.exited;
  }
}

/** Starts the CLI with the given arguments; events and logs go to `handlers`. */
export function startCliProcess(options: CliProcessOptions, handlers: CliProcessHandlers): CliProcess {
  const spawn = options.spawn ?? (nodeSpawn as SpawnFn);
  const child = spawn(options.nodePath, [options.cliPath, ...options.args], {
    cwd: options.cwd,
    // ELECTRON_RUN_AS_NODE makes the editor's Electron binary behave as plain Node.
    env: { ...process.env, ELECTRON_RUN_AS_NODE: '1', ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
    windowsHide: true,
  });
  const proc = new CliProcess(child, handlers, options.killGraceMs ?? DEFAULT_KILL_GRACE_MS, options.stdout ?? 'events');
  if (options.signal !== undefined) {
    if (options.signal.aborted) void proc.stop();
    else {
      const onAbort = (): void => void proc.stop();
      options.signal.addEventListener('abort', onAbort, { once: true });
      void proc.exited.then(() => options.signal?.removeEventListener('abort', onAbort));
    }
  }
  return proc;
}

/** Renders a command line for the log (arguments with spaces quoted; values after `--token` hidden). */
export function describeCommand(args: readonly string[]): string {
  return args.map((a, i) => (args[i - 1] === '--token' ? '***' : /[\s"']/.test(a) ? JSON.stringify(a) : a)).join(' ');
}

/** How a one-shot command (`aggregate --json`, `export --json`) ended: its exit, its whole stdout, its stderr lines. */
export interface CliResult {
  readonly exit: CliExit;
  readonly stdout: string;
  readonly stderr: readonly string[];
}

/**
 * Runs a one-shot CLI command (stdout raw, e.g. a `--json` report) to its end through
 * {@link startCliProcess}; `onStderr` sees each log line as it comes. Cancel with `options.signal`.
 */
export async function runCliToEnd(options: Omit<CliProcessOptions, 'stdout'>, onStderr?: (line: string) => void): Promise<CliResult> {
  let stdout = '';
  const stderr: string[] = [];
  const proc = startCliProcess({ ...options, stdout: 'raw' }, { onEvent: () => undefined, onStdout: (text) => (stdout += text),
    onStderr: (line) => {
      stderr.push(line);
      onStderr?.(line);
    } });
  const exit = await proc.exited;
  return { exit, stdout, stderr };
}
