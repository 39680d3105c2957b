// Frozen inputs held below float32 (src/graph/storeInputs.ts, nn/storedWeight.ts) on a small graph
// with the uses a model makes of its weights: an embedding lookup, a linear layer in each layout, a
// tied head, and a trainable parameter whose gradient flows back through all of them. Per form:
// the loss and the gradient equal the float32 graph fed with the same weights rounded (or
// block-quantised) on the host, to float32 round-off; the int4 dequantisation equals a float64
// reference of the blocks; the recompute nodes keep one widened copy per use, and the liveness
// model (src/graph/memory.ts) sees the weights' bytes halve (fp16, bf16) or drop to 4.5 bits (int4)
// with no widened copy kept from the forward pass to the backward.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { dequantizeInt4, quantizeInt4 } from '../../src/core/int4Blocks.js';
import { grad } from '../../src/graph/autodiff.js';
import { GraphBuilder, type Value } from '../../src/graph/builder.js';
import { toOnnx, toOnnxBytes } from '../../src/graph/emit.js';
import { memoryModel } from '../../src/graph/memory.js';
import { linear } from '../../src/graph/nn/linear.js';
import { declareStored, widen, type StoredForm } from '../../src/graph/nn/storedWeight.js';
import { cast } from '../../src/graph/ops/cast.js';
import { gather } from '../../src/graph/ops/gather.js';
import { gatherBlockQuantized } from '../../src/graph/ops/gatherBlockQuantized.js';
import { mul } from '../../src/graph/ops/mul.js';
import { reduceSum } from '../../src/graph/ops/reduceSum.js';
import { tanh } from '../../src/graph/ops/tanh.js';
import { storeInputs } from '../../src/graph/storeInputs.js';
import { fromStored, toStored, type BasePrecision, type StoredData } from '../../src/model/basePrecision.js';
import { createSession, type OrtTensor, ortTensor, runSession } from '../../src/runtime/session.js';
import { random } from './gradCheck.js';

const D = 64;
const OUT = 32;
const VOCAB = 12;
const IDS = [3, 0, 11, 3, 7];

/** ids → E rows ⊙ p → W (outIn) → tanh → W (inOut) → tied head Eᵀ → Σ logits ⊙ c; p trainable, E and W frozen. */
function buildModel(): { g: GraphBuilder; loss: Value; p: Value } {
  const g = new GraphBuilder('stored');
  const ids = g.input('ids', 'int64', ['n']);
  const p = g.input('p', 'float32', [D]);
  const e = g.input('E', 'float32', [VOCAB, D]);
  const w = g.input('W', 'float32', [OUT, D]);
  const c = g.input('c', 'float32', ['n', VOCAB]);
  const h = mul(gather(e, ids), p);
  const y = tanh(linear(h, w, undefined, 'outIn'));
  const back = linear(mul(y, y), w, undefined, 'inOut');
  const logits = linear(back, e, undefined, 'outIn');
  return { g, loss: reduceSum(mul(logits, c)), p };
}

const weights = { E: Float32Array.from(random(VOCAB * D, 1, -1, 1)), W: Float32Array.from(random(OUT * D, 2, -0.5, 0.5)) };
const shapes: Record<'E' | 'W', [number, number]> = { E: [VOCAB, D], W: [OUT, D] };
const common = (): Record<string, OrtTensor> => ({
  ids: ortTensor('int64', BigInt64Array.from(IDS, BigInt), [IDS.length]),
  p: ortTensor('float32', Float32Array.from(random(D, 3, 0.5, 1.5)), [D]),
  c: ortTensor('float32', Float32Array.from(random(IDS.length * VOCAB, 4, -1, 1)), [IDS.length, VOCAB]),
});

function feedsOf(name: string, stored: StoredData, shape: [number, number]): Record<string, OrtTensor> {
  switch (stored.precision) {
    case 'fp32':
      return { [name]: ortTensor('float32', stored.data, shape) };
    case 'fp16':
      return { [name]: ortTensor('float16', stored.data, shape) };
    case 'bf16':
      return { [name]: ortTensor('uint16', stored.data, shape) };
    case 'int4':
      return { [name]: ortTensor('uint8', stored.data, [shape[0], shape[1] / 2]), [`${name}.scales`]: ortTensor('float32', stored.scales, [shape[0], stored.scales.length / shape[0]]) };
  }
}

