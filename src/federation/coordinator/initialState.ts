/**
 * The state of a new federation (round 0): the plan, a float32 copy of the pristine adapted base
 * weights checked against the layout, and the initial global adapter — given, or PEFT's init
 * (A Kaiming-uniform with a = √5 from the seed, B = 0); for Fed-SB the seeded A, B and R = 0 of core/loraSb.ts.
 */
import type { LoraFactors } from '../../core/lora.js';
import { createRng, kaimingUniform } from '../../core/random.js';
import { initSbFactors } from '../../core/loraSb.js';
import type { Matrix } from '../../core/tensor.js';
import { storedShape } from '../shared/baseWeights.js';
import { resolvePlan, type CoordinatorConfig, type FederationPlan } from './config.js';
import type { CoordinatorState } from './coordinator.js';
import { CoordinatorError } from './errors.js';
import { RunStore } from './store.js';

/** PEFT's LoRA init for every layout module, seeded. */
export function initialAdapter(plan: FederationPlan): Map<string, LoraFactors> {
  const rng = createRng(plan.seed);
  return new Map(plan.layout.map((m) => [m.module, {
    a: kaimingUniform(m.rank, m.in, rng),
    b: { shape: [m.out, m.rank], data: new Float32Array(m.out * m.rank) } as Matrix<Float32Array>,
  }]));
}

function copyMatrix(m: Matrix): Matrix<Float32Array> {
  return { shape: [m.shape[0], m.shape[1]], data: Float32Array.from(m.data) };
}

/** Resolves the plan and builds round 0's state; throws `CONFIG_INVALID` naming a missing or misshapen module. */
export async function initialState(config: CoordinatorConfig): Promise<{ plan: FederationPlan; state: CoordinatorState }> {
  const plan = resolvePlan(config);
  let loaded: ReadonlyMap<string, Matrix>;
  try {
    loaded = await config.base.load(plan.layout);
  } catch (err) {
    throw new CoordinatorError('CONFIG_INVALID', `coordinator config: ${(err as Error).message}`);
  }
  const base = new Map<string, Matrix<Float32Array>>();
  for (const m of plan.layout) {
    const w = loaded.get(m.module);
    const [rows, cols] = storedShape(m);
    if (w === undefined) throw new CoordinatorError('CONFIG_INVALID', `coordinator config: base has no weight for layout module ${m.module}`);
    if (w.shape[0] !== rows || w.shape[1] !== cols) {
      throw new CoordinatorError('CONFIG_INVALID', `coordinator config: base weight of ${m.module} is [${w.shape.join(', ')}], the layout needs [${rows}, ${cols}]`);
    }
    base.set(m.module, copyMatrix(w));
  }
  const global = new Map<string, LoraFactors>();
  if (plan.method === 'fedsb') {
    // Fed-SB's A and B stay at their seeded init for the whole federation; an adapter trained as plain LoRA has no R to start from.
    if (config.initialAdapter !== undefined) throw new CoordinatorError('CONFIG_INVALID', 'coordinator config: fedsb starts from its own seeded A, B and R = 0 (core/loraSb.ts); an initialAdapter cannot be given');
    for (const m of plan.layout) global.set(m.module, initSbFactors(plan.seed, { name: m.module, rank: m.rank, inFeatures: m.in, outFeatures: m.out }));
  }
  const init = plan.method === 'fedsb' ? global : config.initialAdapter ?? initialAdapter(plan);
  for (const m of plan.layout) {
    const f = init.get(m.module);
    if (f === undefined || f.a.shape[0] !== m.rank || f.a.shape[1] !== m.in || f.b.shape[0] !== m.out || f.b.shape[1] !== m.rank) {
      throw new CoordinatorError('CONFIG_INVALID', `coordinator config: initialAdapter lacks module ${m.module} or has the wrong shapes (need A [${m.rank}, ${m.in}], B [${m.out}, ${m.rank}])`);
    }
    global.set(m.module, { a: copyMatrix(f.a), b: copyMatrix(f.b), ...(f.r !== undefined ? { r: copyMatrix(f.r) } : {}) });
  }
  const files = RunStore.fileNames(0, 0);
  return {
    plan,
    state: { round: 0, revision: 0, roundsCompleted: 0, global, base, registry: new Map(), history: [], globalFile: files.globalFile, baseFile: files.baseFile, done: null },
  };
}
