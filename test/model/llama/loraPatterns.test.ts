// The Llama graph with a PEFT adapter's per-module settings: rank_pattern (a suffix key), alpha_pattern
// (a suffix key and a `^`-anchored full path), use_rslora (alpha/√r per module) and
// layers_to_transform [0, 2] of 3 layers with layers_pattern 'layers'. Each module's rank and scaling
// are written out below by hand from PEFT's rules; logits, loss and every LoRA gradient of the float64
// graph are checked against the independent float64 reference (reference.ts) given those scalings.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { grad } from '../../../src/graph/autodiff.js';
import { buildLlama } from '../../../src/model/llama/build.js';
import { assertClose, runGraph } from '../../graph/gradCheck.js';
import { familyShapes, smallCheckpoint } from './checkpoints.js';
import { loraSettings, modelFeeds, uniform } from './harness.js';
import { rawConfig, refConfig } from './configs.js';
import { llamaReference } from './reference.js';

// The tiny Llama of build.test.ts with 3 layers, untied.
const CONFIG = rawConfig({ layers: 3 });
const REF = refConfig({ layers: 3 });

const LORA = loraSettings({
  r: 4,
  alpha: 8,
  useRslora: true,
  targetModules: ['q_proj', 'v_proj', 'down_proj'],
  rankPattern: { 'layers.0.self_attn.q_proj': 2, down_proj: 3 },
  alphaPattern: { v_proj: 5, '^model\\.layers\\.2\\.mlp\\.down_proj': 1.5 },
  layersToTransform: [0, 2],
  layersPattern: 'layers',
});

/** Path → [rank, scaling = alpha/√rank]: layer 1 left out; keys matched at the path's end after a dot. */
const EXPECTED: [string, number, number][] = [
  ['model.layers.0.self_attn.q_proj', 2, 8 / Math.sqrt(2)],
  ['model.layers.0.self_attn.v_proj', 4, 5 / 2],
  ['model.layers.0.mlp.down_proj', 3, 8 / Math.sqrt(3)],
  ['model.layers.2.self_attn.q_proj', 4, 8 / 2],
  ['model.layers.2.self_attn.v_proj', 4, 5 / 2],
  ['model.layers.2.mlp.down_proj', 3, 1.5 / Math.sqrt(3)],
];

const ids = [[3, 17, 5, 9, 30, 2], [8, 1, 22, 39, 0, 0]];
const mask = [[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]];
const labels = [[3, 17, 5, 9, 30, 2], [8, 1, 22, 39, -100, -100]];

describe('Llama with per-module ranks, alphas, rsLoRA and layers (PEFT rank_pattern, alpha_pattern, layers_to_transform)', () => {
  test("float64: logits, loss and every dA, dB equal the float64 reference with each module's rank and scaling (rtol 1e-9)", async () => {
    const weights = smallCheckpoint(CONFIG, 4);
    const model = buildLlama({ config: CONFIG, tensors: familyShapes(CONFIG), lora: LORA, task: 'causal-lm', training: false, dtype: 'float64' });
    const factors = new Map(EXPECTED.map(([path, r, scaling], i) => {
      const m = model.modules.find((x) => x.path === path);
      assert.ok(m !== undefined, `${path} is not adapted (adapted: ${model.modules.map((x) => x.path).join(', ')})`);
      return [path, { a: uniform(r * m.inFeatures, 60 + 2 * i, -0.4, 0.4), b: uniform(m.outFeatures * r, 61 + 2 * i, -0.4, 0.4), r, scaling }];
    }));
    const values = new Map<string, Float64Array>([...weights, ...model.modules.flatMap((m) => [[m.aInput, factors.get(m.path)!.a], [m.bInput, factors.get(m.path)!.b]] as const)]);
    const ds = grad(model.loss, model.trainable);

    const out = await runGraph(model.graph, modelFeeds(model, { values, ids, mask, labels }), { loss: model.loss, logits: model.logits, ...Object.fromEntries(ds.map((d, i) => [`d${i}`, d])) });
    const ref = llamaReference(REF, weights, { r: Number.NaN, scaling: Number.NaN, factors }, ids, mask, labels);
    const uniformRef = llamaReference(REF, weights, { r: Number.NaN, scaling: 8 / 2, factors: new Map([...factors].map(([p, f]) => [p, { a: f.a, b: f.b, r: f.r }])) }, ids, mask, labels);

    assert.deepEqual(model.modules.map((m) => m.path), EXPECTED.map(([p]) => p));
    assertClose([out.loss.data[0]], [ref.loss], 1e-9, 1e-12, 'loss');
    assertClose(out.logits.data, ref.logits, 1e-9, 1e-12, 'logits');
    model.trainable.forEach((input, i) => {
      const m = model.modules.find((x) => x.aInput === input.name || x.bInput === input.name)!;
      const want = ref.grads.get(m.path)![input.name === m.aInput ? 'a' : 'b'];
      assert.equal(out[`d${i}`].data.length, want.length, `${input.name}: size`);
      assertClose(out[`d${i}`].data, want, 1e-9, 1e-12, `d loss / d ${input.name}`);
    });
    assert.ok(Math.abs(uniformRef.loss - ref.loss) > 1e-3, `one uniform scaling gives ${uniformRef.loss} vs ${ref.loss}: the check would not see a wrong scaling`);
  });
});
