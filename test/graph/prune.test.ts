import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GraphBuilder } from '../../src/graph/builder.js';
import { toOnnx } from '../../src/graph/emit.js';
import { add } from '../../src/graph/ops/add.js';
import { exp } from '../../src/graph/ops/exp.js';
import { log } from '../../src/graph/ops/log.js';
import { mul } from '../../src/graph/ops/mul.js';
import { liveNodes, shareCommonSubexpressions } from '../../src/graph/prune.js';
import { assertClose, runGraph } from './gradCheck.js';

describe('pruning and sharing', () => {
  test('dead nodes and unused inputs are dropped from the emitted model', () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [3]);
    const unused = g.input('unused', 'float32', [3]);
    const y = exp(x);
    log(add(x, unused)); // a dead branch
    assert.equal(liveNodes(g.nodes, [y]).length, 1);
    const model = toOnnx(g, { outputs: { y } });
    assert.deepEqual(model.graph.nodes.map((n) => n.opType), ['Exp']);
    assert.deepEqual(model.graph.inputs.map((i) => i.name), ['x']);
    const kept = toOnnx(g, { outputs: { y }, inputs: [x, unused] });
    assert.deepEqual(kept.graph.inputs.map((i) => i.name), ['x', 'unused']);
  });

  test('identical nodes are merged and the result still runs', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [3]);
    const y = mul(exp(mul(x, 2)), exp(mul(x, 2)));
    const shared = shareCommonSubexpressions(g.nodes);
    assert.equal(shared.nodes.filter((n) => n.op === 'Exp').length, 1);
    const model = toOnnx(g, { outputs: { y } });
    assert.equal(model.graph.nodes.filter((n) => n.opType === 'Exp').length, 1);
    assert.equal(model.graph.nodes.filter((n) => n.opType === 'Mul').length, 2);
    const out = await runGraph(g, [{ value: x, data: Float32Array.of(0, 0.5, 1), dims: [3] }], { y });
    assertClose(out.y.data, [1, Math.exp(2), Math.exp(4)], 1e-6, 0, 'y');
  });

  test('sharing can be turned off', () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [3]);
    const y = add(exp(x), exp(x));
    assert.equal(toOnnx(g, { outputs: { y }, shareSubexpressions: false }).graph.nodes.filter((n) => n.opType === 'Exp').length, 2);
  });
});
