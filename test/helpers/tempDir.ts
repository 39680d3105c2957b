// Temporary folders for tests that write files, and checks that a failed run left nothing behind.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';

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
 * A temp folder for the enclosing `describe` (or file): made before its first test, removed with
 * everything in it after its last. Read `.path` inside hooks and tests, not while the suite is built.
 */
export function suiteTempDir(prefix: string): { readonly path: string } {
  let dir: TempDir | undefined;
  before(async () => {
    dir = await makeTempDir(prefix);
  });
  after(() => dir?.remove());
  return {
    get path(): string {
      if (dir === undefined) throw new Error(`suiteTempDir('${prefix}'): .path read before the suite's before() hook ran`);
      return dir.path;
    },
  };
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
