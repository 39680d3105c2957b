// Base updates for clients behind the coordinator: one step travels as it was applied (so the
// client lands on the same bits); several steps are combined (factors concatenated with the scales
// folded in, or summed densely) and land on the coordinator's base to float32 round-off.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createTypeScriptBackend } from '../../../src/core/product.js';
import { createRng, randomMatrix } from '../../../src/core/random.js';
import type { Matrix } from '../../../src/core/tensor.js';
import type { ModuleLayout } from '../../../src/federation/protocol/adapterTensors.js';
import { applyResidual, moduleLayout, storedShape } from '../../../src/federation/shared/baseWeights.js';
import { ResidualHistory, type ResidualStep, type StepModule } from '../../../src/federation/coordinator/residuals.js';

const backend = createTypeScriptBackend();
const M: ModuleLayout = { module: 'h.0.attn.c_attn', in: 24, out: 40, rank: 2, fanInFanOut: true };

function step(revision: number, rng: ReturnType<typeof createRng>): ResidualStep {
  const mod: StepModule = { module: M.module, form: 'factored', scale: 1.5 + revision, p: randomMatrix(M.out, 4, rng, 0.1), q: randomMatrix(4, M.in, rng, 0.1) };
  return { revision, round: revision, modules: [mod] };
}

async function applyAll(w: Matrix<Float32Array>, payload: Awaited<ReturnType<ResidualHistory['updateBetween']>>): Promise<void> {
  const tensors = new Map(payload.tensors.map((t) => [t.name, t]));
  for (const e of payload.entries) await applyResidual(w, M, e, tensors, backend);
}

test('one step travels verbatim; several combine; a client without factored support gets dense; all land on the same base', async () => {
  const rng = createRng(5);
  const steps = [1, 2, 3].map((r) => step(r, rng));
  const history = new ResidualHistory(async (r) => steps[r - 1]);
  for (const s of steps) history.add(s);
  const [rows, cols] = storedShape(M);
  const w0 = randomMatrix(rows, cols, rng, 0.02);
  // The coordinator's base: every step applied in turn.
  const coord = { shape: w0.shape, data: Float32Array.from(w0.data) } as Matrix<Float32Array>;
  for (const s of steps) for (const m of s.modules) if (m.form === 'factored') await backend.addScaledProduct(coord, moduleLayout(M), m.p, m.q, m.scale);

  const one = await history.updateBetween(2, 3, [M], true, backend);
  assert.deepEqual(one.entries, [{ module: M.module, form: 'factored', innerDim: 4, scale: 4.5 }]);
  assert.equal(one.tensors[0].data, (steps[2].modules[0] as { p: Matrix<Float32Array> }).p.data, 'the step itself, not a copy');

  const combined = await history.updateBetween(0, 3, [M], true, backend);
  assert.deepEqual(combined.entries, [{ module: M.module, form: 'factored', innerDim: 12, scale: 1 }]);
  const dense = await history.updateBetween(0, 3, [M], false, backend);
  assert.deepEqual(dense.entries, [{ module: M.module, form: 'dense', innerDim: 0, scale: 1 }]);

  for (const payload of [combined, dense]) {
    const w = { shape: w0.shape, data: Float32Array.from(w0.data) } as Matrix<Float32Array>;
    await applyAll(w, payload);
    let err = 0;
    let size = 0;
    for (let i = 0; i < w.data.length; i++) {
      err = Math.max(err, Math.abs(w.data[i] - coord.data[i]));
      size = Math.max(size, Math.abs(coord.data[i] - w0.data[i]));
    }
    assert.ok(size > 1e-2 && err <= 1e-6 * size + 1e-7, `${payload.entries[0].form}: error ${err} vs update ${size}`);
  }
  // A module untouched by a step is absent from the update.
  assert.deepEqual((await history.updateBetween(0, 3, [{ ...M, module: 'other' }], true, backend)).entries, []);
});

test('steps evicted from memory are read back through the loader', async () => {
  const rng = createRng(6);
  const steps = [1, 2].map((r) => step(r, rng));
  const loaded: number[] = [];
  const history = new ResidualHistory(async (r) => {
    loaded.push(r);
    return steps[r - 1];
  });
  for (const s of steps) history.add(s);
  history.evictUpTo(1);
  await history.updateBetween(0, 2, [M], true, backend);
  assert.deepEqual(loaded, [1]);
});
