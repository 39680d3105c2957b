import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GraphBuilder } from '../../../src/graph/builder.js';
import { dropout } from '../../../src/graph/nn/dropout.js';
import { dropoutKeepMask } from '../../helpers/dropoutMask.js';
import { F64, gradCheck, randomData, runGraph } from '../gradCheck.js';

describe('dropout (seeded, deterministic)', () => {
  test('the mask equals the TypeScript reference, keeps about 1 − rate, and scales by 1/(1 − rate)', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', ['batch', 64]);
    const seed = g.input('seed', 'int64', []);
    const y = dropout(x, { rate: 0.25, seed, salt: 7 });
    const n = 32 * 64;
    const ones = new Float32Array(n).fill(1);
    for (const s of [0n, 12345n, -3n]) {
      const out = await runGraph(g, [{ value: x, data: ones, dims: [32, 64] }, { value: seed, data: BigInt64Array.of(s), dims: [] }], { y });
      const mask = dropoutKeepMask(s, 7, 32, 64, 0.25);
      const kept = mask.reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(kept / n - 0.75) < 0.03, `kept fraction ${kept / n} for seed ${s}`);
      out.y.data.forEach((v, i) => assert.ok(Math.abs(v - (mask[i] === 1 ? 1 / 0.75 : 0)) < 1e-6, `element ${i} is ${v}, mask ${mask[i]}`));
    }
  });

  test('different seeds and salts give different masks; the same seed gives the same mask', () => {
    const a = dropoutKeepMask(1n, 0, 16, 16, 0.5);
    const b = dropoutKeepMask(2n, 0, 16, 16, 0.5);
    const c = dropoutKeepMask(1n, 1, 16, 16, 0.5);
    const differ = (u: Uint8Array, v: Uint8Array): number => u.reduce((k, bit, i) => k + (bit !== v[i] ? 1 : 0), 0);
    assert.ok(differ(a, b) > 80 && differ(a, c) > 80, `masks too similar: ${differ(a, b)}, ${differ(a, c)}`);
    assert.deepEqual(dropoutKeepMask(1n, 0, 16, 16, 0.5), a);
  });

  test('no visible structure: per-row and per-column rates, neighbours and rectangles look independent', () => {
    const [rows, cols] = [256, 256];
    const mask = dropoutKeepMask(7n, 3, rows, cols, 0.5);
    const at = (r: number, c: number): number => mask[r * cols + c];
    for (let r = 0; r < rows; r += 17) {
      const kept = Array.from({ length: cols }, (_, c) => at(r, c)).reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(kept / cols - 0.5) < 0.15, `row ${r} keeps ${kept / cols}`);
      const keptCol = Array.from({ length: rows }, (_, k) => at(k, r)).reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(keptCol / rows - 0.5) < 0.15, `column ${r} keeps ${keptCol / rows}`);
    }
    let same = 0;
    let parity = 0;
    let n = 0;
    for (let r = 0; r + 1 < rows; r += 3) {
      for (let c = 0; c + 5 < cols; c += 3) {
        same += at(r, c) === at(r, c + 1) ? 1 : 0;
        parity += at(r, c) ^ at(r, c + 5) ^ at(r + 1, c) ^ at(r + 1, c + 5);
        n++;
      }
    }
    assert.ok(Math.abs(same / n - 0.5) < 0.03, `neighbours agree ${same / n}`);
    assert.ok(Math.abs(parity / n - 0.5) < 0.03, `rectangle parity ${parity / n}`);
  });

  test('rank 3 with symbolic leading dims matches the reference (rows = batch·seq)', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', ['batch', 'seq', 8]);
    const seed = g.input('seed', 'int64', []);
    const y = dropout(x, { rate: 0.5, seed, salt: 11 });
    const out = await runGraph(g, [{ value: x, data: new Float32Array(2 * 3 * 8).fill(1), dims: [2, 3, 8] }, { value: seed, data: BigInt64Array.of(5n), dims: [] }], { y });
    const mask = dropoutKeepMask(5n, 11, 6, 8, 0.5);
    assert.deepEqual(out.y.data, Array.from(mask, (k) => 2 * k));
  });

  test('gradient with a fixed seed is the mask times the scale (float64, eps 1e-6, rtol 1e-5)', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float64', [4, 5]);
    const seed = g.input('seed', 'int64', []);
    const y = dropout(x, { rate: 0.4, seed, salt: 3 });
    await gradCheck(g, y, [{ value: x, data: randomData(x, [4, 5], 1), dims: [4, 5] }, { value: seed, data: BigInt64Array.of(99n), dims: [] }], [x], F64);
  });

  test('rate 0 is the identity; a bad seed is a build error', () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [3]);
    const seed = g.input('seed', 'int64', []);
    assert.equal(dropout(x, { rate: 0, seed }), x);
    assert.throws(() => dropout(x, { rate: 0.1, seed: x }), /dropout: seed must be an int64 scalar/);
  });
});
