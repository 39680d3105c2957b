// Temporary folders for tests that write files, and checks that a failed run left nothing behind.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';

/** A fresh folder under the OS temp dir; `remove()` deletes it and everything in it. */
export interface TempDir {
  readonly path: string;
  remove(): Promise<void>;
}

export async function makeTempDir(prefix: string): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), `fedex-${prefix}-`));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/**
 * A temp folder for the enclosing `describe` (or file), made now, while the suite is built, and
 * removed with everything in it after the suite's last test. Made at once rather than in a
 * `before()` hook because Node 20 starts a file's top-level `before()` hooks together: a hook that
 * reads the path could run before the hook that made it.
 */
export function suiteTempDir(prefix: string): TempDir {
  const path = mkdtempSync(join(tmpdir(), `fedex-${prefix}-`));
  const dir: TempDir = { path, remove: () => rm(path, { recursive: true, force: true }) };
  after(() => dir.remove());
  return dir;
}

/** Sorted entry names of a folder (hidden ones included). */
export async function entries(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

/** Open file descriptors of this process (Linux /proc), or null where that cannot be read. */
export function openFdCount(): number | null {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return null;
  }
}
