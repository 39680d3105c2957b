// Activation recomputation in the graph layer (builder.ts segments, autodiff.ts `recomputeSegments`,
// emit.ts ordering): on a stack of L residual blocks (layer norm, matmul, tanh, softmax, each block a
// segment) in float64,
// - the gradients equal those of the kept-activation backward to 1e-12 (relative to the largest),
//   and both match central finite differences;
// - no backward node reads a value a segment keeps to itself: only block inputs and weights cross
//   from the forward into the backward, and each recomputed node is built once;
// - the liveness count (memory.ts) drops from L blocks of activations to one block plus the L block
//   inputs, as counted by hand;
// - the emitted file places each copy right after the last node it reads, which is what makes
//   onnxruntime's depth-first order compute it just before the backward that needs it.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { grad } from '../../src/graph/autodiff.js';
import { GraphBuilder, type Value } from '../../src/graph/builder.js';
import { toOnnx } from '../../src/graph/emit.js';
import { memoryModel } from '../../src/graph/memory.js';
import { add } from '../../src/graph/ops/add.js';
import { layerNormalization } from '../../src/graph/ops/layerNormalization.js';
import { matMul } from '../../src/graph/ops/matMul.js';
import { mul } from '../../src/graph/ops/mul.js';
import { reduceSum } from '../../src/graph/ops/reduceSum.js';
import { softmax } from '../../src/graph/ops/softmax.js';
import { tanh } from '../../src/graph/ops/tanh.js';
import { F64, gradCheck, randomData, runGraph } from './gradCheck.js';

const D = 6;

interface Stack {
  readonly g: GraphBuilder;
  readonly x: Value;
  readonly weights: Value[];
  readonly loss: Value;
  /** Each block's output: what a segment hands on. */
  readonly blockOutputs: Value[];
}

/** h ← h + softmax(tanh(LN(h) · W_l)) · h per block; loss = Σ h². */
function stack(layers: number, dtype: 'float32' | 'float64' = 'float64', rows: number | string = 4): Stack {
  const g = new GraphBuilder();
  const x = g.input('x', dtype, [rows, D]);
  const gamma = g.input('gamma', dtype, [D]);
  const beta = g.input('beta', dtype, [D]);
  const weights: Value[] = [];
  const blockOutputs: Value[] = [];
  let h = x;
  for (let l = 0; l < layers; l++) {
    const w = g.input(`w${l}`, dtype, [D, D]);
    weights.push(w);
    const input = h;
    h = g.segment(() => {
      const a = tanh(matMul(layerNormalization(input, gamma, beta, { epsilon: 1e-5 }), w));
      return add(input, mul(softmax(a, -1), input));
    });
    blockOutputs.push(h);
  }
  return { g, x, weights, loss: reduceSum(mul(h, h)), blockOutputs };
}

function feeds(s: Stack): { value: Value; data: Float32Array | Float64Array; dims: number[] }[] {
  const inputs = s.g.inputs;
  return inputs.map((v, i) => ({ value: v, data: randomData(v, v.shape as number[], 10 + i, -0.8, 0.8), dims: v.shape as number[] }));
}

describe('activation recomputation (graph)', () => {
  test('gradients equal the kept-activation gradients (1e-12) and finite differences', async () => {
    const kept = stack(3);
    const again = stack(3);
    const keptGrads = grad(kept.loss, kept.weights);
    const againGrads = grad(again.loss, again.weights, { recomputeSegments: true });
    const a = await runGraph(kept.g, feeds(kept), Object.fromEntries(keptGrads.map((d, i) => [`d${i}`, d])));
    const b = await runGraph(again.g, feeds(again), Object.fromEntries(againGrads.map((d, i) => [`d${i}`, d])));
    for (const k of Object.keys(a)) {
      const scale = Math.max(...a[k].data.map(Math.abs));
      const diff = Math.max(...a[k].data.map((v, i) => Math.abs(v - b[k].data[i])));
      assert.ok(scale > 0 && diff <= 1e-12 * scale, `${k}: differs by ${diff} (largest ${scale})`);
    }
    const checked = stack(2);
    grad(checked.loss, checked.weights, { recomputeSegments: true });
    await gradCheck(checked.g, checked.loss, feeds(checked), checked.weights, F64);
  });

  test('the backward reads no value a segment keeps to itself, and builds each recomputed node once', () => {
    const s = stack(3);
    const forward = new Set(s.g.nodes);
    const internal = new Set(s.g.nodes.filter((n) => n.segment !== undefined && !n.outputs.some((o) => s.blockOutputs.includes(o))));
    assert.ok(internal.size > 3 * 4, `${internal.size} internal nodes`);
    grad(s.loss, s.weights, { recomputeSegments: true });
    const backward = s.g.nodes.filter((n) => !forward.has(n));
    for (const n of backward) {
      for (const v of n.inputs) {
        assert.ok(v === undefined || v.producer === undefined || !internal.has(v.producer), `${n.op} ${n.outputs[0].name} reads ${v?.name}, which block ${v?.producer?.segment} keeps to itself`);
      }
    }
    const copies = backward.filter((n) => n.recompute === true);
    assert.ok(copies.length > 0);
    assert.ok(copies.length <= internal.size, `${copies.length} copies of ${internal.size} internal nodes`);
  });

  test('the liveness count keeps one block of activations plus the block inputs', (t) => {
    const layers = 8;
    const rows = 64;
    const peak = (recompute: boolean): number => {
      const s = stack(layers, 'float32', 'batch');
      const grads = grad(s.loss, s.weights, { recomputeSegments: recompute });
      return memoryModel(s.g, [s.loss, ...grads])({ batch: rows }).peakBytes;
    };
    const kept = peak(false);
    const again = peak(true);
    t.diagnostic(`peak: kept ${(kept / (rows * D * 4)).toFixed(1)} [rows, D] values, recomputed ${(again / (rows * D * 4)).toFixed(1)}`);
    const value = rows * D * 4;
    // Kept: every block holds 4 to 5 [rows, D] activations (LN, matmul, tanh, softmax, product) into the backward.
    assert.ok(kept >= layers * 4 * value, `kept ${kept / value} values`);
    // Recomputed: the L block inputs, one block's activations and the backward's few live gradients.
    assert.ok(again <= (layers + 12) * value, `recomputed ${again / value} values`);
    assert.ok(again < kept / 2, `recomputed ${again} vs kept ${kept}`);
  });

  test('toOnnx places each recomputed node right after the last node it reads', () => {
    const s = stack(2);
    const grads = grad(s.loss, s.weights, { recomputeSegments: true });
    const model = toOnnx(s.g, { outputs: Object.fromEntries(grads.map((d, i) => [`d${i}`, d])) });
    const nodes = model.graph.nodes;
    const producer = new Map<string, number>();
    nodes.forEach((n, i) => n.outputs.forEach((o) => producer.set(o, i)));
    const copies = nodes.map((n, i) => [n, i] as const).filter(([n]) => /_recomputed/.test(n.name ?? ''));
    assert.ok(copies.length > 0);
    const isCopy = (i: number): boolean => /_recomputed/.test(nodes[i].name ?? '');
    for (const [n, i] of copies) {
      const last = Math.max(-1, ...n.inputs.map((x) => producer.get(x) ?? -1));
      // Between the last input's producer and the copy there are only other copies (or constants).
      for (let j = last + 1; j < i; j++) assert.ok(isCopy(j) || nodes[j].opType === 'Constant', `${n.name} at ${i}: node ${j} (${nodes[j].opType} ${nodes[j].name}) stands between it and its input at ${last}`);
    }
  });
});
