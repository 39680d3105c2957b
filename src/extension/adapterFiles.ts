/**
 * File helpers for the adapter commands (no vscode): finding PEFT adapter folders in a run's output,
 * naming new output folders, summarising `fedex aggregate --json` for a notification.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** A folder is a PEFT adapter when it holds both of these. */
const PEFT_FILES = ['adapter_config.json', 'adapter_model.safetensors'] as const;

/** True when `dir` is a PEFT adapter folder. */
export async function isAdapterFolder(dir: string): Promise<boolean> {
  const found = await Promise.all(PEFT_FILES.map((f) => stat(join(dir, f)).then((s) => s.isFile(), () => false)));
  return found.every(Boolean);
}

/**
 * PEFT adapter folders under `root` (itself included), breadth-first, at most `maxDepth` levels
 * down and `limit` results; symbolic links are not followed. Folders named like a final/global
 * adapter come first, then by path descending (the latest `round-NNN` first).
 */
export async function findAdapterFolders(root: string, maxDepth = 4, limit = 200): Promise<string[]> {
  const found: string[] = [];
  let level = [root];
  for (let depth = 0; depth <= maxDepth && level.length > 0 && found.length < limit; depth++) {
    const next: string[] = [];
    for (const dir of level) {
      if (await isAdapterFolder(dir)) found.push(dir);
      const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
      for (const e of entries) if (e.isDirectory() && !e.isSymbolicLink()) next.push(join(dir, e.name));
    }
    level = next.sort();
  }
  const rank = (p: string): number => (/final|global/i.test(p) ? 0 : 1);
  return found.slice(0, limit).sort((a, b) => rank(a) - rank(b) || b.localeCompare(a));
}

/** `20250101-120304`: a sortable local timestamp for folder names. */
export function runStamp(date: Date = new Date()): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${date.getFullYear()}${p(date.getMonth() + 1)}${p(date.getDate())}-${p(date.getHours())}${p(date.getMinutes())}${p(date.getSeconds())}`;
}

/** One sentence about an aggregation from the JSON `fedex aggregate --json` prints (defensive: fields may be missing). */
export function summarizeAggregateReport(json: string): string {
  let report: unknown;
  try {
    report = JSON.parse(json);
  } catch {
    return 'Aggregation finished (its report could not be read).';
  }
  const r = report as { method?: unknown; modules?: unknown; exactMethod?: unknown; summary?: { total?: { relativeDeviation?: unknown }; maxExactnessRelativeError?: unknown; allWithinTolerance?: unknown } };
  const modules = Array.isArray(r.modules) ? r.modules.length : 0;
  const method = typeof r.method === 'string' ? r.method : 'aggregate';
  const dev = r.summary?.total?.relativeDeviation;
  const parts = [`${method}: ${modules} modules aggregated.`];
  if (typeof dev === 'number') parts.push(`Plain averaging would lose ${(dev * 100).toPrecision(3)}% of the ideal update.`);
  if (r.exactMethod === true && typeof r.summary?.maxExactnessRelativeError === 'number') {
    parts.push(r.summary.allWithinTolerance === true
      ? `Exact to float32 round-off (max relative error ${r.summary.maxExactnessRelativeError.toExponential(1)}).`
      : `Outside float32 tolerance (max relative error ${r.summary.maxExactnessRelativeError.toExponential(1)}).`);
  }
  return parts.join(' ');
}
