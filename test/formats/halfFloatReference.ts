/**
 * Float64 reference decoders of the half formats, written from the IEEE layout alone (sign bit,
 * biased exponent, mantissa with an implicit leading 1 unless subnormal) and independent of
 * src/formats/halfFloat.ts: what its widening to float32 is checked against.
 */

/** The value of `expBits`/`mantBits` half-format bits: ±Inf and NaN at the top exponent, subnormals at 0. */
function halfValue(h: number, expBits: number, mantBits: number): number {
  const bias = 2 ** (expBits - 1) - 1;
  const sign = Math.floor(h / 2 ** (expBits + mantBits)) % 2 === 1 ? -1 : 1;
  const e = Math.floor(h / 2 ** mantBits) % 2 ** expBits;
  const m = h % 2 ** mantBits;
  if (e === 2 ** expBits - 1) return m === 0 ? sign * Infinity : NaN;
  return sign * (e === 0 ? m * 2 ** (1 - bias - mantBits) : (1 + m / 2 ** mantBits) * 2 ** (e - bias));
}

/** The value of float16 bits (0..0xffff): 5 exponent bits, 10 mantissa bits. */
export function float16Value(h: number): number {
  return halfValue(h, 5, 10);
}

/** The value of bfloat16 bits (0..0xffff): 8 exponent bits, 7 mantissa bits. */
export function bfloat16Value(h: number): number {
  return halfValue(h, 8, 7);
}
