/**
 * Which model folder a run directory's federation was started on (`model-source.json`): what
 * `fedex host --resume` offers and writes final/model from, and what `fedex export` takes as the
 * original base. Null for the synthetic model. The folder is recorded as an absolute path.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../../formats/atomicFile.js';

export const MODEL_SOURCE_FILE = 'model-source.json';

/** Records the run's model folder (null: the synthetic model). */
export async function recordModelSource(runDir: string, modelDir: string | null): Promise<void> {
  await writeFileAtomic(join(runDir, MODEL_SOURCE_FILE), `${JSON.stringify({ modelDir: modelDir === null ? null : resolve(modelDir) })}\n`);
}

/** The recorded model folder: a path, null for the synthetic model, undefined when the run recorded none. */
export async function readModelSource(runDir: string): Promise<string | null | undefined> {
  const text = await readFile(join(runDir, MODEL_SOURCE_FILE), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const dir = (JSON.parse(text) as { modelDir?: unknown }).modelDir;
  return typeof dir === 'string' ? dir : null;
}
