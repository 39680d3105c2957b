/**
 * The run directory: everything the coordinator needs to resume after a crash with no completed
 * round lost. `state.json` is the single commit point: tensor files are written first (each to a
 * temporary name, fsync, rename), then `state.json` the same way, then the directory is fsynced.
 * A crash at any moment leaves the previous `state.json` naming complete files; leftover
 * temporaries are ignored and removed on resume.
 *
 *   state.json                   plan, round, revision, registry, metrics history, file names
 *   token                        the join token (mode 0600)
 *   global-r000003.safetensors   global adapter after round 3 (wire names `<module>.lora_A/B`)
 *   base-v000002.safetensors     float32 master copy of the adapted base weights at revision 2
 *   residuals/step-v000002.safetensors  the step revision 1 → 2 (wire names, entries in metadata)
 *   events.jsonl                 the event stream
 */
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LoraFactors } from '../../core/lora.js';
import type { Matrix } from '../../core/tensor.js';
import { fsyncDir, processAlive, writeFileAtomic } from '../../formats/atomicFile.js';
import { withSafetensors } from '../../formats/safetensors.js';
import { writeSafetensors, type TensorToWrite } from '../../formats/safetensorsWriter.js';
import { ROLE_RESIDUAL_DENSE, ROLE_RESIDUAL_P, ROLE_RESIDUAL_Q, tensorName, type ResidualEntry } from '../protocol/adapterTensors.js';
import { adapterToTensors, sbAdapterToTensors } from '../shared/adapterWire.js';
import { storedShape } from '../shared/baseWeights.js';
import type { FederationPlan } from './config.js';
import { CoordinatorError } from './errors.js';
import type { RoundRecord } from './events.js';
import { stepTensors, type ResidualStep, type StepModule } from './residuals.js';

/** The file of the step that produced `revision` (residuals/step-v000003.safetensors). */
export function stepFile(dir: string, revision: number): string {
  return join(dir, 'residuals', `step-v${pad(revision)}.safetensors`);
}

