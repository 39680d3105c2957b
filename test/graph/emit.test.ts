import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GraphBuilder } from '../../src/graph/builder.js';
import { toOnnx, toOnnxBytes } from '../../src/graph/emit.js';
import { layerNormalization } from '../../src/graph/ops/layerNormalization.js';
import { matMul } from '../../src/graph/ops/matMul.js';
import { cast } from '../../src/graph/ops/cast.js';
import { mul } from '../../src/graph/ops/mul.js';
import { reshape } from '../../src/graph/ops/reshape.js';
import { createSession, ortTensor, runSession } from '../../src/runtime/session.js';
import { assertClose, runGraph } from './gradCheck.js';

describe('toOnnx', () => {
  test('outputs are renamed in place, or copied with Identity when shared or an input', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [2]);
    const y = mul(x, 3);
    const model = toOnnx(g, { outputs: { y, again: y, echo: x } });
    assert.deepEqual(model.graph.outputs.map((o) => o.name), ['y', 'again', 'echo']);
    assert.equal(model.graph.nodes.filter((n) => n.opType === 'Identity').length, 2);
    const out = await runGraph(g, [{ value: x, data: Float32Array.of(1, 2), dims: [2] }], { y, again: y, echo: x });
    assert.deepEqual([out.y.data, out.again.data, out.echo.data], [[3, 6], [3, 6], [1, 2]]);
    assert.throws(() => toOnnx(g, { outputs: { x: y } }), /toOnnx: output name 'x' is already used/);
  });

  test('initializers carry raw data; the external-data hook moves them out', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', ['batch', 2]);
    const w = g.initializer('w', Float32Array.of(1, 2, 3, 4), [2, 2]);
    const y = matMul(x, w);
    const embedded = toOnnx(g, { outputs: { y } });
    assert.equal(embedded.graph.initializers?.[0].raw?.length, 16);
    const out = await runGraph(g, [{ value: x, data: Float32Array.of(1, 1), dims: [1, 2] }], { y });
    assertClose(out.y.data, [4, 6], 0, 0, 'x @ w');
    const external = toOnnx(g, { outputs: { y }, externalData: (t) => ({ location: 'weights.bin', offset: 0, length: t.data.byteLength }) });
    assert.deepEqual(external.graph.initializers?.[0].external, { location: 'weights.bin', offset: 0, length: 16 });
    assert.equal(external.graph.initializers?.[0].raw, undefined);
    assert.ok(toOnnxBytes(g, { outputs: { y }, externalData: () => ({ location: 'w.bin', offset: 0, length: 16 }) }).length > 0);
  });

  test('unused optional outputs are left unnamed; symbolic dims become dim_params', () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', ['batch', 4]);
    const y = layerNormalization(x, g.input('s', 'float32', [4]));
    const model = toOnnx(g, { outputs: { y } });
    const ln = model.graph.nodes.find((n) => n.opType === 'LayerNormalization');
    assert.deepEqual(ln?.outputs, ['y']);
    assert.deepEqual(model.graph.outputs[0].shape, ['batch', 4]);
  });

  test('sizes: inputs and outputs get static shapes, Shape and Size become constants, and the result is the same', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', ['batch', 'seq', 2]);
    // Reshape through run-time dims (Shape → Concat), and the element count as a float.
    const y = mul(reshape(x, ['batch', -1]), cast(g.sizeOf(x), 'float32'));
    const data = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);

    const model = toOnnx(g, { outputs: { y }, sizes: { batch: 2, seq: 3 } });

    assert.deepEqual(model.graph.inputs[0].shape, [2, 3, 2]);
    assert.deepEqual(model.graph.outputs[0].shape, [2, 6]);
    assert.ok(!model.graph.nodes.some((n) => n.opType === 'Shape' || n.opType === 'Size'), 'a Shape or Size node is left');
    assert.ok(toOnnx(g, { outputs: { y } }).graph.nodes.some((n) => n.opType === 'Shape'));
    assert.ok(model.graph.nodes.every((n) => n.opType === 'Identity' || n.name === n.outputs[0]), 'nodes are named after their first output');
    const session = await createSession(toOnnxBytes(g, { outputs: { y }, sizes: { batch: 2, seq: 3 } }));
    const out = await runSession(session, { x: ortTensor('float32', data, [2, 3, 2]) });
    assertClose(out.y.data as Float32Array, Array.from(data, (v) => 12 * v), 0, 0, 'y');
    await assert.rejects(runSession(session, { x: ortTensor('float32', data.subarray(0, 6), [1, 3, 2]) }), /onnxruntime failed/);
    assert.throws(() => toOnnx(g, { outputs: { y }, sizes: { batch: 2 } }), /no size given for symbol 'seq'/);
  });
});
