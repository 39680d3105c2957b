import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DowncastMeter,
  bfloat16ToFloat32,
  float16ToFloat32,
  float32ToBfloat16,
  float32ToFloat16,
  float64ToBfloat16,
  float64ToFloat16,
} from '../../src/formats/halfFloat.js';
import { downcastError } from '../helpers/downcast.js';
import { bfloat16Value, float16Value } from './halfFloatReference.js';

const isF16NaN = (h: number): boolean => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
const isBF16NaN = (h: number): boolean => (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0;

// Hand-checked IEEE binary16 encodings (value → bits), including round-to-nearest-even ties.
const F16_CASES: [number, number][] = [
  [0, 0x0000],
  [-0, 0x8000],
  [1, 0x3c00],
  [-2, 0xc000],
  [0.1, 0x2e66],
  [1 / 3, 0x3555],
  [65504, 0x7bff], // largest finite
  [65519.99, 0x7bff], // below the midpoint to 65536: rounds down
  [65520, 0x7c00], // midpoint between 65504 (odd mantissa) and 2^16: ties to even = Inf
  [Infinity, 0x7c00],
  [-Infinity, 0xfc00],
  [2 ** -14, 0x0400], // smallest normal
  [1023 * 2 ** -24, 0x03ff], // largest subnormal
  [2 ** -24, 0x0001], // smallest subnormal
  [2 ** -25, 0x0000], // tie between 0 and 2^-24: even is 0
  [1.5 * 2 ** -25, 0x0001],
  [3 * 2 ** -25, 0x0002], // tie between 1 and 2 units: even is 2
  [1 + 2 ** -11, 0x3c00], // tie: 1.0 (even) wins over 1 + 2^-10
  [1 + 3 * 2 ** -11, 0x3c02], // tie: 1 + 2^-9 (even) wins over 1 + 2^-10
  [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above the tie
];

// Hand-checked bfloat16 encodings.
const BF16_CASES: [number, number][] = [
  [0, 0x0000],
  [-0, 0x8000],
  [1, 0x3f80],
  [-2, 0xc000],
  [0.1, 0x3dcd],
  [Math.PI, 0x4049],
  [(2 - 2 ** -7) * 2 ** 127, 0x7f7f], // largest finite
  [3.4028234663852886e38, 0x7f80], // float32 max rounds past the bf16 max: Inf
  [Infinity, 0x7f80],
  [-Infinity, 0xff80],
  [1 + 2 ** -8, 0x3f80], // tie: even
  [1 + 3 * 2 ** -8, 0x3f82], // tie: even
  [2 ** -126, 0x0080], // smallest normal
  [2 ** -133, 0x0001], // smallest subnormal
  [2 ** -134, 0x0000], // tie: even is 0
];

/** Each case's value encodes to its bits on the exact float64 path and on the float32 bit path. */
function checkKnownBits(cases: readonly [number, number][], exact: (src: Float64Array) => Uint16Array, bulk: (src: Float32Array) => Uint16Array): void {
  const fromFloat64 = exact(Float64Array.from(cases.map(([x]) => x)));
  const fromFloat32 = bulk(Float32Array.from(cases.map(([x]) => x)));
  cases.forEach(([x, bits], i) => {
    assert.equal(fromFloat64[i], bits, `float64 ${x}`);
    assert.equal(fromFloat32[i], bits, `float32 ${x}`);
  });
}

describe('float16', () => {
  test('known bit patterns, float64 and float32 paths', () => {
    checkKnownBits(F16_CASES, float64ToFloat16, float32ToFloat16);
  });

  test('NaN stays NaN on both paths, including a signalling NaN with a low payload', () => {
    const src = new Float32Array(3);
    new Uint32Array(src.buffer).set([0x7fc00000, 0x7f800001, 0xffa00000]);
    const bulk = float32ToFloat16(src);
    for (const h of bulk) assert.ok(isF16NaN(h), `0x${h.toString(16)} is NaN`);
    assert.ok(isF16NaN(float64ToFloat16(Float64Array.of(NaN))[0]));
  });

  test('decodes known bits', () => {
    const [one, tiny, subMax, max, negInf, nan, negZero] = float16ToFloat32(Uint16Array.of(0x3c00, 0x0001, 0x03ff, 0x7bff, 0xfc00, 0x7e00, 0x8000));
    assert.equal(one, 1);
    assert.equal(tiny, 2 ** -24);
    assert.equal(subMax, 1023 * 2 ** -24);
    assert.equal(max, 65504);
    assert.equal(negInf, -Infinity);
    assert.ok(Number.isNaN(nan));
    assert.ok(Object.is(negZero, -0));
  });

  test('every float16 value survives f16 → f32 → f16 exactly, and decodes as the float64 reference', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const wide = float16ToFloat32(all);
    const back = float32ToFloat16(wide);
    for (let h = 0; h < 65536; h++) {
      if (isF16NaN(h)) {
        assert.ok(isF16NaN(back[h]) && Number.isNaN(wide[h]), `NaN 0x${h.toString(16)}`);
      } else {
        assert.equal(back[h], h, `0x${h.toString(16)}`);
        assert.equal(wide[h], float16Value(h), `0x${h.toString(16)}`);
      }
    }
  });

  test('the float32 bit path agrees with the exact float64 path on random float32 bit patterns', () => {
    const bits = new Uint32Array(100_000);
    let s = 12345;
    for (let i = 0; i < bits.length; i++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      bits[i] = (s ^ (s << 7)) >>> 0;
    }
    const src = new Float32Array(bits.buffer);
    const bulk = float32ToFloat16(src);
    const exact = float64ToFloat16(src);
    for (let i = 0; i < src.length; i++) {
      const want = exact[i];
      if (isF16NaN(want)) assert.ok(isF16NaN(bulk[i]));
      else if (bulk[i] !== want) assert.fail(`${src[i]}: float32 path 0x${bulk[i].toString(16)} vs float64 path 0x${want.toString(16)}`);
    }
  });
});

describe('bfloat16', () => {
  test('known bit patterns, float64 and float32 paths', () => {
    checkKnownBits(BF16_CASES, float64ToBfloat16, float32ToBfloat16);
    assert.ok(isBF16NaN(float32ToBfloat16(Float32Array.of(NaN))[0]));
    assert.ok(isBF16NaN(float64ToBfloat16(Float64Array.of(NaN))[0]));
  });

  test('every bfloat16 value survives bf16 → f32 → bf16 exactly, and decodes as the float64 reference', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const wide = bfloat16ToFloat32(all);
    const back = float32ToBfloat16(wide);
    for (let h = 0; h < 65536; h++) {
      if (isBF16NaN(h)) {
        assert.ok(isBF16NaN(back[h]) && Number.isNaN(wide[h]));
      } else {
        assert.equal(back[h], h);
        assert.equal(wide[h], bfloat16Value(h));
      }
    }
  });

  test('float64 input is rounded once, not twice through float32', () => {
    // 1 + 2^-8 + 2^-30 lies just above a bf16 tie; float32 would first round it onto the tie.
    const x = 1 + 2 ** -8 + 2 ** -30;
    assert.equal(float64ToBfloat16(Float64Array.of(x))[0], 0x3f81);
    assert.equal(float32ToBfloat16(Float32Array.of(x))[0], 0x3f80);
  });
});

