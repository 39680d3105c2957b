// erfc and log erfc for the accountant, against an independent implementation (the C library's
// erfc through CPython's math.erfc, values printed with repr) and the asymptotic series in the tail.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { erfc, logErfc } from '../../../src/core/privacy/special.js';

// Python 3: [repr(math.erfc(x)) for x in …] (glibc's erfc).
const LIBM: readonly [number, number][] = [
  [0.5, 0.4795001221869535],
  [1, 0.15729920705028513],
  [2, 0.004677734981047265],
  [3, 2.2090496998585438e-05],
  [5, 1.5374597944280351e-12],
  [10, 2.088487583762545e-45],
  [20, 5.3958656116079005e-176],
  [-1, 1.842700792949715],
];

describe('erfc', () => {
  test('matches the C library to 1e-13 relative from the centre to the far tail', () => {
    for (const [x, want] of LIBM) {
      const got = erfc(x);
      assert.ok(Math.abs(got - want) <= 1e-13 * want, `erfc(${x}) = ${got}, libm ${want}`);
      assert.ok(Math.abs(logErfc(x) - Math.log(want)) <= 1e-13 * Math.max(1, Math.abs(Math.log(want))), `logErfc(${x})`);
    }
    assert.equal(erfc(0), 1);
  });

  test('log erfc past the underflow of erfc follows the asymptotic series −x² − log(x√π) + log(1 − 1/(2x²) + 3/(4x⁴) − 15/(8x⁶))', () => {
    for (const x of [30, 40, 100, 1e4]) {
      const x2 = x * x;
      const series = -x2 - Math.log(x * Math.sqrt(Math.PI)) + Math.log(1 - 1 / (2 * x2) + 3 / (4 * x2 * x2) - 15 / (8 * x2 * x2 * x2));
      assert.ok(Number.isFinite(logErfc(x)));
      assert.ok(Math.abs(logErfc(x) - series) <= 1e-12 * Math.abs(series) + 105 / (16 * x2 ** 4), `x = ${x}: ${logErfc(x)} vs ${series}`);
    }
    assert.equal(erfc(40), 0, 'erfc itself underflows');
    assert.equal(logErfc(Infinity), -Infinity);
  });
});
