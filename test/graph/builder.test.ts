import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GraphBuilder } from '../../src/graph/builder.js';
import { add } from '../../src/graph/ops/add.js';
import { concat } from '../../src/graph/ops/concat.js';
import { gather } from '../../src/graph/ops/gather.js';
import { gemm } from '../../src/graph/ops/gemm.js';
import { layerNormalization } from '../../src/graph/ops/layerNormalization.js';
import { matMul } from '../../src/graph/ops/matMul.js';
import { reshape } from '../../src/graph/ops/reshape.js';
import { split } from '../../src/graph/ops/split.js';
import { squeeze } from '../../src/graph/ops/squeeze.js';
import { transpose } from '../../src/graph/ops/transpose.js';
import { GraphError } from '../../src/graph/errors.js';
import { toOnnx } from '../../src/graph/emit.js';

describe('shape inference errors name the op and the argument', () => {
  const g = new GraphBuilder();
  const x = g.input('x', 'float32', ['batch', 'seq', 768]);
  const w = g.input('w', 'float32', [512, 64]);

  const cases: readonly [string, () => unknown, RegExp][] = [
    ['matMul inner dims', () => matMul(x, w), /^matMul: a \[batch, seq, 768\] has inner dim 768, b \[512, 64\] has 512$/],
    ['matMul rank', () => matMul(g.input('v', 'float32', [768]), w), /^matMul: a has 1 dims \[768\], expected at least 2$/],
    ['matMul dtype', () => matMul(g.input('d', 'float64', [2, 512]), w), /^matMul: a is float64, b is float32$/],
    ['gemm trans', () => gemm(w, w, undefined, { transB: false }), /^gemm: op\(a\) of \[512, 64\] has inner dim 64, op\(b\) of \[512, 64\] has 512$/],
    ['add broadcast', () => add(x, w), /^add: b \[512, 64\] does not broadcast with a \[batch, seq, 768\] on axis -2 \(512 vs seq\)$/],
    ['reshape count', () => reshape(x, ['batch', 'seq', 700]), /^reshape: x .* has 768\*batch\*seq elements, target \[batch, seq, 700\] has 700\*batch\*seq$/],
    ['reshape -1', () => reshape(x, [-1, 'heads']), /^reshape: cannot infer -1 in \[-1, heads\]/],
    ['transpose perm', () => transpose(x, [0, 1, 1]), /^transpose: perm \[0, 1, 1\] is not a permutation of 3 axes/],
    ['squeeze', () => squeeze(x, 1), /^squeeze: axis 1 of x x: float32\[batch, seq, 768\] is not 1$/],
    ['split sizes', () => split(w, 1, [30, 30]), /^split: sizes \[30, 30\] sum to 60, axis 1 of x .* is 64$/],
    ['concat dims', () => concat([w, x], 0), /^concat: input 1 \[batch, seq, 768\] does not match input 0 \[512, 64\] off axis 0$/],
    ['gather indices', () => gather(w, w), /^gather: indices must be int64 or int32, got float32$/],
    ['layerNorm scale', () => layerNormalization(x, w), /^layerNormalization: scale \[512, 64\] must be \[768\]/],
    ['axis range', () => transpose(x, [0, 1, 2, 3]), /^transpose: perm/],
    ['unknown symbol', () => g.dimsTensor(['beams', 'batch', 'seq', 768], x), /^dims: symbol 'beams' \(in 'beams'\) is not a dimension of any graph input/],
    ['duplicate name', () => g.input('x', 'float32', [1]), /^input: the name 'x' is already used in this graph$/],
    ['bad dim', () => g.input('z', 'float32', [2.5]), /^input: z has an invalid dimension 2.5 on axis 0/],
  ];
  for (const [name, build, message] of cases) {
    test(name, () => {
      assert.throws(build, (err: unknown) => err instanceof GraphError && message.test(err.message) ? true : assert.fail(`got: ${String(err)}`));
    });
  }
});

describe('builder basics', () => {
  test('values carry dtype and symbolic shape; scalars are shared', () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', ['batch', 4]);
    assert.equal(x.toString(), 'x: float32[batch, 4]');
    assert.equal(g.scalar(2, 'float32'), g.scalar(2, 'float32'));
    assert.notEqual(g.scalar(2, 'float32'), g.scalar(2, 'float64'));
  });

  test('values of two graphs cannot be mixed', () => {
    const a = new GraphBuilder().input('a', 'float32', [2]);
    const b = new GraphBuilder().input('b', 'float32', [2]);
    assert.throws(() => add(a, b), /add: b belongs to another graph/);
  });
});

describe('run-time symbols', () => {
  test('a reshape reads its symbols from an input upstream of its operand', async () => {
    const g = new GraphBuilder();
    const labels = g.input('labels', 'int64', ['batch', 'seq']);
    const x = g.input('x', 'float32', ['batch', 'seq', 4]);
    const y = reshape(reshape(x, [-1, 2]), ['batch', 'seq', 4]);
    const model = toOnnx(g, { outputs: { y } });
    assert.deepEqual(model.graph.inputs.map((i) => i.name), ['x'], 'labels declared batch first, yet the graph does not need it');
    assert.ok(labels.rank === 2);
  });
});
