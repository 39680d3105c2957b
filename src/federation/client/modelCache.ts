/**
 * The client's cache of base models fetched from a coordinator (docs/protocol.md §8). One folder
 * per content hash, `<root>/<hash>/`, holding the model exactly as `modelManifest` hashes it, so it
 * loads like any model folder. A download is written to `<root>/<hash>.partial/` under the lock
 * file `<root>/<hash>.lock` (the downloading process's pid; a lock whose process is gone is taken
 * over, and its partial files resumed), and becomes `<root>/<hash>/` by one rename once every
 * file's size and SHA-256 and the manifest hash check out: a folder named by a hash is complete.
 *
 * Nothing the coordinator sends becomes a path: the folder name is the hash this client computed
 * from the manifest, and each file is stored under a name this client picks from a fixed list
 * (`cacheFileName`); a manifest naming any other file is refused.
 */
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, truncate, unlink, type FileHandle } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { baseModelHash, type ModelFile } from '../protocol/baseModel.js';
import { ClientError } from './errors.js';
import { manifestNames, modelManifest, sha256File, type ModelManifest } from '../shared/modelBase.js';
import { processAlive } from '../../formats/atomicFile.js';

/** The files a cached model may hold besides weight shards (the files `modelManifest` hashes). */
export const CACHE_FILE_NAMES: readonly string[] = ['config.json', 'model.safetensors', 'model.safetensors.index.json', 'tokenizer.json', 'tokenizer_config.json'];
const SHARD = /^model-(\d{5})-of-(\d{5})\.safetensors$/;
const HASH = /^[0-9a-f]{64}$/;
/** A lock file with no pid yet is a process that is just taking it; older than this, it is stale. */
const EMPTY_LOCK_GRACE_MS = 10_000;

/**
 * The name this client stores manifest file `name` under: one of `CACHE_FILE_NAMES`, or a weight
 * shard `model-00001-of-00003.safetensors` (rebuilt from its digits); null for anything else.
 */
export function cacheFileName(name: string): string | null {
  const fixed = CACHE_FILE_NAMES.find((n) => n === name);
  if (fixed !== undefined) return fixed;
  const m = SHARD.exec(name);
  return m === null ? null : `model-${m[1]}-of-${m[2]}.safetensors`;
}

/** `~/.cache/fedex/models`. */
export function defaultModelCacheDir(): string {
  return join(homedir(), '.cache', 'fedex', 'models');
}

function checkHash(hash: string): string {
  if (!HASH.test(hash)) throw new ClientError('E_MODEL_TRANSFER', `model cache: '${hash}' is not a SHA-256 content hash`);
  return hash;
}

/** A cache of base models under `root`. */
export class ModelCache {
  constructor(readonly root: string) {}

  /** The folder of a complete model. */
  dirOf(hash: string): string {
    return join(this.root, checkHash(hash));
  }

  /**
   * The cached model of `hash`, verified (every file hashed again, as for any local model), or null.
   * An entry that no longer has that hash is removed.
   */
  async lookup(hash: string): Promise<ModelManifest | null> {
    const dir = this.dirOf(hash);
    if (!existsSync(dir)) return null;
    const manifest = await modelManifest(dir).catch(() => null);
    if (manifest !== null && manifest.hash === hash) return manifest;
    await rm(dir, { recursive: true, force: true });
    return null;
  }

  /** Takes the download lock of `hash`; null while another live process (or this one) holds it. */
  async lock(hash: string): Promise<ModelDownload | null> {
    await mkdir(this.root, { recursive: true });
    const path = `${this.dirOf(hash)}.lock`;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const handle = await open(path, 'wx');
        await handle.writeFile(String(process.pid));
        await handle.close();
        return new ModelDownload(this, hash, path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const text = await readFile(path, 'utf8').catch(() => null);
      if (text === null) continue;
      const pid = Number(text);
      const stale = text === ''
        ? Date.now() - (await stat(path).then((s) => s.mtimeMs, () => Date.now())) > EMPTY_LOCK_GRACE_MS
        : !Number.isInteger(pid) || pid <= 0 || !processAlive(pid);
      if (!stale) return null;
      await unlink(path).catch(() => undefined);
    }
    return null;
  }
}

