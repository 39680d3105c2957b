/**
 * The clients a coordinator admits by key (`fedex host --clients clients.json`, docs/security.md):
 * one JSON file listing each client's id and Ed25519 public key, and when it was revoked. The
 * operator edits it with `fedex clients add|revoke|list` while the coordinator runs; the
 * coordinator re-reads it whenever it changes (checked at every hello and every second), so a
 * revocation takes effect at once, and revoked clients still connected are disconnected. Revoked
 * entries stay in the file as a record.
 */
import { readFile, stat } from 'node:fs/promises';
import type { KeyObject } from 'node:crypto';
import { writeFileAtomic } from '../../formats/atomicFile.js';
import { parsePublicKey } from '../protocol/identity.js';
import { isClientId } from '../shared/identityFiles.js';

/** The file's `format` and `version`. */
export const ENROLLMENT_FORMAT = 'fedex-clients';
export const ENROLLMENT_VERSION = 1;

/** One enrolled client. */
export interface EnrolledClient {
  readonly clientId: string;
  /** Ed25519 public key, base64url of its 32 raw bytes. */
  readonly publicKey: string;
  /** ISO 8601 times. */
  readonly enrolledAt: string;
  readonly revokedAt?: string;
}

/** The file's content. */
export interface EnrollmentFile {
  readonly format: typeof ENROLLMENT_FORMAT;
  readonly version: typeof ENROLLMENT_VERSION;
  readonly clients: readonly EnrolledClient[];
}

/** A registry that cannot be read or is malformed: the message names the file and what is wrong. */
export class EnrollmentError extends Error {
  override readonly name = 'EnrollmentError';
}

/** What the registry says about a client id. */
export type KeyLookup =
  | { readonly status: 'enrolled'; readonly key: KeyObject; readonly publicKey: string }
  | { readonly status: 'revoked'; readonly revokedAt: string }
  | { readonly status: 'unknown' };

/** Parses and checks a registry's JSON text; `path` is for messages. */
export function parseEnrollment(text: string, path: string): EnrollmentFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new EnrollmentError(`${path} is not JSON: ${(err as Error).message}`);
  }
  const o = json as Partial<EnrollmentFile> | null;
  if (o === null || typeof o !== 'object' || o.format !== ENROLLMENT_FORMAT) throw new EnrollmentError(`${path} is not a FedEx client registry (format must be '${ENROLLMENT_FORMAT}'; make one with fedex clients add)`);
  if (o.version !== ENROLLMENT_VERSION) throw new EnrollmentError(`${path}: registry version ${String(o.version)} is not supported (this fedex reads version ${ENROLLMENT_VERSION})`);
  if (!Array.isArray(o.clients)) throw new EnrollmentError(`${path}: 'clients' must be an array`);
  const seen = new Set<string>();
  o.clients.forEach((c: Partial<EnrolledClient>, i) => {
    const at = `${path}: clients[${i}]`;
    if (typeof c.clientId !== 'string' || !isClientId(c.clientId)) throw new EnrollmentError(`${at}.clientId must be 1–64 characters of A–Z a–z 0–9 _ -`);
    if (seen.has(c.clientId)) throw new EnrollmentError(`${at}: client '${c.clientId}' is listed twice`);
    seen.add(c.clientId);
    try {
      parsePublicKey(String(c.publicKey));
    } catch (err) {
      throw new EnrollmentError(`${at} ('${c.clientId}').publicKey: ${(err as Error).message}`);
    }
    if (typeof c.enrolledAt !== 'string') throw new EnrollmentError(`${at}.enrolledAt must be an ISO 8601 time`);
    if (c.revokedAt !== undefined && typeof c.revokedAt !== 'string') throw new EnrollmentError(`${at}.revokedAt must be an ISO 8601 time when present`);
  });
  return { format: ENROLLMENT_FORMAT, version: ENROLLMENT_VERSION, clients: o.clients as EnrolledClient[] };
}

/** Reads a registry; a missing file is an error unless `missingOk` (then an empty registry). */
export async function readEnrollment(path: string, missingOk = false): Promise<EnrollmentFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (missingOk && (err as NodeJS.ErrnoException).code === 'ENOENT') return { format: ENROLLMENT_FORMAT, version: ENROLLMENT_VERSION, clients: [] };
    throw new EnrollmentError(`cannot read the client registry ${path}: ${(err as Error).message}`);
  }
  return parseEnrollment(text, path);
}

