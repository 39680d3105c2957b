/**
 * Join tokens: random, URL-safe, compared in constant time. Both sides hash before comparing, so
 * the comparison takes the same time whatever the lengths or the position of the first difference.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** A fresh token: `bytes` random bytes (default 32 = 256 bits) as base64url, no padding. */
export function generateToken(bytes = 32): string {
  if (!Number.isInteger(bytes) || bytes < 16 || bytes > 256) throw new RangeError(`generateToken: bytes must be an integer in 16..256, got ${bytes}`);
  return randomBytes(bytes).toString('base64url');
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/**
 * Constant-time token equality: compares SHA-256 digests with `crypto.timingSafeEqual`, so neither
 * the length nor the content of `expected` leaks through timing. Non-strings are never equal.
 */
export function tokensEqual(given: unknown, expected: string): boolean {
  if (typeof given !== 'string') return false;
  // Fixed-length digests: the comparison's time depends on neither length nor content, and equal
  // digests mean equal tokens (SHA-256 collision resistance).
  return timingSafeEqual(digest(given), digest(expected));
}
