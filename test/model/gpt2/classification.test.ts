import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createRng } from '../../../src/core/random.js';
import { toOnnxBytes } from '../../../src/graph/emit.js';
import { buildGpt2 } from '../../../src/model/gpt2/build.js';
import { createSession, runSession } from '../../../src/runtime/session.js';
import { TINY, feedsFor, loraSettings, maxRelError, nll, paddedBatch, randomLora, refHidden, tinyConfigJson, tinyShapes, tinyWeights } from './fixture.js';

const LABELS = 3;
const weights = tinyWeights(21);
const rng = createRng(5);
const score = Float64Array.from({ length: LABELS * TINY.d }, () => 0.5 * rng.gaussian());

describe('GPT2ForSequenceClassification', () => {
  test('logits come from the last non-padding token of each row (float64 graph vs loop reference)', async () => {
    const config = tinyConfigJson(TINY, { num_labels: LABELS });
    const model = buildGpt2({ config, tensors: tinyShapes(), lora: loraSettings(), task: 'sequence-classification', training: false, dtype: 'float64' });
    assert.deepEqual(model.fullTrainable, [{ input: 'score.weight', name: 'score.weight', shape: [LABELS, TINY.d], initStd: 0.02 }]);
    assert.equal(model.trainable.at(-1)?.name, 'score.weight');
    assert.deepEqual(model.logits.shape, ['batch', LABELS]);

    const batch = paddedBatch([6, 3, 1, 5], 6, 7);
    const labels = [0, 2, 1, 2];
    const factors = randomLora(model, 4);
    const session = await createSession(toOnnxBytes(model.graph, { outputs: { logits: model.logits, loss: model.loss } }), { intraOpThreads: 1 });
    const out = await runSession(session, feedsFor(model, 'float64', weights, batch, labels, new Map([...factors, ['score.weight', score]])));

    const hidden = refHidden(TINY, weights, batch, {
      scaling: 5 / 3,
      factors: new Map(model.modules.map((m) => [m.path, { a: factors.get(m.aInput)!, b: factors.get(m.bInput)!, r: 3 }])),
    });
    const expected = new Float64Array(batch.batch * LABELS);
    let loss = 0;
    for (let b = 0; b < batch.batch; b++) {
      let last = 0;
      for (let t = 0; t < batch.seq; t++) if (batch.mask[b * batch.seq + t] === 1) last = t;
      const h = hidden[b * batch.seq + last];
      for (let c = 0; c < LABELS; c++) {
        let acc = 0;
        for (let j = 0; j < TINY.d; j++) acc += score[c * TINY.d + j] * h[j];
        expected[b * LABELS + c] = acc;
      }
      loss += nll(expected, b * LABELS, LABELS, labels[b]) / batch.batch;
    }
    const { err, at } = maxRelError(out.logits.data as Float64Array, expected);
    assert.ok(err <= 1e-7, `logits differ by ${err} at ${at}`);
    assert.ok(Math.abs(Number((out.loss.data as Float64Array)[0]) - loss) <= 1e-7 * loss);
  });

  test('a checkpoint that already has score.weight of the right shape starts from it; num_labels 1 is refused', () => {
    const tensors = tinyShapes().set('score.weight', [LABELS, TINY.d]);
    const model = buildGpt2({ config: tinyConfigJson(TINY, { num_labels: LABELS }), tensors, lora: loraSettings(), task: 'sequence-classification', training: false });
    assert.equal(model.fullTrainable?.[0].key, 'score.weight');
    assert.throws(() => buildGpt2({ config: tinyConfigJson(TINY, { num_labels: 1 }), tensors, lora: loraSettings(), task: 'sequence-classification', training: false }), /num_labels ≥ 2 \(got 1; regression is not supported\)/);
  });
});
