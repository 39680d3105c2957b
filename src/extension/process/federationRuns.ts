/**
 * The federations this editor runs: one `fedex` child per federation (simulate, host or join),
 * its events fed into the store, its stderr into the log. No vscode here: the log is an interface.
 */
import type { FederationKind } from '../state/phases.js';
import type { FederationStore } from '../state/federationStore.js';
import { describeCommand, startCliProcess } from './cliProcess.js';
import type { CliExit, CliProcess, SpawnFn } from './cliProcess.js';
import type { StreamEvent } from './jsonlLines.js';

/** Where log lines go (the "FedEx" output channel in the editor). */
export interface Log {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** How to start the CLI. */
export interface CliLocation {
  readonly nodePath: string;
  readonly cliPath: string;
  readonly killGraceMs?: number;
  readonly spawn?: SpawnFn;
}

/** One federation to start. */
export interface RunSpec {
  readonly id: string;
  readonly kind: Exclude<FederationKind, 'remote'>;
  readonly label: string;
  /** CLI arguments (from `simulateArgs`, `hostArgs` or `joinArgs`). */
  readonly args: readonly string[];
  readonly url?: string | null;
  readonly outDir?: string | null;
  readonly method?: string | null;
  readonly totalRounds?: number | null;
  /** A hosted federation started with `--manual-rounds` (its rounds wait for `send(id, 'start')`). */
  readonly manualRounds?: boolean;
  readonly cwd?: string;
  readonly env?: Readonly<Record<string, string>>;
}

/** Thrown when a federation with that id still runs. */
export class FederationBusyError extends Error {
  readonly code = 'E_BUSY';
  constructor(readonly id: string) {
    super(`federation ${id} is still running: stop it first`);
  }
}

/** Starts, tracks and stops the federation child processes. */
export class FederationRuns {
  private readonly processes = new Map<string, CliProcess>();

  /** `cli`: where the CLI is; one-shot commands (aggregate, export) start it from the same place. */
  constructor(private readonly store: FederationStore, readonly cli: CliLocation, private readonly log: Log) {}

  /** Starts a federation; its state (cleared) and events appear in the store under `spec.id`. */
  start(spec: RunSpec): CliProcess {
    if (this.processes.get(spec.id)?.running === true) throw new FederationBusyError(spec.id);
    this.store.add({ id: spec.id, kind: spec.kind, label: spec.label, url: spec.url ?? null, outDir: spec.outDir ?? null, method: spec.method ?? null, totalRounds: spec.totalRounds ?? null, manualRounds: spec.manualRounds === true,
      live: true });
    const tag = `[${spec.label}]`;
    this.log.info(`${tag} fedex ${describeCommand(spec.args)}`);
    let pending: StreamEvent[] = [];
    let lastLog: string | undefined;
    // Events of one stdout chunk arrive synchronously: hand them to the store as one batch.
    const flush = (): void => {
      const batch = pending;
      pending = [];
      this.store.apply(spec.id, batch);
    };
    const proc = startCliProcess(
      { nodePath: this.cli.nodePath, cliPath: this.cli.cliPath, args: spec.args, cwd: spec.cwd, env: spec.env, killGraceMs: this.cli.killGraceMs, spawn: this.cli.spawn },
      {
        onEvent: (event) => {
          if (pending.length === 0) queueMicrotask(flush);
          pending.push(event);
          if (event.type === 'error' && 'message' in event) this.log.error(`${tag} ${String(event.message)}`);
        },
        onMalformed: (line, reason) => this.log.warn(`${tag} ignored a stdout line that is not an event (${reason}): ${line}`),
        onStderr: (line) => {
          if (line.trim() !== '') lastLog = line;
          this.log.info(`${tag} ${line}`);
        },
        onExit: (exit) => {
          if (pending.length > 0) flush();
          this.store.exited(spec.id, exit, lastLog);
          const how = exitText(exit);
          if (exit.stopped || exit.code === 0) this.log.info(`${tag} ${how}`);
          else this.log.error(`${tag} ${how}`);
          if (this.processes.get(spec.id) === proc) this.processes.delete(spec.id);
        },
      },
    );
    this.processes.set(spec.id, proc);
    if (proc.pid !== undefined) this.log.info(`${tag} started (pid ${proc.pid})`);
    return proc;
  }

  /** True while the federation's process runs. */
  isRunning(id: string): boolean {
    return this.processes.get(id)?.running === true;
  }

  /** Ids of running federations. */
  runningIds(): string[] {
    return [...this.processes.entries()].filter(([, p]) => p.running).map(([id]) => id);
  }

  /** The process of a federation, if it runs. */
  process(id: string): CliProcess | undefined {
    return this.processes.get(id);
  }

  /** Writes one line to a federation's process (e.g. `start` to a manual-rounds host); false when it does not run. */
  send(id: string, line: string): boolean {
    const proc = this.processes.get(id);
    if (proc === undefined || !proc.send(line)) return false;
    this.log.info(`[${this.store.get(id)?.label ?? id}] > ${line}`);
    return true;
  }

  /** Stops one federation (SIGTERM, SIGKILL after the grace period); undefined when it was not running. */
  async stop(id: string, graceMs?: number): Promise<CliExit | undefined> {
    const proc = this.processes.get(id);
    if (proc === undefined || !proc.running) return undefined;
    this.log.info(`stopping ${this.store.get(id)?.label ?? id} (pid ${proc.pid ?? '?'})`);
    return proc.stop(graceMs);
  }

  /** Stops everything (on deactivate). */
  async stopAll(graceMs?: number): Promise<void> {
    await Promise.all(this.runningIds().map((id) => this.stop(id, graceMs)));
  }
}

/** A sentence about how a process ended. */
export function exitText(exit: CliExit): string {
  if (exit.error !== undefined) return `could not start fedex: ${exit.error}`;
  if (exit.stopped) return `stopped${exit.signal !== null ? ` (${exit.signal})` : ''}`;
  if (exit.signal !== null) return `killed by ${exit.signal}`;
  return exit.code === 0 ? 'finished' : `exited with code ${String(exit.code)}`;
}