/** Writes a registry atomically (a running coordinator never reads half a file). */
export async function writeEnrollment(path: string, file: EnrollmentFile): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(file, null, 2)}\n`);
}

/** The registry with `clientId` enrolled under `publicKey`; re-enrolling a revoked id or changing a live key is refused. */
export function enrollClient(file: EnrollmentFile, clientId: string, publicKey: string, now: Date = new Date()): EnrollmentFile {
  if (!isClientId(clientId)) throw new EnrollmentError(`client id '${clientId}' must be 1–64 characters of A–Z a–z 0–9 _ -`);
  parsePublicKey(publicKey);
  const existing = file.clients.find((c) => c.clientId === clientId);
  if (existing !== undefined) {
    if (existing.revokedAt !== undefined) throw new EnrollmentError(`client '${clientId}' was revoked on ${existing.revokedAt}; enroll the new key under a new client id`);
    if (existing.publicKey === publicKey) return file;
    throw new EnrollmentError(`client '${clientId}' is already enrolled with another key; revoke it first (fedex clients revoke ${clientId}) and enroll the new key under a new client id`);
  }
  const owner = file.clients.find((c) => c.publicKey === publicKey && c.revokedAt === undefined);
  if (owner !== undefined) throw new EnrollmentError(`this key is already enrolled as client '${owner.clientId}'`);
  return { ...file, clients: [...file.clients, { clientId, publicKey, enrolledAt: now.toISOString() }] };
}

/** The registry with `clientId` revoked (kept in the file, marked with the time). */
export function revokeClient(file: EnrollmentFile, clientId: string, now: Date = new Date()): EnrollmentFile {
  const existing = file.clients.find((c) => c.clientId === clientId);
  if (existing === undefined) throw new EnrollmentError(`client '${clientId}' is not enrolled (enrolled: ${file.clients.map((c) => c.clientId).join(', ') || 'none'})`);
  if (existing.revokedAt !== undefined) return file;
  return { ...file, clients: file.clients.map((c) => (c.clientId === clientId ? { ...c, revokedAt: now.toISOString() } : c)) };
}

/**
 * The registry as a running coordinator sees it: re-read when the file's modification time or
 * size changes. A registry that turns unreadable or malformed keeps the last good one in force and
 * is reported through `onError` (once per change).
 */
export class ClientKeys {
  private entries = new Map<string, EnrolledClient>();
  private keys = new Map<string, KeyObject>();
  private stamp = '';
  private refreshing: Promise<void> | undefined;

  /** Told (once per change of the file) when the registry turns unreadable or malformed. */
  onError: (message: string) => void = () => undefined;

  private constructor(readonly path: string) {}

  /** Loads the registry; throws `EnrollmentError` when it cannot be read or is malformed. */
  static async open(path: string): Promise<ClientKeys> {
    const keys = new ClientKeys(path);
    const info = await stat(path).catch((err: unknown) => {
      throw new EnrollmentError(`cannot read the client registry ${path}: ${(err as Error).message}`);
    });
    keys.install(await readEnrollment(path), `${info.mtimeMs}:${info.size}`);
    return keys;
  }

  /** Enrolled (not revoked) client ids. */
  get enrolled(): string[] {
    return [...this.entries.values()].filter((c) => c.revokedAt === undefined).map((c) => c.clientId);
  }

  lookup(clientId: string): KeyLookup {
    const e = this.entries.get(clientId);
    if (e === undefined) return { status: 'unknown' };
    if (e.revokedAt !== undefined) return { status: 'revoked', revokedAt: e.revokedAt };
    return { status: 'enrolled', key: this.keys.get(clientId)!, publicKey: e.publicKey };
  }

  /** Re-reads the file if it changed; resolves true when the registry in force changed. */
  async refresh(): Promise<boolean> {
    if (this.refreshing !== undefined) {
      await this.refreshing;
      return false;
    }
    let changed = false;
    this.refreshing = (async () => {
      let stamp: string;
      try {
        const info = await stat(this.path);
        stamp = `${info.mtimeMs}:${info.size}`;
      } catch (err) {
        this.fail(`missing:${(err as Error).message}`, `cannot read the client registry ${this.path}: ${(err as Error).message}; the last registry read stays in force`);
        return;
      }
      if (stamp === this.stamp) return;
      try {
        this.install(await readEnrollment(this.path), stamp);
        changed = true;
      } catch (err) {
        this.fail(stamp, `${(err as Error).message}; the last registry read stays in force`);
      }
    })();
    try {
      await this.refreshing;
    } finally {
      this.refreshing = undefined;
    }
    return changed;
  }

  private failedStamp = '';

  private fail(stamp: string, message: string): void {
    if (stamp === this.failedStamp) return;
    this.failedStamp = stamp;
    this.onError(message);
  }

  private install(file: EnrollmentFile, stamp: string): void {
    const keys = new Map<string, KeyObject>();
    for (const c of file.clients) if (c.revokedAt === undefined) keys.set(c.clientId, parsePublicKey(c.publicKey));
    this.entries = new Map(file.clients.map((c) => [c.clientId, c]));
    this.keys = keys;
    this.stamp = stamp;
    this.failedStamp = '';
  }
}
