// GPT-2 with a PEFT adapter's per-module settings: rank_pattern, alpha_pattern and
// layers_to_transform (an int, with layers_pattern 'h'). The ranks and scalings each module must get
// are written out below by hand from PEFT's rules (peft/utils/other.py get_pattern_key,
// tuners_utils.check_target_module_exists), not computed with src/; the graph's logits and loss are
// checked against the float64 reference of fixture.ts with those scalings, and the gradients of every
// factor against central differences.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { toOnnxBytes } from '../../../src/graph/emit.js';
import { buildGpt2 } from '../../../src/model/gpt2/build.js';
import type { ModelGraph } from '../../../src/model/types.js';
import { createSession, runSession } from '../../../src/runtime/session.js';
import { F64, gradCheck, type Feed } from '../../graph/gradCheck.js';
import { TINY, feedsFor, loraSettings, maxRelError, paddedBatch, randomLora, refCausalLoss, refHidden, refLogits, tinyConfigJson, tinyShapes, tinyWeights } from './fixture.js';

/** r 3, lora_alpha 5; layer 1 only; c_attn of layer 1 at rank 4 and alpha 2, c_fc at alpha 7, the MLP's c_proj at rank 2. */
const LORA = loraSettings({
  r: 3,
  alpha: 5,
  targetModules: ['c_attn', 'c_proj', 'c_fc'],
  rankPattern: { 'h.1.attn.c_attn': 4, 'mlp.c_proj': 2 },
  alphaPattern: { c_fc: 7, c_attn: 2 },
  layersToTransform: 1,
  layersPattern: 'h',
});

/** Path → [rank, scaling] by PEFT's rules ('mlp.c_proj' does not match attn.c_proj; layer 0 is left out). */
const EXPECTED: [string, number, number][] = [
  ['transformer.h.1.attn.c_attn', 4, 2 / 4],
  ['transformer.h.1.attn.c_proj', 3, 5 / 3],
  ['transformer.h.1.mlp.c_fc', 3, 7 / 3],
  ['transformer.h.1.mlp.c_proj', 2, 5 / 2],
];

const weights = tinyWeights(21);
const batch = paddedBatch([6, 4, 2], 6, 9);
const labels = batch.ids.map((id, i) => (batch.mask[i] === 1 ? id : -100));

async function run(model: ModelGraph, feeds: Parameters<typeof runSession>[1]): Promise<{ logits: Float64Array; loss: number }> {
  const session = await createSession(toOnnxBytes(model.graph, { outputs: { logits: model.logits, loss: model.loss } }), { intraOpThreads: 1 });
  const out = await runSession(session, feeds);
  return { logits: Float64Array.from(out.logits.data as ArrayLike<number>), loss: Number((out.loss.data as ArrayLike<number>)[0]) };
}

function build(dtype: 'float32' | 'float64'): ModelGraph {
  return buildGpt2({ config: tinyConfigJson(), tensors: tinyShapes(), lora: LORA, task: 'causal-lm', training: false, dtype });
}

describe('GPT-2 with per-module ranks, alphas and layers (PEFT rank_pattern, alpha_pattern, layers_to_transform)', () => {
  test('the adapted modules are layer 1 only, each with its own rank (A [r, in], B [out, r])', () => {
    const model = build('float64');

    const shapes = model.modules.map((m) => {
      const a = model.graph.inputs.find((v) => v.name === m.aInput)!;
      const b = model.graph.inputs.find((v) => v.name === m.bInput)!;
      return [m.path, a.shape[0], a.shape[1], b.shape[0], b.shape[1]];
    });

    assert.deepEqual(shapes, EXPECTED.map(([path, r]) => {
      const [inF, outF] = { c_attn: [16, 48], c_proj: path.includes('mlp') ? [24, 16] : [16, 16], c_fc: [16, 24] }[path.slice(path.lastIndexOf('.') + 1)]!;
      return [path, r, inF, outF, r];
    }));
  });

  for (const dtype of ['float64', 'float32'] as const) {
    // As forward.test.ts: float64 differs from the reference by float32 attributes only.
    const rtol = dtype === 'float64' ? 1e-7 : 1e-4;
    test(`${dtype}: logits and loss equal the float64 reference with each module's scaling (rtol ${rtol})`, async () => {
      const model = build(dtype);
      const factors = randomLora(model, 13);
      const byPath = new Map(model.modules.map((m) => [m.path, m]));
      const ref = {
        scaling: Number.NaN, // every module has its own: a module without one would make the reference NaN
        factors: new Map(EXPECTED.map(([path, r, scaling]) => [path, { a: factors.get(byPath.get(path)!.aInput)!, b: factors.get(byPath.get(path)!.bInput)!, r, scaling }])),
      };

      const got = await run(model, feedsFor(model, dtype, weights, batch, labels, factors));
      const logits = refLogits(TINY, weights, refHidden(TINY, weights, batch, ref));
      const loss = refCausalLoss(logits, labels, batch.batch, batch.seq, TINY.vocab);
      // The same factors with one uniform scaling (alpha/r = 5/3) give another loss: the per-module scalings are what is checked.
      const uniform = { scaling: 5 / 3, factors: new Map([...ref.factors].map(([p, f]) => [p, { a: f.a, b: f.b, r: f.r }])) };
      const uniformLoss = refCausalLoss(refLogits(TINY, weights, refHidden(TINY, weights, batch, uniform)), labels, batch.batch, batch.seq, TINY.vocab);

      const { err, at } = maxRelError(got.logits, logits);
      assert.ok(err <= rtol, `logits differ by ${err.toExponential(2)} (relative) at ${at}: ${got.logits[at]} vs ${logits[at]}`);
      assert.ok(Math.abs(got.loss - loss) <= rtol * Math.abs(loss), `loss ${got.loss} vs reference ${loss}`);
      assert.ok(Math.abs(uniformLoss - loss) > 1e-3, `uniform scaling ${uniformLoss} vs per-module ${loss}: the test would not see a wrong scaling`);
    });
  }

  test('float64: d loss / d every A and B against central differences (eps 1e-6, rtol 1e-5, atol 1e-8)', async () => {
    const model = build('float64');
    const factors = randomLora(model, 17);
    const tensors = feedsFor(model, 'float64', weights, batch, labels, factors);
    const feeds: Feed[] = model.graph.inputs.map((v) => ({ value: v, data: tensors[v.name].data as Feed['data'], dims: tensors[v.name].dims }));

    const grads = await gradCheck(model.graph, model.loss, feeds, model.trainable, { ...F64, maxCoords: 12 });

    assert.equal(model.trainable.length, 2 * EXPECTED.length);
    for (const [i, g] of grads.entries()) assert.ok(g.some((x) => Math.abs(x) > 1e-6), `gradient of ${model.trainable[i].name} is all zero`);
  });
});