/** Reads and checks a run directory's state.json without taking its lock (readers such as `fedex export`). */
export async function readRunState(dir: string): Promise<PersistedState> {
  const path = join(dir, STATE);
  let state: PersistedState;
  try {
    state = JSON.parse(await readFile(path, 'utf8')) as PersistedState;
  } catch (err) {
    throw new CoordinatorError('RESUME_FAILED', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (state.format !== 'fedex-coordinator-run' || state.version !== 1) throw new CoordinatorError('RESUME_FAILED', `${path} is not a version-1 FedEx coordinator state`);
  return state;
}

/** A client the coordinator has seen, kept across reconnects and restarts. */
export interface ClientRecord {
  readonly clientId: string;
  readonly name: string;
  readonly sessionId: string;
  readonly firstSeen: number;
  readonly lastSeen: number;
  readonly roundsParticipated: number;
}

/** The content of state.json. */
export interface PersistedState {
  readonly format: 'fedex-coordinator-run';
  readonly version: 1;
  readonly plan: FederationPlan;
  /** Last closed round (0 before the first). */
  readonly round: number;
  readonly revision: number;
  readonly roundsCompleted: number;
  readonly globalFile: string;
  readonly baseFile: string;
  readonly registry: readonly ClientRecord[];
  readonly history: readonly RoundRecord[];
  readonly done: { readonly reason: 'completed' | 'failed'; readonly at: number } | null;
  readonly updatedAt: number;
}

/** What `commit` writes besides state.json. */
export interface CommitFiles {
  readonly global?: ReadonlyMap<string, LoraFactors>;
  readonly base?: ReadonlyMap<string, Matrix<Float32Array>>;
  readonly step?: ResidualStep;
}

const STATE = 'state.json';
const TEMP = /\.(tmp|partial)-/;
const pad = (n: number): string => String(n).padStart(6, '0');

const LOCK = 'host.lock';
/** Lock files this process holds (a crashed coordinator in this process leaves none behind: kill() releases). */
const heldLocks = new Set<string>();

/**
 * Takes the run directory's lock (`host.lock`, holding the pid): one coordinator per run directory.
 * A lock whose process is gone (a crash) is taken over; a live one is refused with `RUN_DIR_LOCKED`
 * naming its pid. Returns the release function.
 */
async function lockRunDir(dir: string): Promise<() => Promise<void>> {
  const path = join(dir, LOCK);
  for (let attempt = 0;; attempt++) {
    try {
      await writeFile(path, `${process.pid}\n`, { flag: 'wx' });
      heldLocks.add(path);
      return async () => {
        if (!heldLocks.delete(path)) return;
        await rm(path, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
    }
    const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
    const live = Number.isInteger(pid) && pid > 0 && processAlive(pid) && (pid !== process.pid || heldLocks.has(path));
    if (live) throw new CoordinatorError('RUN_DIR_LOCKED', `run directory ${dir} is in use by another coordinator (pid ${pid}, ${path})`);
    await rm(path, { force: true });
  }
}

/** The run directory of one federation. */
export class RunStore {
  private release: (() => Promise<void>) | undefined;

  private constructor(readonly dir: string) {}

  /** Gives up the run directory's lock (at close, or at a crash drill). */
  async unlock(): Promise<void> {
    const release = this.release;
    this.release = undefined;
    await release?.();
  }

  get eventsPath(): string {
    return join(this.dir, 'events.jsonl');
  }

  /** A new run: creates the directory; `RUN_DIR_IN_USE` when it already holds a state.json. */
  static async create(dir: string): Promise<RunStore> {
    await mkdir(join(dir, 'residuals'), { recursive: true });
    const release = await lockRunDir(dir);
    if (await stat(join(dir, STATE)).then(() => true, () => false)) {
      await release();
      throw new CoordinatorError('RUN_DIR_IN_USE', `run directory ${dir} already holds a federation (state.json); resume it or choose another directory`);
    }
    const store = new RunStore(dir);
    store.release = release;
    return store;
  }

  /** An existing run, for resuming: removes temporaries a crash left behind. */
  static async open(dir: string): Promise<RunStore> {
    if (!(await stat(join(dir, STATE)).then(() => true, () => false))) {
      throw new CoordinatorError('RESUME_FAILED', `run directory ${dir} has no state.json: nothing to resume`);
    }
    const release = await lockRunDir(dir);
    for (const sub of [dir, join(dir, 'residuals')]) {
      const names = await readdir(sub).catch(() => [] as string[]);
      for (const name of names) if (TEMP.test(name)) await rm(join(sub, name), { force: true });
    }
    const store = new RunStore(dir);
    store.release = release;
    return store;
  }

  async writeToken(token: string): Promise<void> {
    await writeFileAtomic(join(this.dir, 'token'), `${token}\n`, { mode: 0o600 });
  }

  async readToken(): Promise<string> {
    try {
      return (await readFile(join(this.dir, 'token'), 'utf8')).trim();
    } catch (err) {
      throw new CoordinatorError('RESUME_FAILED', `cannot read the join token from ${join(this.dir, 'token')}: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * Records that the run admits clients by enrolled key, from the registry at `clientsFile`
   * (absolute), so that `--resume` can never fall back to the shared token by omission.
   */
  async writeAuth(clientsFile: string): Promise<void> {
    await writeFileAtomic(join(this.dir, 'auth.json'), `${JSON.stringify({ mode: 'keys', clientsFile }, null, 2)}\n`);
  }

  /** The registry path `writeAuth` recorded; undefined for a run that uses the shared token. */
  async readAuth(): Promise<string | undefined> {
    let text: string;
    try {
      text = await readFile(join(this.dir, 'auth.json'), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new CoordinatorError('RESUME_FAILED', `cannot read ${join(this.dir, 'auth.json')}: ${(err as Error).message}`, { cause: err });
    }
    const o = JSON.parse(text) as { mode?: unknown; clientsFile?: unknown };
    if (o.mode !== 'keys' || typeof o.clientsFile !== 'string') throw new CoordinatorError('RESUME_FAILED', `${join(this.dir, 'auth.json')} is malformed (expected {"mode": "keys", "clientsFile": …})`);
    return o.clientsFile;
  }

  /** File names for a state at `round` / `revision`. */
  static fileNames(round: number, revision: number): { globalFile: string; baseFile: string } {
    return { globalFile: `global-r${pad(round)}.safetensors`, baseFile: `base-v${pad(revision)}.safetensors` };
  }

  /** Writes the files, then state.json (the commit point), then removes files no state refers to. */
  async commit(state: PersistedState, files: CommitFiles): Promise<void> {
    try {
      if (files.step !== undefined) {
        const { entries, tensors } = stepTensors(files.step);
        const map = new Map<string, TensorToWrite>(tensors.map((t) => [t.name, { dtype: 'F32', shape: t.shape, data: t.data }]));
        await writeSafetensors(stepFile(this.dir, files.step.revision), map, { 'fedex.entries': JSON.stringify(entries), 'fedex.round': String(files.step.round) });
        await fsyncDir(join(this.dir, 'residuals'));
      }
      if (files.global !== undefined) {
        // Fed-SB: A, B and R (lora_R), so a resumed run holds the frozen factors and R̄ (docs/protocol.md §5.7).
        const tensors = state.plan.method === 'fedsb' ? sbAdapterToTensors(state.plan.layout, files.global, true) : adapterToTensors(state.plan.layout, files.global);
        await writeSafetensors(join(this.dir, state.globalFile), new Map(tensors.map((t) => [t.name, { dtype: 'F32', shape: t.shape, data: t.data }])));
      }
      if (files.base !== undefined) {
        const map = new Map<string, TensorToWrite>();
        for (const m of state.plan.layout) {
          const w = files.base.get(m.module)!;
          map.set(`${m.module}.weight`, { dtype: 'F32', shape: w.shape, data: w.data });
        }
        await writeSafetensors(join(this.dir, state.baseFile), map);
      }
      await writeFileAtomic(join(this.dir, STATE), `${JSON.stringify(state, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 1)}\n`);
    } catch (err) {
      throw new CoordinatorError('PERSIST_FAILED', `cannot persist round ${state.round} to ${this.dir}: ${(err as Error).message}`, { cause: err });
    }
    for (const name of await readdir(this.dir)) {
      if (/^(global-r|base-v)\d+\.safetensors$/.test(name) && name !== state.globalFile && name !== state.baseFile) await rm(join(this.dir, name), { force: true });
    }
  }

  /** Reads state.json and the tensors it names, checking them against the plan's layout. */
  async load(): Promise<{ state: PersistedState; global: Map<string, LoraFactors>; base: Map<string, Matrix<Float32Array>> }> {
    const state = await readRunState(this.dir);
    const layout = state.plan.layout;
    const global = new Map<string, LoraFactors>();
    const base = new Map<string, Matrix<Float32Array>>();
    try {
      await withSafetensors(join(this.dir, state.globalFile), async (r) => {
        for (const m of layout) {
          const sb = state.plan.method === 'fedsb' ? { r: await r.readMatrix(`${m.module}.lora_R`) } : {};
          global.set(m.module, { a: await r.readMatrix(`${m.module}.lora_A`), b: await r.readMatrix(`${m.module}.lora_B`), ...sb });
        }
      });
      await withSafetensors(join(this.dir, state.baseFile), async (r) => {
        for (const m of layout) base.set(m.module, await r.readMatrix(`${m.module}.weight`));
      });
    } catch (err) {
      throw new CoordinatorError('RESUME_FAILED', `run directory ${this.dir}: ${(err as Error).message}`, { cause: err });
    }
    for (const m of layout) {
      const { a, b, r } = global.get(m.module)!;
      const w = base.get(m.module)!;
      const [rows, cols] = storedShape(m);
      const badR = r !== undefined && (r.shape[0] !== m.rank || r.shape[1] !== m.rank);
      if (badR || a.shape[0] !== m.rank || a.shape[1] !== m.in || b.shape[0] !== m.out || b.shape[1] !== m.rank || w.shape[0] !== rows || w.shape[1] !== cols) {
        throw new CoordinatorError('RESUME_FAILED', `run directory ${this.dir}: tensors of module ${m.module} do not match the layout (${m.out}×${m.in}, rank ${m.rank})`);
      }
    }
    return { state, global, base };
  }

  /** Reads the step that produced `revision`. */
  async loadStep(revision: number): Promise<ResidualStep> {
    const path = stepFile(this.dir, revision);
    try {
      return await withSafetensors(path, async (r) => {
        const entries = JSON.parse(r.metadata['fedex.entries'] ?? '[]') as ResidualEntry[];
        const modules: StepModule[] = [];
        for (const e of entries) {
          modules.push(e.form === 'factored'
            ? { module: e.module, form: 'factored', scale: e.scale, p: await r.readMatrix(tensorName(e.module, ROLE_RESIDUAL_P)), q: await r.readMatrix(tensorName(e.module, ROLE_RESIDUAL_Q)) }
            : { module: e.module, form: 'dense', scale: e.scale, d: await r.readMatrix(tensorName(e.module, ROLE_RESIDUAL_DENSE)) });
        }
        return { revision, round: Number(r.metadata['fedex.round'] ?? 0), modules };
      });
    } catch (err) {
      throw new CoordinatorError('RESUME_FAILED', `cannot read base revision ${revision} from ${path}: ${(err as Error).message}`, { cause: err });
    }
  }
}
