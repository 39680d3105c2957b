/**
 * `--model`, resolved the same way by every command: absent, the shipped default model of this
 * package (src/trainer/defaultModel.ts); a folder with a config.json as given; a relative path that
 * is not one from the working directory, the same path under the package root (so
 * `--model models/tiny-gpt2` works from any directory).
 */
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { defaultModelDir, DEFAULT_MODEL_NAME } from '../trainer/defaultModel.js';
import { usageError } from './errors.js';

/** How `--help` names the default model. */
export const DEFAULT_MODEL = `models/${DEFAULT_MODEL_NAME}`;

/** The model folder `--model` names (see the module comment); throws a usage error naming the flag. */
export function resolveModelDir(given: string | undefined, command: string): string {
  let shipped: string | undefined;
  try {
    shipped = defaultModelDir();
  } catch (err) {
    if (given === undefined) throw usageError(`fedex ${command}: ${(err as Error).message}`);
  }
  if (given === undefined) return shipped!;
  if (existsSync(join(given, 'config.json'))) return resolve(given);
  if (!isAbsolute(given) && shipped !== undefined) {
    const underPackage = join(dirname(dirname(shipped)), given);
    if (existsSync(join(underPackage, 'config.json'))) return underPackage;
  }
  throw usageError(`fedex ${command}: --model '${given}' is not a model folder (no config.json in it).`);
}