describe('down-cast report (DowncastMeter, over a whole tensor through downcastError)', () => {
  test('reports max abs/rel error, relative norm error, overflow and underflow', () => {
    const data = Float64Array.of(1, 1 + 2 ** -12, 70000, 1e-9, 0, -3);
    const r = downcastError(data, 'F16');
    // 1 + 2^-12 rounds to 1; 70000 overflows; 1e-9 flushes to 0; the rest are exact.
    const errSq = 2 ** -24 + 1e-18;
    const normSq = 1 + (1 + 2 ** -12) ** 2 + 1e-18 + 9;
    assert.equal(r.count, 6);
    assert.equal(r.maxAbsError, 2 ** -12);
    assert.equal(r.maxRelError, 1);
    assert.equal(r.overflowCount, 1);
    assert.equal(r.underflowCount, 1);
    assert.ok(Math.abs(r.relativeError - Math.sqrt(errSq / normSq)) < 1e-15);
  });

  test('a DowncastMeter fed piece by piece reports what one pass over the whole does, non-finite values included', () => {
    const data = new Float32Array(3000).map((_, i) => (i === 7 ? NaN : i === 11 ? 1e30 : Math.cos(i) * 10 ** ((i % 12) - 8)));
    const meter = new DowncastMeter('F16');
    for (let start = 0; start < data.length; start += 700) {
      const part = data.subarray(start, start + 700);
      meter.add(part, float16ToFloat32(float32ToFloat16(part)));
    }
    const whole = downcastError(data, 'F16');
    assert.deepEqual(meter.report(), whole);
    assert.equal(whole.overflowCount, 1);
    assert.ok(whole.underflowCount > 0 && whole.maxRelError === 1, 'tiny values flush to zero');
    assert.throws(() => meter.add(data.subarray(0, 2), data.subarray(0, 3)), /2 values but 3 stored/);
  });

  test('bf16 error of a float32 copy is within the unit roundoff 2^-8 (8 significant bits)', () => {
    const data = new Float32Array(5000).map((_, i) => Math.sin(i) * 10 ** ((i % 7) - 3));
    const r = downcastError(data, 'BF16');
    assert.ok(r.maxRelError <= 2 ** -8 && r.maxRelError > 2 ** -10, `maxRelError ${r.maxRelError}`);
    assert.equal(downcastError(data, 'F32').maxAbsError, 0);
  });
});
