/**
 * `fedex` as a separate process, for the CLI tests that run hosts and joins the way people do:
 * `node --import tsx src/cli/bin.ts …` from the repository root, output collected as it arrives.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A running `fedex` process. */
export interface FedexRun {
  readonly child: ChildProcess;
  readonly done: Promise<{ code: number | null; stdout: string; stderr: string }>;
  /** Standard output so far. */
  output(): string;
}

/** Starts `fedex <args>`; `stdin: 'pipe'` keeps its standard input open for writing. */
export function spawnFedex(args: readonly string[], options: { stdin?: 'ignore' | 'pipe'; env?: Readonly<Record<string, string>> } = {}): FedexRun {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/bin.ts', ...args], {
    cwd: ROOT,
    stdio: [options.stdin ?? 'ignore', 'pipe', 'pipe'],
    ...(options.env !== undefined ? { env: { ...process.env, ...options.env } } : {}),
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  return { child, done, output: () => stdout };
}

/** The options of {@link spawnFedex}. */
export type SpawnOptions = Parameters<typeof spawnFedex>[1];

/**
 * The `fedex` processes of the enclosing `describe` (or file): the function it returns spawns one, and every one still
 * running when the suite ends is killed, so a failed test leaves no host or join behind. Call it
 * before `suiteTempDir`: `after` hooks run in the order they were added, so the processes die
 * before their folder is removed.
 */
export function suiteFedex(): (args: readonly string[], options?: SpawnOptions) => FedexRun {
  const running: FedexRun[] = [];
  after(() => {
    for (const r of running) if (r.child.exitCode === null) r.child.kill('SIGKILL');
  });
  return (args, options) => {
    const run = spawnFedex(args, options);
    running.push(run);
    return run;
  };
}

/** Resolves with the first match of `pattern` in the run's stdout; rejects when it exits first or after `ms`. */
export async function waitForOutput(run: FedexRun, pattern: RegExp, ms = 30_000): Promise<RegExpExecArray> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const m = pattern.exec(run.output());
    if (m !== null) return m;
    if (run.child.exitCode !== null) throw new Error(`exited before printing ${pattern}: ${(await run.done).stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`did not print ${pattern}; printed:\n${run.output()}`);
}

/** The `listening on ws://…` URL a `fedex host` prints. */
export async function waitForHostUrl(run: FedexRun, ms = 30_000): Promise<string> {
  return (await waitForOutput(run, /listening on (wss?:\/\/\S+)/, ms))[1];
}
