import { describe, test } from 'node:test';
import { GraphBuilder } from '../../../src/graph/builder.js';
import { layerNormalization } from '../../../src/graph/ops/layerNormalization.js';
import { F32, F64, assertClose, gradCheck, randomData, runGraph } from '../gradCheck.js';

function layerNormRef(x: ArrayLike<number>, rows: number, cols: number, scale: ArrayLike<number>, bias: ArrayLike<number>, eps: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    const xs = Array.from({ length: cols }, (_, j) => x[r * cols + j]);
    const mean = xs.reduce((a, b) => a + b, 0) / cols;
    const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / cols;
    xs.forEach((v, j) => out.push(((v - mean) / Math.sqrt(variance + eps)) * scale[j] + bias[j]));
  }
  return out;
}

describe('layerNormalization', () => {
  test('float64 (gradient recomputes the statistics in float64; eps 1e-6, rtol 1e-5)', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float64', [2, 3, 4]);
    const scale = g.input('scale', 'float64', [4]);
    const bias = g.input('bias', 'float64', [4]);
    const y = layerNormalization(x, scale, bias, { epsilon: 1e-5 });
    const feeds = [
      { value: x, data: randomData(x, [2, 3, 4], 1, -2, 2), dims: [2, 3, 4] },
      { value: scale, data: randomData(scale, [4], 2, 0.5, 1.5), dims: [4] },
      { value: bias, data: randomData(bias, [4], 3), dims: [4] },
    ];
    const out = await runGraph(g, feeds, { y });
    // epsilon is a float32 attribute, also in float64 graphs.
    assertClose(out.y.data, layerNormRef(feeds[0].data, 6, 4, feeds[1].data, feeds[2].data, Math.fround(1e-5)), 1e-10, 1e-12, 'layerNorm');
    await gradCheck(g, y, feeds, [x, scale, bias], F64);
  });

  test('float64 over the last two axes', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float64', [2, 3, 2]);
    const scale = g.input('scale', 'float64', [3, 2]);
    const y = layerNormalization(x, scale, undefined, { axis: 1 });
    await gradCheck(g, y, [{ value: x, data: randomData(x, [2, 3, 2], 4, -2, 2), dims: [2, 3, 2] }, { value: scale, data: randomData(scale, [3, 2], 5, 0.5, 1.5), dims: [3, 2] }], [x, scale], F64);
  });

  test('float32 (gradient reuses the Mean/InvStdDev outputs; eps 1e-2, rtol 2e-2, atol 2e-3)', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [3, 5]);
    const scale = g.input('scale', 'float32', [5]);
    const bias = g.input('bias', 'float32', [5]);
    const y = layerNormalization(x, scale, bias);
    const feeds = [
      { value: x, data: randomData(x, [3, 5], 6, -2, 2), dims: [3, 5] },
      { value: scale, data: randomData(scale, [5], 7, 0.5, 1.5), dims: [5] },
      { value: bias, data: randomData(bias, [5], 8), dims: [5] },
    ];
    const out = await runGraph(g, feeds, { y });
    assertClose(out.y.data, layerNormRef(feeds[0].data, 3, 5, feeds[1].data, feeds[2].data, 1e-5), 1e-5, 1e-5, 'layerNorm f32');
    await gradCheck(g, y, feeds, [x, scale, bias], F32);
  });
});
