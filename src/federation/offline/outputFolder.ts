/**
 * The output folder of offline aggregation: written to a temporary sibling, renamed into place
 * only when everything succeeded, so a failed run leaves nothing behind.
 */
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { AggregationInputError } from './errors.js';

/**
 * Creates the temporary sibling of `out`. Returns it and what to remove on failure: the first
 * parent folder this call created (so a failed run leaves no new folders), else the sibling.
 */
export async function prepareOutput(out: string, force: boolean): Promise<{ tmp: string; cleanup: string }> {
  const exists = (await stat(out).catch(() => null)) !== null;
  if (exists && !force) throw new AggregationInputError('OUTPUT_EXISTS', `output folder '${out}' already exists; pass --force to replace it`);
  const tmp = join(dirname(out), `.${basename(out)}.partial-${process.pid}-${randomBytes(4).toString('hex')}`);
  const first = await mkdir(tmp, { recursive: true });
  return { tmp, cleanup: first ?? tmp };
}

export async function commitOutput(tmp: string, out: string): Promise<void> {
  const exists = (await stat(out).catch(() => null)) !== null;
  if (!exists) {
    await rename(tmp, out);
    return;
  }
  const old = `${out}.old-${randomBytes(4).toString('hex')}`;
  await rename(out, old);
  await rename(tmp, out);
  await rm(old, { recursive: true, force: true });
}
