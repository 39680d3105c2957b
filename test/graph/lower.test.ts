import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GraphBuilder, type Value } from '../../src/graph/builder.js';
import { grad } from '../../src/graph/autodiff.js';
import { lowerGraph } from '../../src/graph/lower.js';
import { crossEntropy } from '../../src/graph/nn/crossEntropy.js';
import { dropout } from '../../src/graph/nn/dropout.js';
import { dropoutKeepMask } from '../helpers/dropoutMask.js';
import { cast } from '../../src/graph/ops/cast.js';
import { concat } from '../../src/graph/ops/concat.js';
import { fill } from '../../src/graph/ops/constantOfShape.js';
import { gather } from '../../src/graph/ops/gather.js';
import { equal } from '../../src/graph/ops/logical.js';
import { logSoftmax } from '../../src/graph/ops/logSoftmax.js';
import { add } from '../../src/graph/ops/add.js';
import { mul } from '../../src/graph/ops/mul.js';
import { arange } from '../../src/graph/ops/range.js';
import { reduceMax } from '../../src/graph/ops/reduceMax.js';
import { reshape } from '../../src/graph/ops/reshape.js';
import { where } from '../../src/graph/ops/where.js';
import { random, runGraph } from './gradCheck.js';

/** float64 `x − max − log Σ exp(x − max)` per row of float32 data. */
function logSoftmaxRef(x: Float32Array, rows: number, cols: number): Float64Array {
  const y = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let c = 0; c < cols; c++) max = Math.max(max, x[r * cols + c]);
    let sum = 0;
    for (let c = 0; c < cols; c++) sum += Math.exp(x[r * cols + c] - max);
    for (let c = 0; c < cols; c++) y[r * cols + c] = x[r * cols + c] - max - Math.log(sum);
  }
  return y;
}

/**
 * The int64 values of `g` computed from the data of an input (Shape and Size read only its shape,
 * which is fixed when the graph is emitted for fixed sizes: onnxruntime folds what follows).
 */
function int64FromInputData(g: GraphBuilder): Value[] {
  const dependent = new Set<Value>(g.inputs);
  for (const n of g.nodes) {
    if (n.op === 'Shape' || n.op === 'Size') continue;
    if (n.inputs.some((v) => v !== undefined && dependent.has(v))) { for (const o of n.outputs) dependent.add(o); }
  }
  return [...dependent].filter((v) => v.dtype === 'int64');
}

