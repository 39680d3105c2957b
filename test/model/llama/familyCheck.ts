// The small-width checks the decoder families share (families.test.ts here and in ../gemma): a
// family's float64 graph beside its float64 reference on the same seeded checkpoint and factors, and
// the reference's own hand-written backward against central differences of its loss.
import type { LlamaBuildOptions } from '../../../src/model/llama/build.js';
import type { LoraSettings, ModelGraph } from '../../../src/model/types.js';
import { assertClose } from '../../graph/gradCheck.js';
import { familyShapes, smallCheckpoint } from './checkpoints.js';
import { loraSettings, randomFactors, runBesideReference, type ReferenceRun } from './harness.js';
import type { RefLora, RefResult, RefWeights } from './reference.js';

/** A decoder family under test: the graph builder of src/model and the test's independent float64 reference (config `C`). */
export interface Family<C> {
  readonly build: (options: LlamaBuildOptions) => ModelGraph;
  readonly reference: (cfg: C, w: RefWeights, lora: RefLora | undefined, ids: number[][], mask: number[][], labels: number[][]) => RefResult;
}

/** A padded causal-LM batch of 2 × 6 tokens (vocab ≥ 39), labels −100 on the padding. */
export const IDS = [[3, 17, 29, 5, 11, 38], [7, 0, 22, 31, 2, 2]];
export const MASK = [[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]];
export const LABELS = [[3, 17, 29, 5, 11, 38], [7, 0, 22, 31, -100, -100]];

/** The graph (float64) and the reference on the same weights (smallCheckpoint of `config`) and factors. */
export async function runFamily<C>(
  family: Family<C>,
  config: Record<string, unknown>,
  ref: C,
  lora: LoraSettings,
  data: { ids: number[][]; mask: number[][]; labels: number[][] },
  extra: Partial<LlamaBuildOptions> = {},
): Promise<ReferenceRun> {
  const weights = smallCheckpoint(config);
  const model = family.build({ config, tensors: familyShapes(config), lora, task: 'causal-lm', training: false, dtype: 'float64', ...extra });
  return runBesideReference(model, weights, lora, data, (factors) => family.reference(ref, weights, { r: lora.r, scaling: lora.alpha / lora.r, factors }, data.ids, data.mask, data.labels));
}

/**
 * The reference's backward: d loss / d A and d B (rank 2, s = 2, on IDS/MASK/LABELS) at one
 * coordinate of each A and B of every adapted module that `checked` selects, against central
 * differences of the reference's own loss (eps 1e-6, rtol 1e-6, atol 1e-9).
 */
export function checkReferenceBackward<C>(family: Family<C>, config: Record<string, unknown>, ref: C, targetModules: string[], checked: (path: string) => boolean = () => true): void {
  const weights = smallCheckpoint(config);
  const model = family.build({ config, tensors: familyShapes(config), lora: loraSettings({ targetModules }), task: 'causal-lm', training: false });
  const factors = randomFactors(model, 2, 50).byPath;
  const lora = { r: 2, scaling: 2, factors };
  const base = family.reference(ref, weights, lora, IDS, MASK, LABELS);
  const eps = 1e-6;
  for (const [i, m] of model.modules.entries()) {
    if (!checked(m.path)) continue;
    for (const which of ['a', 'b'] as const) {
      const data = factors.get(m.path)![which];
      const at = (i * 7 + (which === 'a' ? 1 : 3)) % data.length;
      const saved = data[at];
      data[at] = saved + eps;
      const up = family.reference(ref, weights, lora, IDS, MASK, LABELS).loss;
      data[at] = saved - eps;
      const down = family.reference(ref, weights, lora, IDS, MASK, LABELS).loss;
      data[at] = saved;
      assertClose([base.grads.get(m.path)![which][at]], [(up - down) / (2 * eps)], 1e-6, 1e-9, `${m.path}.${which}[${at}]`);
    }
  }
}
