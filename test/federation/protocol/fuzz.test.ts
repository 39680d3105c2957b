// Seeded fuzzing of decodeMessage: random bytes, random byte-level mutations of valid frames, and
// random structural mutations of valid headers. Whatever the input, decoding returns a message or
// throws a ProtocolError with a known code other than E_INTERNAL, and never hangs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeMessage, encodeMessage } from '../../../src/federation/protocol/codec.js';
import { isKnownErrorCode, ProtocolError } from '../../../src/federation/protocol/errors.js';
import type { ReceiveOptions } from '../../../src/federation/protocol/validate.js';
import { craftFrame, dataOf, headerOf } from './craft.js';
import { LAYOUT, rng, sampleMessages } from './sample.js';

const ITERATIONS = 5000;
const options: ReceiveOptions = { layout: LAYOUT, limits: { maxFrameBytes: 1 << 16, maxHeaderBytes: 1 << 14 }, maxUpdateNorm: 50 };
const valid = Object.values(sampleMessages()).map((m) => encodeMessage(m));

/** Decodes and classifies: 'ok' or the error code; anything but a ProtocolError fails the test. */
function outcome(bytes: Uint8Array): string {
  const started = performance.now();
  try {
    decodeMessage(bytes, options);
    return 'ok';
  } catch (err) {
    assert.ok(err instanceof ProtocolError, `non-ProtocolError thrown: ${String(err)}`);
    assert.ok(isKnownErrorCode(err.code) && err.code !== 'E_INTERNAL', `unexpected code ${err.code}: ${err.message}`);
    return err.code;
  } finally {
    assert.ok(performance.now() - started < 1000, 'one decode took over a second');
  }
}

function randomBytes(next: () => number, n: number): Uint8Array {
  return Uint8Array.from({ length: n }, () => Math.floor(next() * 256));
}

const specials: unknown[] = [null, true, -1, 0, 0.5, 1e308, -1e-300, 2 ** 53, '', 'x'.repeat(300), '\u0000', '__proto__', [], {}, [1, [2, [3]]], { a: { b: {} } }, 'E_', 'float16', 'uint8', 'chunk'];

/** Replaces, deletes or adds a random key somewhere in a JSON value. */
function mutateJson(value: unknown, next: () => number, depth = 0): unknown {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)];
  if (depth > 1 && next() < 0.3) return pick(specials);
  if (Array.isArray(value)) {
    if (value.length === 0 || next() < 0.15) return [...value, pick(specials)];
    const i = Math.floor(next() * value.length);
    const copy = [...value];
    if (next() < 0.15) copy.splice(i, 1);
    else copy[i] = mutateJson(copy[i], next, depth + 1);
    return copy;
  }
  if (typeof value === 'object' && value !== null) {
    const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
    const keys = Object.keys(copy);
    if (depth === 0 && next() < 0.9) {
      // Mostly go inside params and the tensor table, where most of the validation lives.
      const k = next() < 0.65 ? 'params' : 'tensors';
      copy[k] = mutateJson(copy[k], next, depth + 1);
      return copy;
    }
    const r = next();
    if (keys.length === 0 || r < 0.1) copy[pick(['extra', 'round', 'name', 'shape', 'offset', '__proto__'])] = pick(specials);
    else if (r < 0.25) Reflect.deleteProperty(copy, pick(keys));
    else {
      const k = pick(keys);
      copy[k] = mutateJson(copy[k], next, depth + 1);
    }
    return copy;
  }
  return pick(specials);
}

function mutateBytes(frame: Uint8Array, next: () => number): Uint8Array {
  let bytes = new Uint8Array(frame);
  const rounds = 1 + Math.floor(next() * 4);
  for (let r = 0; r < rounds; r++) {
    const at = Math.floor(next() * Math.max(1, bytes.length));
    switch (Math.floor(next() * 6)) {
      case 0:
        bytes[at] ^= 1 << Math.floor(next() * 8);
        break;
      case 1:
        bytes[at] = Math.floor(next() * 256);
        break;
      case 2:
        bytes = bytes.slice(0, at);
        break;
      case 3: {
        const ins = randomBytes(next, 1 + Math.floor(next() * 16));
        bytes = Uint8Array.from([...bytes.subarray(0, at), ...ins, ...bytes.subarray(at)]);
        break;
      }
      case 4:
        if (bytes.length >= 12) new DataView(bytes.buffer).setUint32(8, Math.floor(next() * 2 ** 32), true);
        break;
      default:
        if (bytes.length >= 12) bytes[12 + Math.floor(next() * Math.min(64, bytes.length - 12))] = Math.floor(next() * 128);
        break;
    }
  }
  return bytes;
}

test(`fuzz: ${ITERATIONS} random inputs, ${ITERATIONS} byte mutations, ${ITERATIONS} header mutations`, { timeout: 60_000 }, (t) => {
  const next = rng(20240501);
  const seen = new Map<string, number>();
  const count = (k: string): void => {
    seen.set(k, (seen.get(k) ?? 0) + 1);
  };

  for (let i = 0; i < ITERATIONS; i++) {
    const n = Math.floor(next() * 200);
    const bytes = randomBytes(next, n);
    // Half of them get a valid prefix so the header paths are reached too.
    if (next() < 0.5 && n >= 12) {
      bytes.set([0x46, 0x45, 0x44, 0x58, 1, 0, 0, 0], 0);
      new DataView(bytes.buffer).setUint32(8, Math.floor(next() * (n - 8)), true);
    }
    count(outcome(bytes));
  }
  for (let i = 0; i < ITERATIONS; i++) count(outcome(mutateBytes(valid[Math.floor(next() * valid.length)], next)));
  for (let i = 0; i < ITERATIONS; i++) {
    const frame = valid[Math.floor(next() * valid.length)];
    count(outcome(craftFrame(mutateJson(headerOf(frame), next), dataOf(frame))));
  }

  t.diagnostic(JSON.stringify(Object.fromEntries([...seen].sort())));
  // The fuzzer reaches deep into validation, not just the magic check.
  for (const code of ['E_MAGIC', 'E_TRUNCATED', 'E_MALFORMED', 'E_SCHEMA', 'E_TENSOR_TABLE', 'E_TENSOR_BOUNDS', 'E_UNKNOWN_METHOD', 'E_TENSOR_NAME', 'ok']) {
    assert.ok((seen.get(code) ?? 0) > 0, `fuzzing never produced ${code}`);
  }
});
