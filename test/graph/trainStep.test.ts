/**
 * The composite check: one pre-LN causal self-attention block with RoPE and LoRA on the query,
 * value and output projections (W0 frozen initializers in both layouts, LoRA dropout with a fixed
 * seed), tied LM head and cross-entropy with ignored labels. Its gradients with respect to every
 * LoRA factor pass a finite-difference check, and one in-graph AdamW step matches the float64
 * TypeScript AdamW given those gradients.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GraphBuilder, type Value } from '../../src/graph/builder.js';
import { crossEntropy } from '../../src/graph/nn/crossEntropy.js';
import { linear } from '../../src/graph/nn/linear.js';
import { loraLinear } from '../../src/graph/nn/lora.js';
import { rope } from '../../src/graph/nn/rope.js';
import { ropeTables } from '../helpers/ropeTables.js';
import { add } from '../../src/graph/ops/add.js';
import { gather } from '../../src/graph/ops/gather.js';
import { layerNormalization } from '../../src/graph/ops/layerNormalization.js';
import { reshape } from '../../src/graph/ops/reshape.js';
import { slice } from '../../src/graph/ops/slice.js';
import { transpose } from '../../src/graph/ops/transpose.js';
import { toOnnx } from '../../src/graph/emit.js';
import { buildTrainStep } from '../../src/graph/trainStep.js';
import { F64, assertClose, gradCheck, random, randomData, runGraph, type Feed } from './gradCheck.js';
import { adamWRef } from './references.js';
import { causalAttention } from './nn/attentionCase.js';

const [VOCAB, D, HEADS, HD, R, MAX_SEQ] = [7, 8, 2, 4, 2, 6];

type Float = 'float32' | 'float64';

function floats(dtype: Float, values: number[]): Float32Array | Float64Array {
  return dtype === 'float32' ? Float32Array.from(values) : Float64Array.from(values);
}

function constant(g: GraphBuilder, dtype: Float, name: string, shape: number[], seed: number, scale = 0.5): Value {
  return g.initializer(name, floats(dtype, random(shape.reduce((a, b) => a * b, 1), seed, -scale, scale)), shape);
}

/** Builds the block; returns the loss, the LoRA parameters and their feeds. */
function buildBlock(g: GraphBuilder, dtype: Float): { loss: Value; params: Value[]; feeds: Feed[] } {
  const ids = g.input('ids', 'int64', ['batch', 'seq']);
  const labels = g.input('labels', 'int64', ['batch', 'seq']);
  const seed = g.input('seed', 'int64', []);
  const embedding = constant(g, dtype, 'wte', [VOCAB, D], 1);
  const lora = (name: string, outDim: number, s: number): { a: Value; b: Value; feeds: Feed[] } => {
    const a = g.input(`${name}.lora_A`, dtype, [R, D]);
    const b = g.input(`${name}.lora_B`, dtype, [outDim, R]);
    return { a, b, feeds: [
      { value: a, data: randomData(a, [R, D], s), dims: [R, D] },
      { value: b, data: randomData(b, [outDim, R], s + 1), dims: [outDim, R] },
    ] };
  };
  const q = lora('q', D, 10);
  const v = lora('v', D, 20);
  const o = lora('o', D, 30);

  const x = gather(embedding, ids);
  const h = layerNormalization(x, constant(g, dtype, 'ln.w', [D], 2, 1), constant(g, dtype, 'ln.b', [D], 3));
  const heads = (t: Value): Value => transpose(reshape(t, ['batch', 'seq', HEADS, HD]), [0, 2, 1, 3]);
  const tables = ropeTables(MAX_SEQ, HD);
  const cos = slice(g.initializer('rope.cos', floats(dtype, Array.from(tables.cos)), [MAX_SEQ, HD]), 0, 0, 'seq');
  const sin = slice(g.initializer('rope.sin', floats(dtype, Array.from(tables.sin)), [MAX_SEQ, HD]), 0, 0, 'seq');
  const qh = rope(heads(loraLinear(h, constant(g, dtype, 'q.w0', [D, D], 4), undefined, 'outIn', { a: q.a, b: q.b, scaling: 2, dropout: { rate: 0.2, seed, salt: 1 } })), cos, sin);
  const kh = rope(heads(linear(h, constant(g, dtype, 'k.w0', [D, D], 5))), cos, sin);
  // GPT-2 Conv1D layout ([in, out]) for v, with a bias.
  const vh = heads(loraLinear(h, constant(g, dtype, 'v.w0', [D, D], 6), constant(g, dtype, 'v.bias', [D], 7), 'inOut', { a: v.a, b: v.b, scaling: 2 }));
  const attn = reshape(transpose(causalAttention(qh, kh, vh), [0, 2, 1, 3]), ['batch', 'seq', D]);
  const out = add(x, loraLinear(attn, constant(g, dtype, 'o.w0', [D, D], 8), undefined, 'outIn', { a: o.a, b: o.b, scaling: 2 }));
  const logits = linear(out, embedding);
  const loss = crossEntropy(logits, labels);

  const [batch, seq] = [2, 4];
  const feeds: Feed[] = [
    { value: ids, data: BigInt64Array.from([1, 3, 3, 6, 0, 2, 5, 3], BigInt), dims: [batch, seq] },
    { value: labels, data: BigInt64Array.from([3, 3, 6, -100, 2, 5, 3, -100], BigInt), dims: [batch, seq] },
    { value: seed, data: BigInt64Array.of(42n), dims: [] },
    ...q.feeds,
    ...v.feeds,
    ...o.feeds,
  ];
  return { loss, params: [q.a, q.b, v.a, v.b, o.a, o.b], feeds };
}

