// `fedex eval --adapter` and `fedex train --adapter` (real `fedex` processes) on adapters written as
// PEFT writes them with per-module ranks and alphas (rank_pattern, alpha_pattern), use_rslora, and
// layers_to_transform + layers_pattern: on the shipped tiny GPT-2 and on a 3-layer Llama. The eval loss
// must equal the float64 reference (test/model) run on the very examples the trainer encodes, with each
// module's rank and scaling worked out below by hand from PEFT's rules; one SGD step from the Llama
// adapter must move every factor by lr × the reference gradient; the adapter written keeps the
// adapter's per-module configuration. A pattern that selects nothing, a rank ≤ 0 and a layer past the
// model's depth are refused with a message naming them.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { withSafetensors } from '../../src/formats/safetensors.js';
import { spawnFedex } from '../helpers/fedexProcess.js';
import { suiteTempDir } from '../helpers/tempDir.js';
import type { TinyConfig } from '../model/gpt2/fixture.js';
import {
  encodedExamples,
  gpt2ReferenceLoss,
  llamaReferenceLoss,
  patternFactors,
  readWeights64,
  writeArithJsonl,
  writePeftFolderByHand,
  writeTinyLlamaFolder,
  type PatternModule,
} from '../trainer/peftPatterns.js';

const SHIPPED = fileURLToPath(new URL('../../models/tiny-gpt2', import.meta.url));
const GPT2: TinyConfig = { vocab: 512, d: 96, layers: 3, heads: 4, inner: 384, positions: 128, eps: 1e-5 };
const SEQ = 32;
/** Float32 graph against the float64 reference: measured 5e-8 (GPT-2) and 9e-8 (Llama), relative. */
const LOSS_RTOL = 1e-6;

/** The GPT-2 adapter: r 4, alpha 8, rsLoRA; layers 0 and 2 of 3 (layers_pattern 'h'). */
const GPT2_CONFIG = {
  r: 4,
  lora_alpha: 8,
  use_rslora: true,
  fan_in_fan_out: true,
  target_modules: ['c_attn', 'c_proj', 'c_fc'],
  rank_pattern: { 'h.0.attn.c_attn': 2, 'mlp.c_proj': 6 },
  alpha_pattern: { c_fc: 3 },
  layers_to_transform: [0, 2],
  layers_pattern: 'h',
};
/** Rank and scaling alpha/√rank by PEFT's rules: 'mlp.c_proj' does not match attn.c_proj; layer 1 is left out. */
const GPT2_MODULES: PatternModule[] = [0, 2].flatMap((l) => [
  { path: `transformer.h.${l}.attn.c_attn`, inFeatures: 96, outFeatures: 288, rank: l === 0 ? 2 : 4, scaling: l === 0 ? 8 / Math.sqrt(2) : 8 / 2 },
  { path: `transformer.h.${l}.attn.c_proj`, inFeatures: 96, outFeatures: 96, rank: 4, scaling: 8 / 2 },
  { path: `transformer.h.${l}.mlp.c_fc`, inFeatures: 96, outFeatures: 384, rank: 4, scaling: 3 / 2 },
  { path: `transformer.h.${l}.mlp.c_proj`, inFeatures: 384, outFeatures: 96, rank: 6, scaling: 8 / Math.sqrt(6) },
]);

/** The Llama adapter: r 4, alpha 8, rsLoRA; layers 0 and 2 of 3 (layers_pattern 'layers'). */
const LLAMA_CONFIG = {
  r: 4,
  lora_alpha: 8,
  use_rslora: true,
  target_modules: ['q_proj', 'v_proj', 'down_proj'],
  rank_pattern: { 'layers.0.self_attn.q_proj': 2, down_proj: 3 },
  alpha_pattern: { v_proj: 5 },
  layers_to_transform: [0, 2],
  layers_pattern: 'layers',
};
const LLAMA_MODULES: PatternModule[] = [0, 2].flatMap((l) => [
  { path: `model.layers.${l}.self_attn.q_proj`, inFeatures: 16, outFeatures: 16, rank: l === 0 ? 2 : 4, scaling: l === 0 ? 8 / Math.sqrt(2) : 8 / 2 },
  { path: `model.layers.${l}.self_attn.v_proj`, inFeatures: 16, outFeatures: 8, rank: 4, scaling: 5 / 2 },
  { path: `model.layers.${l}.mlp.down_proj`, inFeatures: 24, outFeatures: 16, rank: 3, scaling: 8 / Math.sqrt(3) },
]);