async function run(g: GraphBuilder, outputs: Record<string, Value>, feeds: Record<string, OrtTensor>): Promise<Record<string, Float32Array>> {
  const bytes = toOnnxBytes(g, { outputs });
  const session = await createSession(bytes, { intraOpThreads: 1, disabledOptimizers: ['CommonSubexpressionElimination'] });
  const out = await runSession(session, Object.fromEntries(session.inputNames.map((n) => [n, feeds[n]])));
  return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, t.data as Float32Array]));
}

const FORMS: Record<Exclude<BasePrecision, 'fp32'>, StoredForm> = { fp16: { kind: 'float16' }, bf16: { kind: 'bfloat16' }, int4: { kind: 'int4', blockSize: 64 } };

function maxRel(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]) / (1 + Math.abs(b[i])));
  return m;
}

describe('storeInputs', () => {
  for (const precision of ['fp16', 'bf16', 'int4'] as const) {
    test(`${precision}: loss and gradient equal the float32 graph on the same rounded weights (1e-6)`, async () => {
      const stored = { E: toStored(weights.E, shapes.E, precision, 'E'), W: toStored(weights.W, shapes.W, precision, 'W') };
      // Reference: the float32 graph, fed the values the stored weights stand for.
      const ref = buildModel();
      const refOut = await run(ref.g, { loss: ref.loss, dp: grad(ref.loss, [ref.p])[0] }, { ...common(), E: ortTensor('float32', fromStored(stored.E, shapes.E), shapes.E),
        W: ortTensor('float32', fromStored(stored.W, shapes.W), shapes.W) });
      const m = buildModel();
      const s = storeInputs(m.g, new Map([['E', FORMS[precision]], ['W', FORMS[precision]]]));
      const loss = s.value(m.loss);
      const out = await run(s.graph, { loss, dp: grad(loss, [s.value(m.p)])[0] }, { ...common(), ...feedsOf('E', stored.E, shapes.E), ...feedsOf('W', stored.W, shapes.W) });

      assert.ok(maxRel(out.loss, refOut.loss) <= 1e-6, `loss ${out.loss[0]} vs ${refOut.loss[0]}`);
      assert.ok(maxRel(out.dp, refOut.dp) <= 1e-6, `dp differs by ${maxRel(out.dp, refOut.dp)}`);
      // And the rounding itself moves the loss (the comparison above is not between equal inputs by accident).
      const exact = buildModel();
      const exactOut = await run(exact.g, { loss: exact.loss }, { ...common(), E: ortTensor('float32', weights.E, shapes.E), W: ortTensor('float32', weights.W, shapes.W) });
      assert.notEqual(exactOut.loss[0], out.loss[0]);
    });
  }

  test('the lookup gathers stored rows (no widened table), every other use reads its own widened copy, and autodiff widens again for the backward', () => {
    const m = buildModel();
    const s = storeInputs(m.g, new Map([['E', FORMS.int4], ['W', FORMS.bf16]]));
    const loss = s.value(m.loss);
    const outputs = { loss, dp: grad(loss, [s.value(m.p)])[0] };
    const nodes = toOnnx(s.graph, { outputs }).graph.nodes;
    const gbq = nodes.filter((n) => n.opType === 'GatherBlockQuantized');
    // E: the lookup (ids), the tied head forward, the head's backward (dX = dY·E): three, none merged.
    assert.equal(gbq.length, 3);
    assert.equal(gbq.filter((n) => n.inputs[1] === 'ids').length, 1);
    assert.ok(gbq.every((n) => n.domain === 'com.microsoft'));
    // W (bf16): BitCast + Cast per use: two forward uses, two backward uses.
    assert.equal(nodes.filter((n) => n.opType === 'BitCast').length, 4);
    const model = toOnnx(s.graph, { outputs });
    assert.equal(model.opset, 26, 'BitCast needs opset 26');
    assert.deepEqual(model.domains, { 'com.microsoft': 1 });
  });

  test('int4: onnxruntime dequantises the blocks as the float64 reference does, rounded once to float32', async () => {
    const rows = 6;
    const cols = 96;
    const values = Float32Array.from(random(rows * cols, 9, -2, 2));
    const q = quantizeInt4(values, rows, cols, 32);
    const ref = dequantizeInt4(q);
    const g = new GraphBuilder('deq');
    const w = declareStored(g, 'W', [rows, cols], { kind: 'int4', blockSize: 32 });
    const ids = g.input('ids', 'int64', [4]);
    const all = widen(w);
    const some = gatherBlockQuantized(w.data, ids, w.scales!, 32);
    const out = await run(g, { all, some }, { W: ortTensor('uint8', q.codes, [rows, cols / 2]), 'W.scales': ortTensor('float32', q.scales, [rows, cols / 32]), ids: ortTensor('int64', BigInt64Array.of(5n, 0n, 5n, 2n), [4]) });
    for (let i = 0; i < ref.length; i++) {
      assert.ok(Math.abs(out.all[i] - ref[i]) <= 2 ** -24 * Math.abs(ref[i]), `element ${i}: ${out.all[i]} vs float64 ${ref[i]}`);
    }
    [5, 0, 5, 2].forEach((r, k) => assert.deepEqual(Array.from(out.some.slice(k * cols, (k + 1) * cols)), Array.from(out.all.slice(r * cols, (r + 1) * cols))));
  });

  test('bad requests name the input and the reason', () => {
    const m = buildModel();
    assert.throws(() => storeInputs(m.g, new Map([['nope', FORMS.fp16]])), /'nope' is not an input of stored/);
    assert.throws(() => storeInputs(m.g, new Map([['ids', FORMS.fp16]])), /ids: int64\[n\] is not a float32 input of static shape/);
    assert.throws(() => storeInputs(m.g, new Map([['p', FORMS.int4]])), /p \[64\] cannot be stored as int4: int4 blocks quantise matrices/);
    const g = new GraphBuilder();
    g.input('W', 'float32', [4, 48]);
    assert.throws(() => storeInputs(g, new Map([['W', FORMS.int4]])), /48 columns are not a multiple of the block size 64/);
  });
});

