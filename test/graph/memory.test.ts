// The liveness count of src/graph/memory.ts against counts done by hand on small graphs: values are
// allocated when their node runs and freed after their last reader, shared subexpressions and dead
// nodes are not counted, sizes follow the symbols (and the symbols Concat invents), dtypes their bytes.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GraphBuilder } from '../../src/graph/builder.js';
import { dimSize, memoryModel } from '../../src/graph/memory.js';
import { add } from '../../src/graph/ops/add.js';
import { cast } from '../../src/graph/ops/cast.js';
import { concat } from '../../src/graph/ops/concat.js';
import { exp } from '../../src/graph/ops/exp.js';
import { log } from '../../src/graph/ops/log.js';
import { neg } from '../../src/graph/ops/neg.js';

describe('memoryModel', () => {
  test('peak = the values alive at once, counted by hand (x → a = exp x, b = −exp x, c = a + b, d = exp c)', () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', ['batch', 'seq']);
    const a = exp(x);
    const c = add(a, neg(exp(x))); // exp(x) again: shared with a, not counted twice
    log(x); // dead: nothing requested reads it
    const d = exp(c);

    const p = memoryModel(g, [d])({ batch: 2, seq: 3 });

    // n = 2·3 floats = 24 bytes. Exp: a (24). Neg: a, b (48). Add: a, b, c (72), then a and b die. Exp: c, d (48), then c dies.
    assert.equal(p.peakBytes, 72);
    assert.match(p.peakAt, /^Add /);
    assert.equal(p.inputBytes, 24);
    assert.equal(p.outputBytes, 24);
    assert.equal(p.nodes, 4);
  });

  test('sizes scale with the symbols: one prepared model, any batch and sequence', () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', ['batch', 'seq', 8]);
    const model = memoryModel(g, [exp(exp(x))]);

    assert.equal(model({ batch: 1, seq: 1 }).peakBytes, 2 * 8 * 4);
    assert.equal(model({ batch: 4, seq: 16 }).peakBytes, 2 * 4 * 16 * 8 * 4);
  });

  test('bytes per element follow the dtype: int64 8, bool 1', () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', ['batch']);

    assert.equal(memoryModel(g, [cast(x, 'int64')])({ batch: 5 }).peakBytes, 40);
    assert.equal(memoryModel(g, [cast(x, 'bool')])({ batch: 5 }).peakBytes, 5);
  });

  test("a symbol Concat invents is the sum of its inputs' sizes", () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', ['batch', 'seq']);
    const y = concat([x, x], 1);

    assert.equal(typeof y.shape[1], 'string');
    assert.equal(memoryModel(g, [y])({ batch: 2, seq: 3 }).outputBytes, 2 * 6 * 4);
  });

  test('a symbol without a size is an error naming it and the value', () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', ['batch', 'seq']);

    assert.throws(() => memoryModel(g, [exp(x)])({ batch: 2 }), /memoryModel: exp_\d+ \[batch, seq\]: dimSize: no size given for symbol 'seq'/);
    assert.equal(dimSize('12*batch*seq', { batch: 2, seq: 3 }), 72);
  });
});
