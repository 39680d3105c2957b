import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { toOnnxBytes } from '../../../src/graph/emit.js';
import { dropoutKeepMask } from '../../helpers/dropoutMask.js';
import { buildGpt2 } from '../../../src/model/gpt2/build.js';
import { createSession, runSession } from '../../../src/runtime/session.js';
import {
  TINY,
  feedsFor,
  loraSettings,
  maxRelError,
  paddedBatch,
  randomLora,
  refCausalLoss,
  refHidden,
  refLogits,
  tinyConfigJson,
  tinyShapes,
  tinyWeights,
  type RefLora,
} from './fixture.js';
import type { ModelGraph } from '../../../src/model/types.js';

async function run(model: ModelGraph, feeds: Parameters<typeof runSession>[1]): Promise<{ logits: Float64Array; loss: number }> {
  const session = await createSession(toOnnxBytes(model.graph, { outputs: { logits: model.logits, loss: model.loss } }), { intraOpThreads: 1 });
  const out = await runSession(session, feeds);
  return { logits: Float64Array.from(out.logits.data as ArrayLike<number>), loss: Number((out.loss.data as ArrayLike<number>)[0]) };
}

function refLoraOf(model: ModelGraph, factors: Map<string, Float64Array>, scaling: number): RefLora {
  return {
    scaling,
    factors: new Map(model.modules.map((m) => [m.path, { a: factors.get(m.aInput)!, b: factors.get(m.bInput)!, r: 3 }])),
  };
}

const weights = tinyWeights(11);
const batch = paddedBatch([6, 4, 2], 6, 5);
// HF collators put −100 on padding labels; labels are aligned with input_ids (the loss shifts).
const labels = batch.ids.map((id, i) => (batch.mask[i] === 1 ? id : -100));