describe('stored weights in the liveness model', () => {
  const LAYERS = 5;
  const N = 128;
  const weightBytes = N * N * 4;

  /** x → LAYERS × tanh(linear(·, W_k)), p trainable at the start so the backward needs every W_k (dX = dY·W_k). */
  function chain(widenWith: 'stored' | 'plain cast' | 'fp32', form: StoredForm = { kind: 'float16' }): { inputs: number; peak: number } {
    const g = new GraphBuilder('chain');
    const x = g.input('x', 'float32', ['batch', N]);
    const p = g.input('p', 'float32', [N]);
    let h = mul(x, p);
    const names: string[] = [];
    for (let k = 0; k < LAYERS; k++) {
      names.push(`W${k}`);
      let w: Value;
      if (widenWith === 'plain cast') w = cast(g.input(`W${k}`, 'float16', [N, N]), 'float32');
      else w = g.input(`W${k}`, 'float32', [N, N]);
      h = tanh(linear(h, w));
    }
    let graph = g;
    let loss = reduceSum(h);
    let param = p;
    if (widenWith === 'stored') {
      const s = storeInputs(g, new Map(names.map((n) => [n, form])));
      graph = s.graph;
      loss = s.value(loss);
      param = s.value(p);
    }
    const profile = memoryModel(graph, [loss, grad(loss, [param])[0]])({ batch: 4 });
    const weightInputs = Object.entries(profile.inputSizes).filter(([k]) => k.startsWith('W')).reduce((sum, [, b]) => sum + b, 0);
    return { inputs: weightInputs, peak: profile.peakBytes };
  }

  test('fp16/bf16 halve the weight bytes and int4 takes 4.5 bits a weight; no widened copy lives from forward to backward', () => {
    const fp32 = chain('fp32');
    const half = chain('stored', { kind: 'float16' });
    const bf16 = chain('stored', { kind: 'bfloat16' });
    const int4 = chain('stored', { kind: 'int4', blockSize: 32 });
    const plain = chain('plain cast');
    assert.equal(fp32.inputs, LAYERS * weightBytes);
    assert.equal(half.inputs, LAYERS * weightBytes / 2);
    assert.equal(bf16.inputs, LAYERS * weightBytes / 2);
    assert.equal(int4.inputs, LAYERS * (N * N / 2 + N * (N / 32) * 4));
    // Recomputed: at most one widened weight beyond the float32 graph's activations at any time
    // (bf16's BitCast adds its 2-byte view of the same weight just before the Cast).
    assert.ok(half.peak <= fp32.peak + weightBytes, `fp16 peak ${half.peak} vs fp32 ${fp32.peak}`);
    assert.ok(bf16.peak <= fp32.peak + 1.5 * weightBytes, `bf16 peak ${bf16.peak} vs fp32 ${fp32.peak}`);
    assert.ok(int4.peak <= fp32.peak + weightBytes + N * 4, `int4 peak ${int4.peak} vs fp32 ${fp32.peak}`);
    // Widened once and kept (a plain Cast): every layer's float32 copy lives until its backward.
    assert.ok(plain.peak >= fp32.peak + (LAYERS - 1) * weightBytes, `a kept widened copy per layer: peak ${plain.peak}, fp32 ${fp32.peak}`);
  });
});
