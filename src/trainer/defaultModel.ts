/**
 * The shipped default model, `models/tiny-gpt2/` at the package root (made by
 * scripts/make-default-model.ts): what `fedex train` and `fedex eval` use without `--model`.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Folder name of the default model under `models/`. */
export const DEFAULT_MODEL_NAME = 'tiny-gpt2';

/** This module's folder, from sources (ESM) or from a CommonJS bundle in dist/. */
function hereDir(): string {
  if (typeof __filename === 'string' && __filename.length > 0) return dirname(__filename);
  return dirname(fileURLToPath(import.meta.url));
}

/**
 * `models/tiny-gpt2` of the package this code belongs to, found by walking up from this module
 * (src/trainer/ or dist/); throws naming the folders searched when it is not there.
 */
export function defaultModelDir(): string {
  const searched: string[] = [];
  let dir = hereDir();
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'models', DEFAULT_MODEL_NAME);
    if (existsSync(join(candidate, 'config.json'))) return candidate;
    searched.push(candidate);
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new Error(`the default model is missing (looked in ${searched.join(', ')}); give --model <dir> or run 'npx tsx scripts/make-default-model.ts'`);
}