describe('GPT-2 causal LM against an independent float64 reference', () => {
  for (const dtype of ['float64', 'float32'] as const) {
    // float64: only float32 attributes (LayerNorm epsilon, the fused 1/√d) separate graph and reference.
    const rtol = dtype === 'float64' ? 1e-7 : 1e-4;
    test(`${dtype}: logits and loss with random LoRA on c_attn, c_proj, c_fc and a padded batch (rtol ${rtol})`, async () => {
      const model = buildGpt2({ config: tinyConfigJson(), tensors: tinyShapes(), lora: loraSettings(), task: 'causal-lm', training: false, dtype });
      assert.equal(model.modules.length, 4 * TINY.layers);
      const factors = randomLora(model, 3);
      const scaling = 5 / 3;

      const got = await run(model, feedsFor(model, dtype, weights, batch, labels, factors));
      const hidden = refHidden(TINY, weights, batch, refLoraOf(model, factors, scaling));
      const logits = refLogits(TINY, weights, hidden);
      const loss = refCausalLoss(logits, labels, batch.batch, batch.seq, TINY.vocab);

      const { err, at } = maxRelError(got.logits, logits);
      assert.ok(err <= rtol, `logits differ by ${err.toExponential(2)} (relative) at ${at}: ${got.logits[at]} vs ${logits[at]}`);
      assert.ok(Math.abs(got.loss - loss) <= rtol * Math.abs(loss), `loss ${got.loss} vs reference ${loss}`);
      // The LoRA path matters: without it the reference differs clearly.
      const plain = refCausalLoss(refLogits(TINY, weights, refHidden(TINY, weights, batch)), labels, batch.batch, batch.seq, TINY.vocab);
      assert.ok(Math.abs(plain - loss) > 1e-2, 'LoRA factors should change the loss');
    });
  }

  test('padding does not change a row: the padded row equals the same row alone, labels at padding do not count', async () => {
    const model = buildGpt2({ config: tinyConfigJson(), tensors: tinyShapes(), lora: loraSettings(), task: 'causal-lm', training: false });
    const factors = randomLora(model, 4);
    // Row 1 (4 tokens) alone, then inside the padded batch with only its labels counted and junk labels on padding.
    const alone = { batch: 1, seq: 4, ids: batch.ids.slice(6, 10), mask: [1, 1, 1, 1] };
    const aloneOut = await run(model, feedsFor(model, 'float32', weights, alone, alone.ids, factors));
    const rowLabels = batch.ids.map((id, i) => (i >= 6 && i < 12 ? (batch.mask[i] === 1 ? id : 7) : -100));
    const padded = await run(model, feedsFor(model, 'float32', weights, batch, rowLabels, factors));
    assert.ok(Math.abs(padded.loss - aloneOut.loss) <= 1e-5 * aloneOut.loss, `padded-row loss ${padded.loss} vs alone ${aloneOut.loss}`);
    const V = TINY.vocab;
    const rowLogits = padded.logits.slice(6 * V, 10 * V);
    const { err } = maxRelError(rowLogits, aloneOut.logits);
    assert.ok(err <= 1e-5, `logits of the real tokens differ by ${err}`);
  });

  test('rsLoRA scales by alpha/√r; freezeA leaves A out of the trainable inputs', async () => {
    const lora = loraSettings({ useRslora: true, freezeA: true, targetModules: ['c_attn'] });
    const model = buildGpt2({ config: tinyConfigJson(), tensors: tinyShapes(), lora, task: 'causal-lm', training: false, dtype: 'float64' });
    assert.deepEqual(model.trainable.map((v) => v.name), ['transformer.h.0.attn.c_attn.lora_B', 'transformer.h.1.attn.c_attn.lora_B']);
    assert.deepEqual(model.modules.map((m) => [m.path, m.baseKey, m.layout, m.inFeatures, m.outFeatures, m.aInput]), [
      ['transformer.h.0.attn.c_attn', 'h.0.attn.c_attn.weight', 'conv1d', 16, 48, 'transformer.h.0.attn.c_attn.lora_A'],
      ['transformer.h.1.attn.c_attn', 'h.1.attn.c_attn.weight', 'conv1d', 16, 48, 'transformer.h.1.attn.c_attn.lora_A'],
    ]);
    assert.equal(model.dropoutSeed, undefined);
    const factors = randomLora(model, 8);
    const got = await run(model, feedsFor(model, 'float64', weights, batch, labels, factors));
    const logits = refLogits(TINY, weights, refHidden(TINY, weights, batch, refLoraOf(model, factors, 5 / Math.sqrt(3))));
    const loss = refCausalLoss(logits, labels, batch.batch, batch.seq, TINY.vocab);
    assert.ok(Math.abs(got.loss - loss) <= 1e-7 * loss, `loss ${got.loss} vs reference ${loss} (rsLoRA)`);
  });

  test("lora_dropout in training drops the adapter input only, with the graph's seeded mask (float64)", async () => {
    const rate = 0.3;
    const lora = loraSettings({ dropout: rate, targetModules: ['c_attn'] });
    const model = buildGpt2({ config: tinyConfigJson(), tensors: tinyShapes(), lora, task: 'causal-lm', training: true, dtype: 'float64' });
    assert.equal(model.dropoutSeed?.name, 'dropout_seed');
    const factors = randomLora(model, 9);
    const seed = 12345n;
    const got = await run(model, feedsFor(model, 'float64', weights, batch, labels, factors, seed));
    // Sites are salted 1, 2, … in build order: layer 0's c_attn, then layer 1's. Rows = batch·seq, cols = n_embd.
    const rows = batch.batch * batch.seq;
    const inputScale = new Map(model.modules.map((m, i) => [m.path, Float64Array.from(dropoutKeepMask(seed, i + 1, rows, TINY.d, rate), (k) => k / (1 - rate))]));
    const ref = refLoraOf(model, factors, 5 / 3);
    const logits = refLogits(TINY, weights, refHidden(TINY, weights, batch, { ...ref, inputScale }));
    const loss = refCausalLoss(logits, labels, batch.batch, batch.seq, TINY.vocab);
    assert.ok(Math.abs(got.loss - loss) <= 1e-7 * loss, `loss ${got.loss} vs reference with dropout ${loss}`);
    const noDrop = refCausalLoss(refLogits(TINY, weights, refHidden(TINY, weights, batch, ref)), labels, batch.batch, batch.seq, TINY.vocab);
    assert.ok(Math.abs(noDrop - loss) > 1e-4, 'dropout should change the loss');
    const again = await run(model, feedsFor(model, 'float64', weights, batch, labels, factors, seed + 1n));
    assert.notEqual(again.loss, got.loss, 'a new seed gives a new mask');
  });
});
