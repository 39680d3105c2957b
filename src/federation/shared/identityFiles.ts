/**
 * The files of per-client identity (docs/security.md): `fedex keygen` writes a client's private key
 * file (JSON holding the client id and its Ed25519 key as PKCS#8 PEM, mode 0600) and a one-line
 * public key file, `ed25519 <key> <client id>`, which the client sends to the coordinator's operator
 * to enroll (`fedex clients add`). `fedex join --identity` reads the private key file.
 */
import { readFile, stat } from 'node:fs/promises';
import type { KeyObject } from 'node:crypto';
import { writeFileAtomic } from '../../formats/atomicFile.js';
import { generateIdentityKey, IDENTITY_SCHEME, parsePrivateKey, parsePublicKey, publicKeyText } from '../protocol/identity.js';
import { STRING_FORMATS } from '../protocol/schema.js';

/** A client's identity as the client holds it. */
export interface ClientIdentity {
  readonly clientId: string;
  readonly privateKey: KeyObject;
  /** base64url of the 32 raw public key bytes (what `hello.identity.publicKey` carries). */
  readonly publicKey: string;
}

/** A public key line: what an operator enrolls. */
export interface PublicKeyLine {
  readonly clientId: string;
  readonly publicKey: string;
}

const KEY_FORMAT = 'fedex-identity';
const KEY_VERSION = 1;

/** A key file or public key line that cannot be used: the message names the file and what is wrong. */
export class IdentityFileError extends Error {
  override readonly name = 'IdentityFileError';
}

/** True for a client id the protocol accepts: its `id` format, 1–64 characters (`hello.clientId`). */
export function isClientId(clientId: string): boolean {
  return clientId.length > 0 && clientId.length <= 64 && STRING_FORMATS.id.test(clientId);
}

/** Checks a client id (see `isClientId`). */
export function checkClientId(clientId: string): void {
  if (!isClientId(clientId)) throw new IdentityFileError(`client id '${clientId}' must be 1–64 characters of A–Z a–z 0–9 _ -`);
}

/** `ed25519 <base64url key> <client id>` */
export function formatPublicKeyLine(line: PublicKeyLine): string {
  return `${IDENTITY_SCHEME} ${line.publicKey} ${line.clientId}`;
}

/** Parses a public key line (`source` names it in errors). */
export function parsePublicKeyLine(text: string, source: string): PublicKeyLine {
  const parts = text.trim().split(/\s+/);
  if (parts.length !== 3 || parts[0] !== IDENTITY_SCHEME) throw new IdentityFileError(`${source}: a public key line is '${IDENTITY_SCHEME} <key> <client id>' (what fedex keygen writes to <name>.pub)`);
  const [, publicKey, clientId] = parts;
  try {
    parsePublicKey(publicKey);
    checkClientId(clientId);
  } catch (err) {
    throw new IdentityFileError(`${source}: ${(err as Error).message}`);
  }
  return { clientId, publicKey };
}

/**
 * Makes a key pair for `clientId` and writes `keyPath` (mode 0600) and `<keyPath without .key>.pub`;
 * refuses to overwrite either unless `force`. Returns the public key line and the .pub path.
 */
export async function writeIdentityFiles(keyPath: string, clientId: string, force = false): Promise<{ publicKeyPath: string; line: PublicKeyLine }> {
  checkClientId(clientId);
  const publicKeyPath = `${keyPath.replace(/\.key$/, '')}.pub`;
  if (!force) {
    for (const p of [keyPath, publicKeyPath]) {
      if (await stat(p).then(() => true, () => false)) throw new IdentityFileError(`${p} exists; pass --force to replace it (the old key stops working once its client is revoked)`);
    }
  }
  const { privateKey } = generateIdentityKey();
  const publicKey = publicKeyText(privateKey);
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  await writeFileAtomic(keyPath, `${JSON.stringify({ format: KEY_FORMAT, version: KEY_VERSION, clientId, publicKey, privateKey: pem }, null, 2)}\n`, { mode: 0o600 });
  const line = { clientId, publicKey };
  await writeFileAtomic(publicKeyPath, `${formatPublicKeyLine(line)}\n`);
  return { publicKeyPath, line };
}

/** Reads a private key file written by `writeIdentityFiles`; warns through `warn` when others may read it. */
export async function readIdentityFile(path: string, warn: (line: string) => void = () => undefined): Promise<ClientIdentity> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new IdentityFileError(`cannot read the identity key ${path}: ${(err as Error).message}`);
  }
  let o: { format?: unknown; version?: unknown; clientId?: unknown; privateKey?: unknown };
  try {
    o = JSON.parse(text) as typeof o;
  } catch {
    throw new IdentityFileError(`${path} is not a FedEx identity key (make one with fedex keygen --client-id <id> --out <file>.key)`);
  }
  if (o === null || typeof o !== 'object' || o.format !== KEY_FORMAT) throw new IdentityFileError(`${path} is not a FedEx identity key (format must be '${KEY_FORMAT}'; make one with fedex keygen)`);
  if (o.version !== KEY_VERSION) throw new IdentityFileError(`${path}: identity key version ${String(o.version)} is not supported (this fedex reads version ${KEY_VERSION})`);
  if (typeof o.clientId !== 'string') throw new IdentityFileError(`${path}: clientId is missing`);
  try {
    checkClientId(o.clientId);
  } catch (err) {
    throw new IdentityFileError(`${path}: ${(err as Error).message}`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = parsePrivateKey(String(o.privateKey));
  } catch (err) {
    throw new IdentityFileError(`${path}: the private key cannot be read: ${(err as Error).message}`);
  }
  const mode = (await stat(path)).mode & 0o077;
  if (process.platform !== 'win32' && mode !== 0) warn(`warning: ${path} can be read by other users of this machine (mode ${((await stat(path)).mode & 0o777).toString(8)}); chmod 600 it`);
  return { clientId: o.clientId, privateKey, publicKey: publicKeyText(privateKey) };
}
