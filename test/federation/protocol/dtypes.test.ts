import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeFloatTensor, encodeFloatTensor, type FloatWireDType } from '../../../src/federation/protocol/dtypes.js';

/** The wire bits of one value (its two little-endian bytes, as `encodeFloatTensor` writes them). */
function wireBits(value: number, dtype: Exclude<FloatWireDType, 'float32'>): number {
  const bytes = encodeFloatTensor(Float32Array.of(value), dtype);
  assert.equal(bytes.length, 2);
  return bytes[0] | (bytes[1] << 8);
}

/** The float32 value of one element's wire bits (as `decodeFloatTensor` reads them). */
function wireValue(bits: number, dtype: Exclude<FloatWireDType, 'float32'>): number {
  return decodeFloatTensor(Uint8Array.of(bits & 0xff, bits >>> 8), dtype)[0];
}

const float32ToFloat16Bits = (v: number): number => wireBits(v, 'float16');
const float16BitsToFloat32 = (h: number): number => wireValue(h, 'float16');
const float32ToBfloat16Bits = (v: number): number => wireBits(v, 'bfloat16');
const bfloat16BitsToFloat32 = (b: number): number => wireValue(b, 'bfloat16');

/** Reference float16 value of bits, computed in float64 from the IEEE definition. */
function halfReference(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

test('float16: every one of the 65 536 bit patterns decodes as the IEEE reference and re-encodes to itself', () => {
  for (let h = 0; h < 0x10000; h++) {
    const v = float16BitsToFloat32(h);
    const ref = halfReference(h);
    if (Number.isNaN(ref)) {
      assert.ok(Number.isNaN(v));
      continue;
    }
    assert.ok(Object.is(v, ref), `bits 0x${h.toString(16)}: ${v} vs ${ref}`);
    assert.equal(float32ToFloat16Bits(v), h);
  }
});

test('float16 rounding: nearest, ties to even, overflow to Inf, underflow to ±0', () => {
  // Between 1 and 1 + 2^-10 the midpoint 1 + 2^-11 ties to even (1); just above it rounds up.
  assert.equal(float32ToFloat16Bits(1 + 2 ** -11), 0x3c00);
  assert.equal(float32ToFloat16Bits(1 + 2 ** -11 + 2 ** -20), 0x3c01);
  assert.equal(float32ToFloat16Bits(1 + 3 * 2 ** -11), 0x3c02);
  assert.equal(float32ToFloat16Bits(65504), 0x7bff);
  assert.equal(float32ToFloat16Bits(65520), 0x7c00);
  assert.equal(float32ToFloat16Bits(-1e6), 0xfc00);
  assert.equal(float32ToFloat16Bits(2 ** -25), 0x0000);
  assert.equal(float32ToFloat16Bits(2 ** -25 + 2 ** -35), 0x0001);
  assert.equal(float32ToFloat16Bits(-(2 ** -30)), 0x8000);
  assert.equal(float32ToFloat16Bits(3 * 2 ** -25), 0x0002);
  assert.ok(Number.isNaN(float16BitsToFloat32(float32ToFloat16Bits(NaN))));
});

test('bfloat16: exact widening, nearest-even rounding, NaN kept', () => {
  assert.equal(bfloat16BitsToFloat32(0x3f80), 1);
  assert.equal(bfloat16BitsToFloat32(0xc040), -3);
  assert.equal(float32ToBfloat16Bits(1 + 2 ** -8), 0x3f80);
  assert.equal(float32ToBfloat16Bits(1 + 3 * 2 ** -8), 0x3f82);
  assert.equal(float32ToBfloat16Bits(1 + 2 ** -8 + 2 ** -20), 0x3f81);
  assert.equal(float32ToBfloat16Bits(3.4028234663852886e38), 0x7f80);
  assert.ok(Number.isNaN(bfloat16BitsToFloat32(float32ToBfloat16Bits(NaN))));
  for (let b = 0; b < 0x10000; b += 7) {
    const v = bfloat16BitsToFloat32(b);
    if (!Number.isNaN(v)) assert.equal(float32ToBfloat16Bits(v), b);
  }
});

test('encodeFloatTensor/decodeFloatTensor: little-endian bytes, float32 bit-exact', () => {
  const data = Float32Array.from([1, -2.5, 3e-40, -0]);

  const bytes = encodeFloatTensor(data, 'float32');

  assert.deepEqual([...bytes.subarray(0, 4)], [0x00, 0x00, 0x80, 0x3f]);
  assert.deepEqual(decodeFloatTensor(bytes, 'float32'), data);
  assert.deepEqual([...encodeFloatTensor(Float32Array.of(1), 'float16')], [0x00, 0x3c]);
  assert.deepEqual([...encodeFloatTensor(Float32Array.of(1), 'bfloat16')], [0x80, 0x3f]);
});
