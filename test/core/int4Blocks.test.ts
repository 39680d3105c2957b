// 4-bit block quantisation (src/core/int4Blocks.ts) against an independent float64 reference: the
// scale of each block is max|w|/7, each code the nearest of the 15 levels (ties to even), packed two
// per byte (even column low), and the dequantised values (c − 8)·scale.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { dequantizeInt4, quantizeInt4 } from '../../src/core/int4Blocks.js';
import { random } from '../graph/gradCheck.js';

/** The level of w/scale by exhaustive search over −7…7 (ties to the even level), independent of the implementation's rounding. */
function nearestLevel(w: number, scale: number): number {
  if (scale === 0) return 0;
  let best = 0;
  let bestErr = Infinity;
  for (let l = -7; l <= 7; l++) {
    const err = Math.abs(w - l * scale);
    if (err < bestErr - 1e-300 || (err === bestErr && l % 2 === 0)) {
      best = l;
      bestErr = err;
    }
  }
  return best;
}

describe('quantizeInt4', () => {
  test('codes, scales and packing match a float64 reference, and dequantised values are within scale/2 of the inputs', () => {
    const rows = 5;
    const cols = 64;
    const block = 16;
    const values = Float32Array.from(random(rows * cols, 7, -3, 3));
    // An all-zero block, a block with an exact tie (0.5 of a level) and a block whose largest value is negative.
    values.fill(0, 16, 32);
    for (let i = 64; i < 80; i++) values[i] = i === 64 ? 7 : i === 65 ? 2.5 : 0.25;
    values[130] = -5;
    const q = quantizeInt4(values, rows, cols, block);
    assert.equal(q.codes.length, rows * cols / 2);
    assert.equal(q.scales.length, rows * cols / block);
    for (let b = 0; b < rows * cols / block; b++) {
      let max = 0;
      for (let i = b * block; i < (b + 1) * block; i++) max = Math.max(max, Math.abs(values[i]));
      assert.equal(q.scales[b], Math.fround(max / 7), `scale of block ${b}`);
    }
    const deq = dequantizeInt4(q);
    for (let i = 0; i < values.length; i++) {
      const scale = q.scales[Math.floor(i / block)];
      const byte = q.codes[i >> 1];
      const code = i % 2 === 0 ? byte & 15 : byte >> 4;
      assert.equal(code - 8, nearestLevel(values[i], scale), `code of element ${i} (w ${values[i]}, scale ${scale})`);
      assert.equal(deq[i], (code - 8) * scale);
      assert.ok(Math.abs(values[i] - deq[i]) <= scale / 2 * (1 + 1e-6), `element ${i}: |w − ŵ| = ${Math.abs(values[i] - deq[i])} > scale/2 = ${scale / 2}`);
    }
    // The tie: 2.5 / (7/7) = 2.5 rounds to the even level 2; the all-zero block is exact zeros with scale 0.
    assert.equal(deq[65], 2);
    assert.equal(q.scales[1], 0);
    assert.deepEqual(Array.from(deq.slice(16, 32)), new Array(16).fill(0));
    // The largest |w| of each block is represented up to the float32 rounding of its scale.
    assert.ok(Math.abs(deq[130] - -5) <= 5 * 2 ** -23);
  });

  test('rounding to float32 gives what onnxruntime computes: (c − 8)·scale rounded once', () => {
    const q = quantizeInt4(Float32Array.from(random(64, 3, -1, 1)), 2, 32, 32);
    const f64 = dequantizeInt4(q);
    const f32 = dequantizeInt4(q, new Float32Array(64));
    for (let i = 0; i < 64; i++) assert.equal(f32[i], Math.fround(f64[i]));
  });

  test('bad inputs are refused with the reason', () => {
    assert.throws(() => quantizeInt4(new Float32Array(48), 2, 24, 16), /24 columns are not a multiple of the block size 16/);
    assert.throws(() => quantizeInt4(new Float32Array(30), 2, 16, 16), /needs 32 values, got 30/);
    assert.throws(() => quantizeInt4(new Float32Array(32), 2, 16, 3), /block size 3 must be an even integer/);
    const nan = new Float32Array(32);
    nan[17] = Number.NaN;
    assert.throws(() => quantizeInt4(nan, 2, 16, 16), /value NaN at row 1, column 1 is not finite/);
  });
});