describe('lowerGraph', () => {
  // Measured: both 1.05e-7 relative to 1 + |y| (float32 rounding of y, up to |y| ≈ 100 here); an
  // unstable formula (no max subtracted) gives inf/NaN at these logits.
  test('LogSoftmax: the fused op (CPU) and the decomposition, both float32, are within 4e-7·(1 + |y|) of a float64 reference', async (t) => {
    const [rows, cols] = [48, 1000];
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', ['rows', cols]);
    const y = logSoftmax(x, -1);
    // Logit scales of real LM heads and beyond: rows of ±1, ±10, ±40 and a large common offset.
    const data = Float32Array.from(random(rows * cols, 11), (v, i) => v * [1, 10, 40][Math.floor(i / cols) % 3] + (Math.floor(i / cols) % 4 === 3 ? 500 : 0));
    const want = logSoftmaxRef(data, rows, cols);

    const lowered = lowerGraph(g, { y }, { decomposeLogSoftmax: true });
    const fused = (await runGraph(g, [{ value: x, data, dims: [rows, cols] }], { y })).y.data;
    const decomposed = (await runGraph(lowered.graph, [{ value: lowered.graph.inputs[0], data, dims: [rows, cols] }], { y: lowered.outputs.y })).y.data;

    const err = (got: readonly number[]): number => got.reduce((m, v, i) => Math.max(m, Math.abs(v - want[i]) / (1 + Math.abs(want[i]))), 0);
    t.diagnostic(`max |error| / (1 + |y|): fused ${err(fused).toExponential(2)}, decomposed ${err(decomposed).toExponential(2)}`);
    assert.deepEqual([...new Set(lowered.graph.nodes.map((n) => n.op))].sort(), ['Constant', 'Exp', 'Log', 'ReduceMax', 'ReduceSum', 'Sub']);
    assert.ok(g.nodes.some((n) => n.op === 'LogSoftmax'));
    assert.ok(err(fused) <= 4e-7, `fused LogSoftmax: max |error| / (1 + |y|) ${err(fused)}`);
    assert.ok(err(decomposed) <= 4e-7, `decomposition: max |error| / (1 + |y|) ${err(decomposed)}`);
  });

  test('cross-entropy and its gradient through the decomposition match the LogSoftmax op within 1e-6', async () => {
    const g = new GraphBuilder();
    const logits = g.input('logits', 'float32', ['n', 64]);
    const labels = g.input('labels', 'int64', ['n']);
    const loss = crossEntropy(logits, labels);
    const [dlogits] = grad(loss, [logits]);
    const data = Float32Array.from(random(16 * 64, 5, -6, 6));
    const ids = BigInt64Array.from([3, -100, 63, 0, 7, 7, -100, 12, 40, 41, 42, 1, 2, 5, 9, 60], BigInt);

    const lowered = lowerGraph(g, { loss, dlogits }, { decomposeLogSoftmax: true });
    const feeds = (gr: GraphBuilder): { value: Value; data: Float32Array | BigInt64Array; dims: number[] }[] => [
      { value: gr.inputs[0], data, dims: [16, 64] },
      { value: gr.inputs[1], data: ids, dims: [16] },
    ];
    const want = await runGraph(g, feeds(g), { loss, dlogits });
    const got = await runGraph(lowered.graph, feeds(lowered.graph), lowered.outputs);

    assert.ok(Math.abs(got.loss.data[0] - want.loss.data[0]) <= 1e-6, `loss ${got.loss.data[0]} vs ${want.loss.data[0]}`);
    got.dlogits.data.forEach((v, i) => assert.ok(Math.abs(v - want.dlogits.data[i]) <= 1e-6, `dlogits[${i}] ${v} vs ${want.dlogits.data[i]}`));
  });

  test('int32Inputs: everything computed from the inputs is int32 or float; shape inputs stay int64; the results are the same', async () => {
    const g = new GraphBuilder();
    const ids = g.input('ids', 'int64', ['batch', 'seq']);
    const mask = g.input('mask', 'int64', ['batch', 'seq']);
    const labels = g.input('labels', 'int64', ['batch', 'seq']);
    const table = g.input('table', 'float32', [10, 4]);
    const batch = labels.shape[0];
    // Llama's label shift (concat with a -100 column, gather, where), an embedding gather, a
    // reshape through run-time dims, the masked cross-entropy and an argmax cast to int64.
    const next = add(arange(labels, 'seq'), 1);
    const nextLabels = gather(concat([labels, fill(labels, [batch, 1], -100, 'int64')], 1), next, 1);
    const nextIsToken = cast(gather(concat([mask, fill(mask, [batch, 1], 0, 'int64')], 1), next, 1), 'bool');
    const shifted = where(nextIsToken, nextLabels, -100);
    const hidden = reshape(reshape(gather(table, ids), [-1, 4]), [batch, 'seq', 4]);
    const loss = crossEntropy(hidden, where(equal(shifted, 0), -100, shifted));
    const last = cast(reduceMax(mul(cast(mask, 'float32'), cast(arange(ids, 'seq'), 'float32')), 1), 'int64');

    const lowered = lowerGraph(g, { loss, last, shifted }, { int32Inputs: ['ids', 'mask', 'labels'] });

    const L = lowered.graph;
    assert.deepEqual(L.inputs.map((v) => `${v.name}:${v.dtype}`), ['ids:int32', 'mask:int32', 'labels:int32', 'table:float32']);
    assert.deepEqual(int64FromInputData(L).map(String), []);
    assert.ok(int64FromInputData(g).length > 10, 'the graph as built computes in int64');
    assert.ok(L.nodes.some((n) => n.op === 'Reshape' && n.inputs[1]!.dtype === 'int64'), 'shape inputs stay int64');
    assert.equal(lowered.outputs.last.dtype, 'int32');
    assert.equal(lowered.outputs.shifted.dtype, 'int32');

    const idData = [1, 2, 3, 4, 9, 0, 5, 5, 5, 5];
    const maskData = [1, 1, 1, 1, 1, 1, 1, 1, 0, 0];
    const labelData = [1, 2, 3, 0, 3, 0, 1, 1, 2, 2];
    const tableData = Float32Array.from(random(40, 3));
    const want = await runGraph(g, [
      { value: ids, data: BigInt64Array.from(idData, BigInt), dims: [2, 5] },
      { value: mask, data: BigInt64Array.from(maskData, BigInt), dims: [2, 5] },
      { value: labels, data: BigInt64Array.from(labelData, BigInt), dims: [2, 5] },
      { value: table, data: tableData, dims: [10, 4] },
    ], { loss, last, shifted });
    const got = await runGraph(L, [
      { value: L.inputs[0], data: Int32Array.from(idData), dims: [2, 5] },
      { value: L.inputs[1], data: Int32Array.from(maskData), dims: [2, 5] },
      { value: L.inputs[2], data: Int32Array.from(labelData), dims: [2, 5] },
      { value: L.inputs[3], data: tableData, dims: [10, 4] },
    ], lowered.outputs);
    assert.deepEqual(got.shifted.data, want.shifted.data);
    assert.deepEqual(got.last.data, want.last.data);
    assert.equal(got.loss.data[0], want.loss.data[0]);
    assert.deepEqual(want.shifted.data, [2, 3, 0, 3, -100, 1, 1, -100, -100, -100]);
  });

  test('names a missing or non-int64 input in its error', () => {
    const g = new GraphBuilder('m');
    const x = g.input('x', 'float32', [2]);
    assert.throws(() => lowerGraph(g, { x }, { int32Inputs: ['ids'] }), /lowerGraph: int32Inputs names 'ids', which is not an input of m \(inputs: x\)/);
    assert.throws(() => lowerGraph(g, { x }, { int32Inputs: ['x'] }), /lowerGraph: int32Inputs names x: float32\[2\], which is not int64/);
  });

  test('uint32Seeds: the dropout hash runs in uint32 (no int64 left) and gives the int64 graph’s output bit for bit', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', ['batch', 'seq', 6]);
    const seed = g.input('seed', 'int64', []);
    const y = mul(dropout(x, { rate: 0.3, seed, salt: 11 }), 2);
    const data = Float32Array.from(random(3 * 5 * 6, 9));

    const lowered = lowerGraph(g, { y }, { uint32Seeds: ['seed'] });

    const L = lowered.graph;
    assert.equal(L.inputs[1].dtype, 'uint32');
    assert.ok(!L.nodes.some((n) => n.op === 'Mod'), 'an int64 Mod is left');
    assert.deepEqual(int64FromInputData(L).map(String), []);
    for (const s of [0, 12345, 2 ** 31 - 1, 2 ** 31 + 5, 2 ** 32 - 1]) {
      const want = await runGraph(g, [{ value: x, data, dims: [3, 5, 6] }, { value: seed, data: BigInt64Array.of(BigInt(s)), dims: [] }], { y });
      const got = await runGraph(L, [{ value: L.inputs[0], data, dims: [3, 5, 6] }, { value: L.inputs[1], data: Uint32Array.of(s), dims: [] }], lowered.outputs);
      assert.deepEqual(got.y.data, want.y.data, `seed ${s}`);
    }
  });

  test('dropoutSizes: a padded batch gets, on its real elements, the masks of the unpadded batch', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', ['batch', 'seq', 4]);
    const seed = g.input('seed', 'int64', []);
    const y = dropout(x, { rate: 0.5, seed, salt: 3 });

    const lowered = lowerGraph(g, { y }, { uint32Seeds: ['seed'], dropoutSizes: { input: 'sizes', symbols: ['batch', 'seq'] } });

    const L = lowered.graph;
    assert.deepEqual(L.inputs.map((v) => v.name), ['x', 'seed', 'sizes']);
    // The batch is 2 × 3 tokens, padded to 4 × 5.
    const out = await runGraph(L, [
      { value: L.inputs[0], data: new Float32Array(4 * 5 * 4).fill(1), dims: [4, 5, 4] },
      { value: L.inputs[1], data: Uint32Array.of(77), dims: [] },
      { value: L.inputs[2], data: Uint32Array.of(2, 3), dims: [2] },
    ], lowered.outputs);
    const keep = dropoutKeepMask(77n, 3, 2 * 3, 4, 0.5);
    for (let b = 0; b < 2; b++) {
      for (let t = 0; t < 3; t++) {
        for (let c = 0; c < 4; c++) assert.equal(out.y.data[(b * 5 + t) * 4 + c], keep[(b * 3 + t) * 4 + c] * 2, `element (${b}, ${t}, ${c})`);
      }
    }
    assert.ok(keep.some((k) => k === 0) && keep.some((k) => k === 1));
  });
});
