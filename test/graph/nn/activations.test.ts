import { describe, test } from 'node:test';
import { GraphBuilder } from '../../../src/graph/builder.js';
import { geluErf, geluTanh } from '../../../src/graph/nn/gelu.js';
import { rmsNorm } from '../../../src/graph/nn/rmsNorm.js';
import { silu } from '../../../src/graph/nn/silu.js';
import { F64, assertClose, checkUnary, erfRef, gradCheck, randomData, runGraph } from '../gradCheck.js';

describe('activations and RMSNorm', () => {
  test('geluTanh (GPT-2 gelu_new) in float64: forward and gradient (eps 1e-6, rtol 1e-5)', async () => {
    const ref = (v: number): number => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
    await checkUnary(geluTanh, { dtype: 'float64', dims: [3, 4], seed: 1, range: [-3, 3], ref, rtol: 1e-12, atol: 1e-14, what: 'geluTanh' });
  });

  test('geluErf (BERT gelu) in float32, as the CPU provider has no float64 Erf (eps 1e-2, rtol 2e-2, atol 2e-3)', async () => {
    await checkUnary(geluErf, { dtype: 'float32', dims: [3, 4], seed: 2, range: [-3, 3], ref: (v) => 0.5 * v * (1 + erfRef(v / Math.SQRT2)), rtol: 1e-5, atol: 1e-6, what: 'geluErf' });
  });

  test('silu in float64 (eps 1e-6, rtol 1e-5)', async () => {
    await checkUnary(silu, { dtype: 'float64', dims: [2, 5], seed: 3, range: [-4, 4], ref: (v) => v / (1 + Math.exp(-v)), rtol: 1e-12, atol: 1e-14, what: 'silu' });
  });

  test('silu in float32, where onnxruntime fuses it (eps 1e-2, rtol 2e-2, atol 2e-3)', async () => {
    await checkUnary(silu, { dtype: 'float32', dims: [2, 5], seed: 3, range: [-4, 4], ref: (v) => v / (1 + Math.exp(-v)), rtol: 1e-5, atol: 1e-6, what: 'silu f32' });
  });

  test('rmsNorm (HF LlamaRMSNorm) in float64 (eps 1e-6, rtol 1e-5)', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float64', [2, 3, 4]);
    const w = g.input('w', 'float64', [4]);
    const y = rmsNorm(x, w, 1e-6);
    const xd = randomData(x, [2, 3, 4], 4, -2, 2);
    const wd = randomData(w, [4], 5, 0.5, 1.5);
    const feeds = [{ value: x, data: xd, dims: [2, 3, 4] }, { value: w, data: wd, dims: [4] }];
    const out = await runGraph(g, feeds, { y });
    const ref: number[] = [];
    for (let r = 0; r < 6; r++) {
      const row = Array.from(xd.subarray(r * 4, r * 4 + 4));
      const inv = 1 / Math.sqrt(row.reduce((a, v) => a + v * v, 0) / 4 + 1e-6);
      row.forEach((v, j) => ref.push(wd[j] * v * inv));
    }
    assertClose(out.y.data, ref, 1e-12, 1e-14, 'rmsNorm');
    await gradCheck(g, y, feeds, [x, w], F64);
  });
});
