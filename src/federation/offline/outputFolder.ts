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

/** The file-system calls `commitOutput` makes (a seam for tests of failures that a real disk rarely shows). */
export interface CommitOps {
  rename(from: string, to: string): Promise<void>;
  rm(path: string, options: { recursive: true; force: true }): Promise<void>;
}

/**
 * Moves the finished temporary folder to `out`. An `out` that appeared meanwhile is refused unless
 * `force`; an existing one (--force) is first moved aside, and if the new folder then cannot take
 * its place the previous output is moved back, so a failed commit leaves `out` as it was (the error
 * names both folders). Returns null, or the path of the previous output when the commit succeeded
 * but that folder could not be removed.
 */
export async function commitOutput(tmp: string, out: string, force: boolean, ops: CommitOps = { rename, rm }): Promise<string | null> {
  const exists = (await stat(out).catch(() => null)) !== null;
  if (!exists) {
    await ops.rename(tmp, out);
    return null;
  }
  if (!force) throw new AggregationInputError('OUTPUT_EXISTS', `output folder '${out}' appeared while aggregating; pass --force to replace it`);
  const old = `${out}.old-${randomBytes(4).toString('hex')}`;
  await ops.rename(out, old);
  try {
    await ops.rename(tmp, out);
  } catch (err) {
    const why = (err as Error).message;
    try {
      await ops.rename(old, out);
    } catch (restoreErr) {
      throw new AggregationInputError('OUTPUT_COMMIT', `could not move the new output into '${out}' (${why}), and the previous output could not be moved back: it is in '${old}' (${(restoreErr as Error).message})`);
    }
    throw new AggregationInputError('OUTPUT_COMMIT', `could not move the new output into '${out}' (${why}); the previous output is unchanged`);
  }
  try {
    await ops.rm(old, { recursive: true, force: true });
    return null;
  } catch {
    return old;
  }
}
