import { describe, test } from 'node:test';
import { GraphBuilder } from '../../../src/graph/builder.js';
import { add } from '../../../src/graph/ops/add.js';
import { div } from '../../../src/graph/ops/div.js';
import { maximum } from '../../../src/graph/ops/maximum.js';
import { minimum } from '../../../src/graph/ops/minimum.js';
import { mul } from '../../../src/graph/ops/mul.js';
import { pow } from '../../../src/graph/ops/pow.js';
import { sub } from '../../../src/graph/ops/sub.js';
import type { Value } from '../../../src/graph/builder.js';
import { F64, assertClose, gradCheck, randomData, runGraph } from '../gradCheck.js';

type Binary = (a: Value, b: Value) => Value;

/** Broadcasting cases: equal shapes, rank extension, both sides broadcast, scalar. */
const CASES: readonly [readonly number[], readonly number[]][] = [
  [[2, 3], [2, 3]],
  [[2, 3, 4], [4]],
  [[3, 1], [1, 4]],
  [[2, 1, 3], [4, 1]],
  [[], [2, 3]],
];

async function checkBinary(name: string, op: Binary, reference: (a: number, b: number) => number, positiveB = false): Promise<void> {
  for (const [sa, sb] of CASES) {
    const g = new GraphBuilder();
    const a = g.input('a', 'float64', sa);
    const b = g.input('b', 'float64', sb);
    const y = op(a, b);
    const da = randomData(a, sa, 1);
    const db = randomData(b, sb, 2, positiveB ? 0.5 : -1, positiveB ? 2 : 1);
    const feeds = [{ value: a, data: da, dims: sa }, { value: b, data: db, dims: sb }];
    // Forward against a numpy-style broadcast reference.
    const out = await runGraph(g, feeds, { y });
    const dims = out.y.dims;
    const expected = dims.reduce((n, d) => n * d, 1);
    const at = (data: Float64Array | Float32Array, shape: readonly number[], flat: number): number => {
      let idx = 0;
      let rest = flat;
      const strides = dims.map((_, i) => dims.slice(i + 1).reduce((p, d) => p * d, 1));
      strides.forEach((st, i) => {
        const coord = Math.floor(rest / st);
        rest %= st;
        const j = i - (dims.length - shape.length);
        if (j >= 0) idx = idx * shape[j] + (shape[j] === 1 ? 0 : coord);
      });
      return data[idx];
    };
    const ref = Array.from({ length: expected }, (_, i) => reference(at(da, sa, i), at(db, sb, i)));
    assertClose(out.y.data, ref, 1e-12, 1e-12, `${name} ${JSON.stringify(sa)} ${JSON.stringify(sb)}`);
    // Gradients, including the sums over broadcast axes.
    await gradCheck(g, y, feeds, [a, b], F64);
  }
}

describe('broadcasting arithmetic (float64, gradient check eps 1e-6, rtol 1e-5)', () => {
  test('add', () => checkBinary('add', add, (a, b) => a + b));
  test('sub', () => checkBinary('sub', sub, (a, b) => a - b));
  test('mul', () => checkBinary('mul', mul, (a, b) => a * b));
  test('div', () => checkBinary('div', div, (a, b) => a / b, true));
  test('minimum', () => checkBinary('minimum', minimum, Math.min));
  test('maximum', () => checkBinary('maximum', maximum, Math.max));

  test('pow with scalar exponents, and a number operand', async () => {
    for (const p of [2, 3, 0.5, -1.5]) {
      const g = new GraphBuilder();
      const x = g.input('x', 'float64', [2, 3]);
      const y = mul(pow(x, p), 2);
      const data = randomData(x, [2, 3], 3, 0.5, 2);
      const out = await runGraph(g, [{ value: x, data, dims: [2, 3] }], { y });
      assertClose(out.y.data, Array.from(data, (v) => 2 * v ** p), 1e-12, 1e-12, `pow ${p}`);
      await gradCheck(g, y, [{ value: x, data, dims: [2, 3] }], [x], F64);
    }
  });

  test('pow gradient with respect to the exponent', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float64', [2, 3]);
    const p = g.input('p', 'float64', []);
    const y = pow(x, p);
    await gradCheck(g, y, [{ value: x, data: randomData(x, [2, 3], 4, 0.5, 2), dims: [2, 3] }, { value: p, data: Float64Array.of(1.7), dims: [] }], [x, p], F64);
  });
});
