/**
 * Per-client identity (docs/protocol.md §7.2, protocol 1.2): each client holds an Ed25519 key pair;
 * the coordinator knows its public key by `clientId`. After a `hello` that names the key, the
 * coordinator sends a `challenge` with a fresh random nonce, and the client answers with an
 * Ed25519 signature over the canonical bytes below, which bind the nonce, the client id, the key,
 * the base model the client announced, and the time of signing. A signature is good for one
 * challenge only, so a `clientId` (and a resumed session) can be used only by its key holder.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from 'node:crypto';

/** The one signature scheme of protocol 1.2. */
export const IDENTITY_SCHEME = 'ed25519';

/** The first line of every signed challenge: the domain, so these bytes are never valid elsewhere. */
export const CHALLENGE_DOMAIN = 'fedex-challenge-v1';

/** Random bytes in a challenge nonce (256 bits). */
export const NONCE_BYTES = 32;

/** Largest difference between a response's `signedAt` and the coordinator's clock. */
export const MAX_CLOCK_SKEW_MS = 5 * 60_000;

/** Length of a raw Ed25519 public key and of a signature. */
const PUBLIC_KEY_BYTES = 32;
const SIGNATURE_BYTES = 64;

/** What a signature covers (every field is also on the wire, except what each side knows itself). */
export interface ChallengeContext {
  /** The coordinator's nonce (base64url). */
  readonly nonce: string;
  readonly clientId: string;
  /** The client's public key as sent in `hello.identity.publicKey` (base64url of the 32 raw bytes). */
  readonly publicKey: string;
  /** The base model hash the hello announced ('' when it named none). */
  readonly baseModelHash: string;
  /** When the client signed, ms since the epoch (`challenge_response.signedAt`). */
  readonly signedAt: number;
}

/** A fresh challenge nonce, base64url without padding. */
export function newNonce(): string {
  return randomBytes(NONCE_BYTES).toString('base64url');
}

/** The exact bytes signed: UTF-8 of the domain and the context's fields, one per line. */
export function challengeBytes(c: ChallengeContext): Buffer {
  return Buffer.from([CHALLENGE_DOMAIN, c.nonce, c.clientId, c.publicKey, c.baseModelHash, String(c.signedAt)].join('\n'), 'utf8');
}

/** The public key (base64url of its 32 raw bytes) of an Ed25519 key object, private or public. */
export function publicKeyText(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  if (pub.asymmetricKeyType !== 'ed25519') throw new TypeError(`identity keys are Ed25519, this one is ${pub.asymmetricKeyType ?? 'not asymmetric'}`);
  const x = pub.export({ format: 'jwk' }).x;
  if (typeof x !== 'string') throw new TypeError('identity key: the public key has no raw form');
  return x;
}

/** Parses base64url public key text (32 bytes); throws a TypeError naming what is wrong. */
export function parsePublicKey(text: string): KeyObject {
  if (!/^[A-Za-z0-9_-]{43}$/.test(text)) throw new TypeError(`an Ed25519 public key is 43 base64url characters (32 bytes), got ${text.length} characters`);
  if (Buffer.from(text, 'base64url').length !== PUBLIC_KEY_BYTES) throw new TypeError('an Ed25519 public key is 32 bytes');
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: text }, format: 'jwk' });
}

/** Signs a challenge with the client's private key; the signature as base64url. */
export function signChallenge(privateKey: KeyObject, c: ChallengeContext): string {
  return sign(null, challengeBytes(c), privateKey).toString('base64url');
}

/** True when `signature` (base64url) is `publicKey`'s signature of the challenge; never throws on bad input. */
export function verifyChallenge(publicKey: KeyObject, c: ChallengeContext, signature: string): boolean {
  if (!/^[A-Za-z0-9_-]{86}$/.test(signature)) return false;
  const bytes = Buffer.from(signature, 'base64url');
  if (bytes.length !== SIGNATURE_BYTES) return false;
  try {
    return verify(null, challengeBytes(c), publicKey, bytes);
  } catch {
    return false;
  }
}

/** A new Ed25519 key pair. */
export function generateIdentityKey(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ed25519');
}

/** The private key from PKCS#8 PEM; throws a TypeError when it is not an Ed25519 private key. */
export function parsePrivateKey(pem: string): KeyObject {
  const key = createPrivateKey({ key: pem, format: 'pem' });
  if (key.asymmetricKeyType !== 'ed25519') throw new TypeError(`identity keys are Ed25519, this one is ${key.asymmetricKeyType ?? 'unknown'}`);
  return key;
}
