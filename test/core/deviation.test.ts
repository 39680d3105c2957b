import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { deviationNorms, factoredFrobeniusNorm, gramOfColumns, gramOfRows, moduleDeviation, relativeDeviation, summarizeDeviations } from '../../src/core/deviation.js';
import { weightedAverage } from '../../src/core/average.js';
import { createRng, randomMatrix } from '../../src/core/random.js';
import type { LoraFactors } from '../../src/core/lora.js';
import { frobenius, randomClients, refMatmul, spec } from './reference.js';
import { denseResidual } from './residualReference.js';

/** Dense float64 Σ w_i B_i A_i. */
function denseIdeal(clients: readonly LoraFactors[], w: readonly number[]): Float64Array {
  const out = new Float64Array(clients[0].b.shape[0] * clients[0].a.shape[1]);
  clients.forEach((c, i) =>
    refMatmul(c.b, c.a).forEach((v, x) => {
      out[x] += w[i] * v;
    })
  );
  return out;
}

describe('deviation metrics (Gram identities, no dense product)', () => {
  test('Gram kernels equal naive dot products, odd sizes included', () => {
    for (const [rows, cols] of [[1, 5], [3, 7], [6, 4], [9, 13]]) {
      const m = randomMatrix(rows, cols, createRng(rows * cols));
      const g = gramOfRows(m.data, rows, cols);
      const gc = gramOfColumns(m.data, rows, cols);
      for (let i = 0; i < rows; i++) {
        for (let j = 0; j < rows; j++) {
          let s = 0;
          for (let x = 0; x < cols; x++) s += m.data[i * cols + x] * m.data[j * cols + x];
          assert.ok(Math.abs(g[i * rows + j] - s) <= 1e-12 * (1 + Math.abs(s)), `rows ${rows}×${cols} at ${i},${j}`);
        }
      }
      for (let i = 0; i < cols; i++) {
        for (let j = 0; j < cols; j++) {
          let s = 0;
          for (let o = 0; o < rows; o++) s += m.data[o * cols + i] * m.data[o * cols + j];
          assert.ok(Math.abs(gc[i * cols + j] - s) <= 1e-12 * (1 + Math.abs(s)));
        }
      }
    }
  });

  test('‖P·Q‖_F by Gram matrices equals the dense norm', () => {
    const rng = createRng(4);
    const p = randomMatrix(17, 6, rng);
    const q = randomMatrix(6, 11, rng);
    const dense = frobenius(refMatmul(p, q));
    assert.ok(Math.abs(factoredFrobeniusNorm(p, q) - dense) <= 1e-12 * dense);
  });

  for (const [k, out, inF, r, scale] of [[2, 8, 12, 2, 2], [3, 15, 9, 3, 0.5], [7, 6, 6, 1, 4]] as const) {
    test(`‖s·ΔR‖, ‖s·Σ w_i B_i A_i‖ and their ratio equal the dense computation (k=${k}, ${out}×${inF})`, () => {
      const clients = randomClients(spec('m', out, inF, r, 'linear'), k, createRng(k + out));
      const w = Array.from({ length: k }, (_, i) => (i + 1) / ((k * (k + 1)) / 2));
      const abar = weightedAverage(clients.map((c) => c.a), w);
      const bbar = weightedAverage(clients.map((c) => c.b), w);
      const norms = deviationNorms(clients, w, abar, bbar, scale);
      const dev = scale * frobenius(denseResidual(clients, w, abar, bbar).data);
      const ideal = scale * frobenius(denseIdeal(clients, w));

      assert.ok(Math.abs(norms.deviationNorm - dev) <= 1e-10 * ideal, `${norms.deviationNorm} vs ${dev}`);
      assert.ok(Math.abs(norms.idealUpdateNorm - ideal) <= 1e-10 * ideal, `${norms.idealUpdateNorm} vs ${ideal}`);
      assert.ok(Math.abs(norms.relativeDeviation - dev / ideal) <= 1e-9);
      assert.ok(norms.relativeDeviation > 0.05, 'non-trivial deviation in this data');
    });
  }

  test("identical A on every client: deviation is only B̄'s float32 rounding (≤ 1e-7 relative)", () => {
    const s = spec('m', 9, 7, 2, 'linear');
    const base = randomClients(s, 3, createRng(6));
    const clients = base.map((c) => ({ a: base[0].a, b: c.b }));
    const w = [0.2, 0.3, 0.5];
    const norms = deviationNorms(clients, w, base[0].a, weightedAverage(clients.map((c) => c.b), w), 1);
    assert.ok(norms.relativeDeviation < 1e-7, `${norms.relativeDeviation}`);
  });

  test('0/0 is 0; a loss with no ideal update is Infinity', () => {
    assert.equal(relativeDeviation(0, 0), 0);
    assert.equal(relativeDeviation(1, 0), Infinity);
    assert.equal(relativeDeviation(1, 4), 0.25);
  });

  test('summaries combine norms as √Σ‖·‖² by type and by layer', () => {
    const items = [
      moduleDeviation('model.layers.0.self_attn.q_proj', { deviationNorm: 3, idealUpdateNorm: 4, relativeDeviation: 0.75 }),
      moduleDeviation('model.layers.1.self_attn.q_proj', { deviationNorm: 4, idealUpdateNorm: 3, relativeDeviation: 4 / 3 }),
      moduleDeviation('model.layers.1.mlp.down_proj', { deviationNorm: 0, idealUpdateNorm: 0, relativeDeviation: 0 }),
      moduleDeviation('lm_head', { deviationNorm: 1, idealUpdateNorm: 2, relativeDeviation: 0.5 }),
    ];
    const summary = summarizeDeviations(items);
    const q = summary.byType.find((t) => t.moduleType === 'q')!;

    assert.equal(summary.total.modules, 4);
    assert.ok(Math.abs(q.deviationNorm - 5) < 1e-12 && Math.abs(q.idealUpdateNorm - 5) < 1e-12 && Math.abs(q.relativeDeviation - 1) < 1e-12);
    assert.equal(q.maxRelativeDeviation, 4 / 3);
    assert.deepEqual(summary.byLayer.map((l) => [l.layer, l.modules]), [[0, 1], [1, 2], [null, 1]]);
    assert.deepEqual(summary.byType.map((t) => t.moduleType).sort(), ['mlp', 'other', 'q']);
  });
});
