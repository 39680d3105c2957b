// Dashboard figures: max-|·| pooling, adapter drift norms and the pooled effective-weight update,
// each against a float64 reference (non-square shapes, both residual forms and none).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { LoraFactors } from '../../../src/core/lora.js';
import { createTypeScriptBackend } from '../../../src/core/product.js';
import { createRng, randomMatrix } from '../../../src/core/random.js';
import { adapterDrift, effectiveUpdate, HEATMAP_MAX_ELEMENTS, maxAbsPool, moduleHeatmap } from '../../../src/federation/coordinator/roundFigures.js';
import type { StepModule } from '../../../src/federation/coordinator/residuals.js';
import { product64 } from './fixtures.js';

const backend = createTypeScriptBackend();

function factors(out: number, inF: number, r: number, seed: number): LoraFactors {
  const rng = createRng(seed);
  return { a: randomMatrix(r, inF, rng, 0.5), b: randomMatrix(out, r, rng, 0.5) };
}

function norm64(x: ArrayLike<number>, y: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += (x[i] - y[i]) ** 2;
  return Math.sqrt(s);
}

describe('maxAbsPool', () => {
  for (const [rows, cols] of [[70, 45], [32, 32], [5, 100], [1, 1]] as const) {
    test(`${rows} × ${cols} pools to ≤ 32 × 32 cells holding the block maxima of |x|`, () => {
      const m = randomMatrix(rows, cols, createRng(rows * 1000 + cols), 1);
      const pooled = maxAbsPool(m.data, rows, cols);
      const fr = Math.ceil(rows / 32);
      const fc = Math.ceil(cols / 32);
      assert.deepEqual([pooled.poolRows, pooled.poolCols, pooled.rows, pooled.cols], [fr, fc, Math.ceil(rows / fr), Math.ceil(cols / fc)]);
      assert.ok(pooled.rows <= 32 && pooled.cols <= 32);
      for (let i = 0; i < pooled.rows; i++)
        for (let j = 0; j < pooled.cols; j++) {
          let want = 0;
          for (let y = i * fr; y < Math.min(rows, (i + 1) * fr); y++) for (let x = j * fc; x < Math.min(cols, (j + 1) * fc); x++) want = Math.max(want, Math.abs(m.data[y * cols + x]));
          assert.equal(pooled.values[i * pooled.cols + j], want, `cell ${i}, ${j}`);
        }
    });
  }
});

test('adapter drift norms equal their float64 definitions', () => {
  const prev = factors(12, 20, 3, 1);
  const glob = factors(12, 20, 3, 2);
  const clients = [factors(12, 20, 3, 3), factors(12, 20, 3, 4)];
  const d = adapterDrift(prev, glob, clients);
  const close = (got: number, want: number, what: string): void => assert.ok(Math.abs(got - want) <= 1e-12 * want, `${what}: ${got} vs ${want}`);
  close(d.globalDeltaANorm, norm64(glob.a.data, prev.a.data), 'ΔĀ');
  close(d.globalDeltaBNorm, norm64(glob.b.data, prev.b.data), 'ΔB̄');
  clients.forEach((c, i) => {
    close(d.clientDeltaANorms[i], norm64(c.a.data, glob.a.data), `A_${i} − Ā`);
    close(d.clientDeltaBNorms[i], norm64(c.b.data, glob.b.data), `B_${i} − B̄`);
  });
});

describe('effective-weight update of a round', () => {
  const out = 40;
  const inF = 70;
  const r = 3;
  const scale = 1.7;
  const previous = factors(out, inF, r, 10);
  const global = factors(out, inF, r, 11);
  const rng = createRng(12);
  const p = randomMatrix(out, 9, rng, 0.3);
  const q = randomMatrix(9, inF, rng, 0.3);
  const d = randomMatrix(out, inF, rng, 0.3);
  const cases: [string, StepModule | undefined, Float64Array][] = [
    ['no base change (FedIT, FFA)', undefined, new Float64Array(out * inF)],
    ['factored FedEx step', { module: 'm', form: 'factored', scale: 0.8, p, q }, product64(p, q, 0.8)],
    ['dense FedEx step', { module: 'm', form: 'dense', scale: 1, d }, Float64Array.from(d.data)],
  ];
  for (const [label, step, baseDelta] of cases) {
    test(`${label}: ΔW = s·B̄Ā − s·B̄₀Ā₀ + ΔW0 (float64 reference, out ≠ in)`, async () => {
      const want = product64(global.b, global.a, scale);
      const before = product64(previous.b, previous.a, scale);
      for (let i = 0; i < want.length; i++) want[i] += baseDelta[i] - before[i];
      const layout = { module: 'm', out, in: inF, rank: r, fanInFanOut: true };
      const got = await effectiveUpdate({ layout, scale, previous, global, ...(step !== undefined ? { step } : {}) }, backend);
      assert.deepEqual(got.shape, [out, inF], 'nn.Linear orientation even for a fanInFanOut module');
      let size = 0;
      for (const v of want) size = Math.max(size, Math.abs(v));
      for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got.data[i] - want[i]) <= 1e-6 * size, `element ${i}: ${got.data[i]} vs ${want[i]}`);
      const heat = await moduleHeatmap({ layout, scale, previous, global, ...(step !== undefined ? { step } : {}) }, backend);
      const pooled = maxAbsPool(want, out, inF);
      assert.deepEqual([heat.rows, heat.cols, heat.poolRows, heat.poolCols], [pooled.rows, pooled.cols, pooled.poolRows, pooled.poolCols]);
      heat.values!.forEach((v, i) => assert.ok(Math.abs(v - pooled.values[i]) <= 1e-5 * size, `cell ${i}: ${v} vs ${pooled.values[i]}`));
      assert.ok(Math.abs(heat.maxAbs! - size) <= 1e-5 * size);
    });
  }

  test('a module over the element cap gets a note instead of values (nothing dense is formed)', async () => {
    const big = { module: 'huge', out: 4096, in: 2048, rank: 1, fanInFanOut: false };
    const tiny = { a: { shape: [1, 2048] as [number, number], data: new Float32Array(0) }, b: { shape: [4096, 1] as [number, number], data: new Float32Array(0) } };
    const heat = await moduleHeatmap({ layout: big, scale: 1, previous: tiny, global: tiny }, backend);
    assert.ok(4096 * 2048 > HEATMAP_MAX_ELEMENTS);
    assert.equal(heat.values, null);
    assert.match(heat.note ?? '', /not computed: 4096 × 2048/);
  });
});