describe('attention block with LoRA: gradients and one AdamW step (float64)', () => {
  test('gradient check on every LoRA factor (eps 1e-6, rtol 1e-5), then AdamW matches the TypeScript reference', async () => {
    const g = new GraphBuilder();
    const { loss, params, feeds } = buildBlock(g, 'float64');
    const grads = await gradCheck(g, loss, feeds, params, F64);
    assert.ok(grads.every((gr) => gr.some((x) => x !== 0)), 'every factor gets a nonzero gradient');

    const hyper = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };
    const step = buildTrainStep({ loss, params, optimizer: { kind: 'adamw', ...hyper } });
    const stateFeeds: Feed[] = [
      { value: step.stateInputs.lr, data: Float64Array.of(1e-2), dims: [] },
      { value: step.stateInputs.step, data: Float64Array.of(3), dims: [] },
      ...params.flatMap((p, i) => {
        const dims = p.shape as number[];
        const n = dims[0] * dims[1];
        return [
          { value: step.stateInputs[`${p.name}.m`], data: Float64Array.from(random(n, 100 + i, -0.1, 0.1)), dims },
          { value: step.stateInputs[`${p.name}.v`], data: Float64Array.from(random(n, 200 + i, 0, 0.01)), dims },
        ];
      }),
    ];
    const model = toOnnx(g, { outputs: step.outputs, inputs: [...feeds, ...stateFeeds].map((f) => f.value) });
    // Outputs stay small: the loss plus, per LoRA factor, its next value and state.
    assert.deepEqual(model.graph.outputs.map((o) => o.name).sort(), ['loss', ...params.flatMap((p) => [`${p.name}.next`, `${p.name}.m.next`, `${p.name}.v.next`])].sort());
    const out = await runGraph(g, [...feeds, ...stateFeeds], step.outputs);
    params.forEach((p, i) => {
      const at = (name: string): number[] => Array.from(stateFeeds.find((f) => f.value.name === name)!.data as Float64Array);
      const ref = adamWRef(Array.from(feeds.find((f) => f.value === p)!.data as Float64Array), grads[i], at(`${p.name}.m`), at(`${p.name}.v`), { lr: 1e-2, step: 3, ...hyper });
      assertClose(out[`${p.name}.next`].data, ref.p, 1e-12, 1e-14, `${p.name}.next`);
      assertClose(out[`${p.name}.m.next`].data, ref.m, 1e-12, 1e-14, `${p.name}.m.next`);
      assertClose(out[`${p.name}.v.next`].data, ref.v, 1e-12, 1e-14, `${p.name}.v.next`);
    });
  });
  test('the float32 build (fused kernels, LayerNorm statistics reused) takes the same step within 1e-4', async () => {
    const results: Record<string, number[]>[] = [];
    for (const dtype of ['float64', 'float32'] as const) {
      const g = new GraphBuilder();
      const { loss, params, feeds } = buildBlock(g, dtype);
      const step = buildTrainStep({ loss, params, optimizer: { kind: 'adamw' }, maxGradNorm: 0.5 });
      const stateFeeds: Feed[] = [
        { value: step.stateInputs.lr, data: floats(dtype, [1e-3]), dims: [] },
        { value: step.stateInputs.step, data: floats(dtype, [1]), dims: [] },
        ...params.flatMap((p) => ['m', 'v'].map((k) => ({ value: step.stateInputs[`${p.name}.${k}`], data: floats(dtype, new Array<number>(16).fill(0)), dims: p.shape as number[] }))),
      ];
      const out = await runGraph(g, [...feeds, ...stateFeeds], step.outputs);
      results.push(Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data])));
    }
    const [f64, f32] = results;
    assert.ok(f64.grad_norm[0] > 0.5, 'the clip is active in this test');
    for (const key of Object.keys(f64)) assertClose(f32[key], f64[key], 1e-4, 1e-5, key);
  });
});