/**
 * One download into `<root>/<hash>.partial/`, holding the lock. Files are appended in order, so a
 * partial file's size is where its download resumes.
 */
export class ModelDownload {
  readonly partialDir: string;
  private names: string[] = [];
  private handle: { index: number; file: FileHandle } | undefined;

  constructor(private readonly cache: ModelCache, readonly hash: string, private readonly lockPath: string) {
    this.partialDir = `${cache.dirOf(hash)}.partial`;
  }

  /**
   * Prepares the partial folder for `files` (stored under `names`) and returns how many bytes of
   * each are already there; a file longer than expected starts again.
   */
  async prepare(files: readonly ModelFile[], names: readonly string[]): Promise<number[]> {
    await this.closeFile();
    this.names = [...names];
    await mkdir(this.partialDir, { recursive: true });
    const have: number[] = [];
    for (const [i, f] of files.entries()) {
      const path = join(this.partialDir, names[i]);
      const size = await stat(path).then((s) => s.size, () => -1);
      if (size > f.bytes) await truncate(path, 0);
      if (size < 0) await (await open(path, 'w')).close();
      have.push(size > f.bytes ? 0 : Math.max(0, size));
    }
    return have;
  }

  /** Appends bytes to file `index` (files are written one after the other). */
  async append(index: number, bytes: Uint8Array): Promise<void> {
    if (this.handle?.index !== index) {
      await this.closeFile();
      this.handle = { index, file: await open(join(this.partialDir, this.names[index]), 'a') };
    }
    let written = 0;
    while (written < bytes.length) written += (await this.handle.file.write(bytes, written, bytes.length - written)).bytesWritten;
  }

  /**
   * Checks every file's size and SHA-256 against `files`, that the folder hashes as a model to
   * `hash`, then renames it to `<root>/<hash>/`. On a mismatch the partial folder is deleted and
   * `E_MODEL_TRANSFER` names the file.
   */
  async commit(files: readonly ModelFile[]): Promise<ModelManifest> {
    await this.closeFile();
    const stored: ModelFile[] = [];
    try {
      for (const [i, f] of files.entries()) {
        const path = join(this.partialDir, this.names[i]);
        const bytes = (await stat(path)).size;
        const sha256 = await sha256File(path);
        if (bytes !== f.bytes || sha256 !== f.sha256) {
          throw new ClientError('E_MODEL_TRANSFER', `base model file ${i} (${this.names[i]}) arrived with ${bytes} bytes and SHA-256 ${sha256}; the coordinator's manifest says ${f.bytes} bytes, ${f.sha256}`);
        }
        stored.push({ name: this.names[i], bytes, sha256 });
      }
      const order = await manifestNames(this.partialDir).catch((err: Error) => {
        throw new ClientError('E_MODEL_TRANSFER', `the fetched base model is not a model folder: ${err.message}`);
      });
      if (order.join('\n') !== this.names.join('\n') || baseModelHash(stored) !== this.hash) {
        throw new ClientError('E_MODEL_TRANSFER', `the fetched files do not hash to base model ${this.hash} as a model folder (its files in hash order: ${order.join(', ')})`);
      }
    } catch (err) {
      await this.discard();
      throw err;
    }
    const dir = this.cache.dirOf(this.hash);
    try {
      await rename(this.partialDir, dir);
    } catch (err) {
      // Another process completed the same model first: keep its copy.
      await this.discard();
      const existing = await this.cache.lookup(this.hash);
      if (existing === null) throw err;
      return existing;
    }
    return { dir, files: stored, hash: this.hash };
  }

  /** Deletes the partial folder. */
  async discard(): Promise<void> {
    await this.closeFile();
    await rm(this.partialDir, { recursive: true, force: true });
  }

  /** Releases the lock (the partial folder stays, to be resumed). */
  async release(): Promise<void> {
    await this.closeFile();
    await unlink(this.lockPath).catch(() => undefined);
  }

  private async closeFile(): Promise<void> {
    const h = this.handle;
    this.handle = undefined;
    await h?.file.close();
  }
}
