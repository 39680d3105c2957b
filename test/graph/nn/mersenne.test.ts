import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GraphBuilder } from '../../../src/graph/builder.js';
import { addModP, MERSENNE_31, modP, mulModP } from '../../../src/graph/nn/mersenne.js';
import { random, runGraph } from '../gradCheck.js';

const P = BigInt(MERSENNE_31);

describe('arithmetic modulo 2³¹ − 1 in uint32', () => {
  test('modP, addModP and mulModP (general, squaring, constant factor) equal BigInt arithmetic exactly', async () => {
    // Limb edges (2¹⁵, 2¹⁶ and their neighbours), P − 1, and random values in [0, P).
    const edges = [0, 1, 2, 32767, 32768, 65535, 65536, 65537, 2 ** 30, MERSENNE_31 - 2, MERSENNE_31 - 1];
    const a = [...edges, ...random(64, 100, 0, MERSENNE_31).map(Math.floor)];
    const b = [...[...edges].reverse(), ...a.slice(edges.length).map((v, i) => (v * 7 + i) % MERSENNE_31)];
    // modP takes any uint32: up to 2³² − 1.
    const z = [0, MERSENNE_31 - 1, MERSENNE_31, MERSENNE_31 + 1, 2 * MERSENNE_31, 2 ** 32 - 1, ...a];
    const c = 1103515245;
    const g = new GraphBuilder();
    const va = g.input('a', 'uint32', ['n']);
    const vb = g.input('b', 'uint32', ['n']);
    const vz = g.input('z', 'uint32', ['m']);

    const out = await runGraph(g, [
      { value: va, data: Uint32Array.from(a), dims: [a.length] },
      { value: vb, data: Uint32Array.from(b), dims: [b.length] },
      { value: vz, data: Uint32Array.from(z), dims: [z.length] },
    ], { mod: modP(vz), sum: addModP(va, vb), product: mulModP(va, vb), square: mulModP(va, va), scaled: mulModP(va, c) });

    const big = (xs: readonly number[]): bigint[] => xs.map(BigInt);
    assert.deepEqual(big(out.mod.data), big(z).map((v) => v % P));
    assert.deepEqual(big(out.sum.data), a.map((v, i) => (BigInt(v) + BigInt(b[i])) % P));
    assert.deepEqual(big(out.product.data), a.map((v, i) => (BigInt(v) * BigInt(b[i])) % P));
    assert.deepEqual(big(out.square.data), a.map((v) => (BigInt(v) * BigInt(v)) % P));
    assert.deepEqual(big(out.scaled.data), a.map((v) => (BigInt(v) * BigInt(c)) % P));
  });

  test('refuses other dtypes and constants outside [0, P)', () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'int64', [2]);
    const u = g.input('u', 'uint32', [2]);
    assert.throws(() => modP(x), /modP: x: int64\[2\] must be uint32/);
    assert.throws(() => mulModP(u, MERSENNE_31), /mulModP: constant 2147483647 must be an integer in \[0, 2³¹−1\)/);
    assert.throws(() => addModP(u, -1), /addModP: constant -1/);
  });
});
