/**
 * How much memory a trainer may plan for: the setup's `memoryBudgetBytes`, or a share of the
 * memory this process can still get. "Can still get" is the smaller of the system's available
 * memory (`os.freemem()`, MemAvailable on Linux) and, inside a container, the cgroup's limit minus
 * its usage: the OOM killer acts on whichever runs out first.
 *
 * onnxruntime offers no portable query of a GPU's free memory, so cuda and webgpu get the same
 * host rule unless the setup gives a budget (the source line says so).
 */
import { readFileSync } from 'node:fs';
import { freemem } from 'node:os';
import type { Device } from '../runtime/session.js';

/** Share of the available memory the default budget takes (the rest: other programs, estimate error). */
export const DEFAULT_BUDGET_SHARE = 0.6;

/** Limits at or above this are "no limit" (cgroup v1 writes 2^63 rounded down to a page). */
const NO_LIMIT = 2 ** 60;

/** Where the budget figures come from; tests pass their own. */
export interface MemoryProbe {
  /** Bytes the system can still hand out (Linux: MemAvailable). */
  freeBytes(): number;
  /** The memory cgroup's limit and usage in bytes, or undefined outside a limited cgroup. */
  cgroup(): { readonly limit: number; readonly usage: number } | undefined;
}

function readNumber(path: string, read: (path: string) => string): number | undefined {
  try {
    const text = read(path).trim();
    if (text === 'max') return Number.POSITIVE_INFINITY;
    const n = Number(text);
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

/** The cgroup v2 (`memory.max`/`memory.current`) or v1 (`memory.limit_in_bytes`/`memory.usage_in_bytes`) figures, if limited. */
export function readCgroupMemory(read: (path: string) => string = (p) => readFileSync(p, 'utf8')): { limit: number; usage: number } | undefined {
  const pairs = [
    ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory.current'],
    ['/sys/fs/cgroup/memory/memory.limit_in_bytes', '/sys/fs/cgroup/memory/memory.usage_in_bytes'],
  ] as const;
  for (const [limitPath, usagePath] of pairs) {
    const limit = readNumber(limitPath, read);
    const usage = readNumber(usagePath, read);
    if (limit !== undefined && usage !== undefined) return limit < NO_LIMIT ? { limit, usage } : undefined;
  }
  return undefined;
}

/** The probe of this machine. */
export function systemMemoryProbe(): MemoryProbe {
  return { freeBytes: () => freemem(), cgroup: () => readCgroupMemory() };
}

/** A memory budget and where it came from (for messages). */
export interface MemoryBudget {
  readonly bytes: number;
  /** e.g. `as set by --memory-budget / memoryBudgetBytes` or `60 % of the 16.2 GB of memory available`. */
  readonly source: string;
}

/** Bytes as `9.8 GB` (decimal gigabytes, the unit of `--memory-budget`), or MB below 1 GB. */
export function formatBytes(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(1)} GB` : `${Math.round(bytes / 1e6)} MB`;
}

/** The budget for a setup: its own, else {@link DEFAULT_BUDGET_SHARE} of what `probe` says is available. */
export function memoryBudget(given: number | undefined, device: Device, probe: MemoryProbe): MemoryBudget {
  if (given !== undefined) return { bytes: given, source: 'as set by --memory-budget / memoryBudgetBytes' };
  const free = probe.freeBytes();
  const cg = probe.cgroup();
  const inCgroup = cg !== undefined && cg.limit - cg.usage < free;
  const available = inCgroup ? Math.max(0, cg.limit - cg.usage) : free;
  const share = `${Math.round(DEFAULT_BUDGET_SHARE * 100)} % of the ${formatBytes(available)} ${inCgroup ? "left under this container's memory limit" : 'of memory available'}`;
  const gpu = device === 'cpu' ? '' : ` (host memory: there is no portable query of ${device} memory; set a budget for the GPU)`;
  return { bytes: Math.floor(available * DEFAULT_BUDGET_SHARE), source: `${share}${gpu}` };
}
