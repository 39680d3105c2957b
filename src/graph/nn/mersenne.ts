/**
 * Arithmetic modulo the Mersenne prime P = 2³¹ − 1 on uint32 values in [0, P), exact, with no
 * intermediate at or above 2³²: what the dropout hash (dropout.ts) computes with int64 products
 * below 2⁶², for providers whose integer kernels are 32-bit (onnxruntime's WebGPU provider).
 *
 * A product a·b splits each factor into 16-bit halves, a = a₁·2¹⁶ + a₀ (a₁ < 2¹⁵, a₀ < 2¹⁶):
 * a·b = a₁b₁·2³² + (a₁b₀ + a₀b₁)·2¹⁶ + a₀b₀, and since 2³¹ ≡ 1 (mod P), 2³² ≡ 2 and
 * m·2¹⁶ ≡ ⌊m / 2¹⁵⌋ + (m mod 2¹⁵)·2¹⁶. Every partial term stays below 2³²; sums of two terms below P
 * stay below 2³², and {@link modP} brings each back under P.
 */
import type { Value } from '../builder.js';
import { check } from '../errors.js';
import { add } from '../ops/add.js';
import { div } from '../ops/div.js';
import { mul } from '../ops/mul.js';
import { sub } from '../ops/sub.js';

/** The modulus, 2³¹ − 1. */
export const MERSENNE_31 = 2147483647;

function checkUint32(op: string, ...xs: readonly Value[]): void {
  for (const x of xs) check(x.dtype === 'uint32', () => `${op}: ${x.toString()} must be uint32`);
}

/** `z mod P` for any uint32 z (z < 2³² = 2P + 2, so the quotient is at most 2). */
export function modP(z: Value): Value {
  checkUint32('modP', z);
  return sub(z, mul(div(z, MERSENNE_31), MERSENNE_31));
}

/** `(a + b) mod P` for a, b in [0, P), or b a constant in [0, P). */
export function addModP(a: Value, b: Value | number): Value {
  checkUint32('addModP', a);
  check(typeof b !== 'number' || (Number.isInteger(b) && b >= 0 && b < MERSENNE_31), () => `addModP: constant ${String(b)} must be an integer in [0, 2³¹−1)`);
  return modP(add(a, b));
}

/** `a·b mod P` for a, b in [0, P) (b may be a constant in [0, P)); see the module comment. */
export function mulModP(a: Value, b: Value | number): Value {
  checkUint32('mulModP', a);
  check(typeof b !== 'number' || (Number.isInteger(b) && b >= 0 && b < MERSENNE_31), () => `mulModP: constant ${String(b)} must be an integer in [0, 2³¹−1)`);
  const [a1, a0] = halves(a);
  const [b1, b0] = typeof b === 'number' ? [Math.floor(b / 65536), b % 65536] : halves(b);
  const high = mul(a1, b1);
  const middle = a === b ? mul(mul(a1, a0), 2) : add(mul(a1, b0), mul(a0, b1));
  const m1 = div(middle, 32768);
  const m0 = sub(middle, mul(m1, 32768));
  // a·b ≡ 2·a₁b₁ + m₁ + m₀·2¹⁶ + a₀b₀ (mod P), summed two terms at a time below 2³².
  const left = modP(add(add(high, high), m1));
  const right = modP(add(mul(m0, 65536), modP(mul(a0, b0))));
  return modP(add(left, right));
}

/** `[⌊x / 2¹⁶⌋, x mod 2¹⁶]`. */
function halves(x: Value): [Value, Value] {
  const hi = div(x, 65536);
  return [hi, sub(x, mul(hi, 65536))];
}
