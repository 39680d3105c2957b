import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GraphBuilder } from '../../../src/graph/builder.js';
import { gather } from '../../../src/graph/ops/gather.js';
import { gatherElements } from '../../../src/graph/ops/gatherElements.js';
import { F32, F64, assertClose, gradCheck, randomData, runGraph } from '../gradCheck.js';

describe('gather (embedding lookup)', () => {
  test('forward picks rows; gradient accumulates repeated indices (float64, eps 1e-6, rtol 1e-5)', async () => {
    const g = new GraphBuilder();
    const table = g.input('table', 'float64', [5, 3]);
    const ids = g.input('ids', 'int64', [2, 4]);
    const y = gather(table, ids);
    assert.deepEqual(y.shape, [2, 4, 3]);
    const data = randomData(table, [5, 3], 1);
    const idData = BigInt64Array.from([1, 3, 1, 1, 0, 3, 4, 1], BigInt); // row 1 four times, row 3 twice, row 2 never
    const feeds = [{ value: table, data, dims: [5, 3] }, { value: ids, data: idData, dims: [2, 4] }];
    const out = await runGraph(g, feeds, { y });
    assertClose(out.y.data, Array.from(idData).flatMap((r) => Array.from(data.subarray(Number(r) * 3, Number(r) * 3 + 3))), 0, 0, 'gather');
    const [dTable] = await gradCheck(g, y, feeds, [table], F64);
    assert.deepEqual(dTable.slice(6, 9), [0, 0, 0], 'an unused row gets zero gradient');
  });

  test('float32 table with many duplicates (ScatterND add; eps 1e-2, rtol 2e-2)', async () => {
    const g = new GraphBuilder();
    const table = g.input('table', 'float32', [3, 2]);
    const ids = g.input('ids', 'int64', [12]);
    const y = gather(table, ids);
    const idData = BigInt64Array.from([0, 0, 0, 0, 0, 0, 0, 2, 2, 0, 0, 0], BigInt);
    const feeds = [{ value: table, data: randomData(table, [3, 2], 2), dims: [3, 2] }, { value: ids, data: idData, dims: [12] }];
    await gradCheck(g, y, feeds, [table], F32);
  });

  test('gatherElements picks one element per row (float64, eps 1e-6, rtol 1e-5)', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float64', [3, 4]);
    const idx = g.input('idx', 'int64', [3, 2]);
    const y = gatherElements(x, idx, 1);
    const data = randomData(x, [3, 4], 3);
    const idData = BigInt64Array.from([0, 0, 3, 1, 2, 2], BigInt);
    const feeds = [{ value: x, data, dims: [3, 4] }, { value: idx, data: idData, dims: [3, 2] }];
    const out = await runGraph(g, feeds, { y });
    assertClose(out.y.data, [data[0], data[0], data[7], data[5], data[10], data[10]], 0, 0, 'gatherElements');
    await gradCheck(g, y, feeds, [x], F64);
  });
});
