/**
 * Crash-safe file replacement: write a temporary sibling, fsync it, rename it over the target,
 * fsync the directory. A reader sees the old file or the new one, never a half-written one.
 */
import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';

/** Flushes a directory's entries (a rename is durable only after this). */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes `data` to `path` atomically; temporaries are named `<path>.partial-<pid>-<hex>`. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, options: { mode?: number } = {}): Promise<void> {
  const tmp = `${path}.partial-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fh = await open(tmp, 'wx', options.mode ?? 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  await rename(tmp, path);
  await fsyncDir(dirname(path));
}