async function fedex(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return spawnFedex(args).done;
}

async function evalLoss(model: string, adapter: string, data: string): Promise<number> {
  const r = await fedex('eval', '--model', model, '--adapter', adapter, '--data', data, '--seq-len', String(SEQ), '--no-exact-match', '--threads', '1', '--json');
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { loss: number }).loss;
}

function assertLoss(got: number, want: number, what: string): void {
  assert.ok(Math.abs(got - want) <= LOSS_RTOL * Math.abs(want), `${what}: fedex eval ${got} vs float64 reference ${want} (relative ${(Math.abs(got - want) / want).toExponential(2)})`);
}

describe('fedex eval / train --adapter with rank_pattern, alpha_pattern, use_rslora and layers_to_transform', { timeout: 300_000 }, () => {
  const tmp = suiteTempDir('peft-patterns');
  let data: string;
  let llama: string;
  let llamaRef: Awaited<ReturnType<typeof writeTinyLlamaFolder>>;
  before(async () => {
    data = join(tmp.path, 'arith.jsonl');
    await writeArithJsonl(data, 6, 3);
    llama = join(tmp.path, 'llama');
    llamaRef = await writeTinyLlamaFolder(llama);
  });

  test("GPT-2 (Conv1D, fan_in_fan_out): the eval loss equals the float64 reference with each module's rank and scaling", async () => {
    const adapter = join(tmp.path, 'gpt2-adapter');
    const factors = patternFactors(GPT2_MODULES, 500, 0.1);
    await writePeftFolderByHand(adapter, GPT2_CONFIG, factors, GPT2_MODULES);

    const loss = await evalLoss(SHIPPED, adapter, data);

    const weights = await readWeights64(join(SHIPPED, 'model.safetensors'));
    const { eval: examples } = await encodedExamples(SHIPPED, data, SEQ);
    assert.equal(examples.length, 6);
    const want = gpt2ReferenceLoss(GPT2, weights, examples, GPT2_MODULES, factors);
    assertLoss(loss, want, 'GPT-2');
    // One scaling for every module (alpha/√r = 4) would give another loss: the per-module scalings are what is checked.
    const uniform = gpt2ReferenceLoss(GPT2, weights, examples, GPT2_MODULES.map((m) => ({ ...m, scaling: 4 })), factors);
    assert.ok(Math.abs(uniform - want) > 1e-3, `uniform ${uniform} vs per-module ${want}`);
  });

  test('Llama: the eval loss equals the reference, one SGD step moves every factor by lr × the reference gradient, and the adapter written keeps the configuration', async () => {
    const adapter = join(tmp.path, 'llama-adapter');
    const out = join(tmp.path, 'llama-step');
    const factors = patternFactors(LLAMA_MODULES, 700, 0.3);
    await writePeftFolderByHand(adapter, LLAMA_CONFIG, factors, LLAMA_MODULES);
    const lr = 20;

    const loss = await evalLoss(llama, adapter, data);
    const step = await fedex('train', '--model', llama, '--adapter', adapter, '--data', data, '--eval-data', data, '--steps', '1', '--optimizer', 'sgd', '--lr', String(lr), '--schedule', 'constant', '--max-grad-norm', '0', '--batch-size',
      '6', '--seq-len', String(SEQ), '--eval-examples', '0', '--threads', '1', '--out', out);

    assert.equal(step.code, 0, step.stderr);
    const weights = await readWeights64(join(llama, 'model.safetensors'));
    const examples = await encodedExamples(llama, data, SEQ);
    assert.equal(examples.train.length, 6, 'one batch holds every training example');
    const ref = llamaReferenceLoss(llamaRef, weights, examples.eval, LLAMA_MODULES, factors);
    assertLoss(loss, ref.loss, 'Llama');
    const uniform = llamaReferenceLoss(llamaRef, weights, examples.eval, LLAMA_MODULES.map((m) => ({ ...m, scaling: 4 })), factors).loss;
    assert.ok(Math.abs(uniform - ref.loss) > 1e-4, `uniform ${uniform} vs per-module ${ref.loss}`);
    const grads = llamaReferenceLoss(llamaRef, weights, examples.train, LLAMA_MODULES, factors).grads;
    await withSafetensors(join(out, 'adapter_model.safetensors'), async (st) => {
      for (const m of LLAMA_MODULES) {
        for (const [factor, before, want] of [['A', factors.get(m.path)!.a, grads.get(m.path)!.a], ['B', factors.get(m.path)!.b, grads.get(m.path)!.b]] as const) {
          const after = await st.readTensor(`base_model.model.${m.path}.lora_${factor}.weight`);
          assert.deepEqual(after.shape, factor === 'A' ? [m.rank, m.inFeatures] : [m.outFeatures, m.rank], `${m.path} ${factor}: shape`);
          const scale = Math.max(...want.map(Math.abs));
          // Float32 step against the float64 gradient: measured up to 1.0e-6 of the largest entry.
          const err = Math.max(...want.map((g, i) => Math.abs((before[i] - after.data[i]) / lr - g)));
          assert.ok(scale > 1e-4 && err <= 1e-5 * scale, `${m.path} ${factor}: step/lr differs from the reference gradient by ${err.toExponential(2)} (largest ${scale.toExponential(2)})`);
        }
      }
    });
    const written = JSON.parse(await readFile(join(out, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    for (const [key, value] of Object.entries(LLAMA_CONFIG)) assert.deepEqual(written[key], value, `adapter_config.json ${key}`);
  });

  test('fedex train --plan --adapter: the plan names every module rank of the rank_pattern (table and JSON)', async () => {
    const adapter = join(tmp.path, 'llama-plan-adapter');
    await writePeftFolderByHand(adapter, LLAMA_CONFIG, patternFactors(LLAMA_MODULES, 701, 0.3), LLAMA_MODULES);
    const flags = ['train', '--plan', '--model', llama, '--adapter', adapter, '--data', data, '--seq-len', String(SEQ)];

    const json = await fedex(...flags, '--json');
    const table = await fedex(...flags);

    assert.equal(json.code, 0, json.stderr);
    const plan = JSON.parse(json.stdout) as { rank: number; ranks: number[]; modules: number; trainableParameters: number };
    assert.deepEqual(plan.ranks, [2, 3, 4]);
    assert.equal(plan.rank, 4);
    assert.equal(plan.modules, LLAMA_MODULES.length);
    assert.equal(plan.trainableParameters, LLAMA_MODULES.reduce((s, m) => s + m.rank * (m.inFeatures + m.outFeatures), 0));
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /LoRA r 2\/3\/4 \(rank_pattern\) on 6 modules/);
  });

  test("refused with a message naming the problem: a rank_pattern key that matches no module, a rank ≤ 0, a layer past the model's depth", async () => {
    const modules: PatternModule[] = [0, 1, 2].map((l) => ({ path: `transformer.h.${l}.attn.c_attn`, inFeatures: 96, outFeatures: 288, rank: 4, scaling: 2 }));
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ['no-match', { rank_pattern: { q_proj: 2 } }, /rank_pattern key 'q_proj' matches none of the 3 adapted modules/],
      ['zero-rank', { rank_pattern: { c_attn: 0 } }, /'rank_pattern' entry 'c_attn' must be a positive integer, got 0/],
      ['past-depth', { layers_to_transform: [1, 3] }, /layers_to_transform \[1,3\] names layer 3, but the model's adaptable modules sit in 3 layers \(0–2\)/],
    ];
    for (const [name, fields, message] of cases) {
      const adapter = join(tmp.path, `bad-${name}`);
      await writePeftFolderByHand(adapter, { r: 4, lora_alpha: 8, fan_in_fan_out: true, target_modules: ['c_attn'], ...fields }, patternFactors(modules, 900), modules);

      const r = await fedex('eval', '--adapter', adapter, '--data', data, '--seq-len', String(SEQ), '--no-exact-match', '--threads', '1');

      assert.notEqual(r.code, 0, `${name}: exit code`);
      assert.match(r.stderr, message, name);
    }
  });
});
