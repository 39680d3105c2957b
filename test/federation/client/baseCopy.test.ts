// The client's base copy follows the revision rules of docs/protocol.md §5.4.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createTypeScriptBackend } from '../../../src/core/product.js';
import { ROLE_RESIDUAL_DENSE, tensorName } from '../../../src/federation/protocol/adapterTensors.js';
import { BaseCopy } from '../../../src/federation/client/baseCopy.js';
import { ClientError } from '../../../src/federation/client/errors.js';
import { BASE, LAYOUT } from '../coordinator/fixtures.js';

const backend = createTypeScriptBackend();
const m = LAYOUT[2]; // Linear, out 12 × in 40
const ones = { name: tensorName(m.module, ROLE_RESIDUAL_DENSE), shape: [m.out, m.in], data: new Float32Array(m.out * m.in).fill(1) };
const update = (fromRevision: number, baseRevision: number) => ({ baseRevision, baseUpdate: { fromRevision, modules: [{ module: m.module, form: 'dense' as const, innerDim: 0, scale: 0.5 }] } });

test('updates apply from the held revision or from 0 (reloading the pristine base); anything else is E_BASE_MISMATCH', async () => {
  const copy = await BaseCopy.load(BASE, LAYOUT);
  const pristine = BASE.modules.get(m.module)!.data;
  assert.deepEqual(await copy.apply(update(0, 1), [ones], LAYOUT, backend), [m.module]);
  assert.equal(copy.revision, 1);
  assert.equal(copy.modules.get(m.module)!.data[5], Math.fround(pristine[5] + 0.5));
  assert.notEqual(pristine[5], copy.modules.get(m.module)!.data[5], 'the source is not modified');
  await assert.rejects(copy.apply(update(2, 3), [ones], LAYOUT, backend), (e: unknown) => e instanceof ClientError && e.code === 'E_BASE_MISMATCH' && /revision 2; this client holds revision 1/.test(e.message));
  await assert.rejects(copy.apply({ baseRevision: 2 }, [], LAYOUT, backend), { code: 'E_BASE_MISMATCH' });
  assert.equal(copy.revision, 1, 'a refused update changes nothing');
  await copy.apply(update(1, 2), [ones], LAYOUT, backend);
  assert.equal(copy.modules.get(m.module)!.data[5], Math.fround(Math.fround(pristine[5] + 0.5) + 0.5));
  await copy.apply(update(0, 3), [ones], LAYOUT, backend);
  assert.equal(copy.modules.get(m.module)!.data[5], Math.fround(pristine[5] + 0.5), 'from 0: reloaded, then one update');
  await copy.apply({ baseRevision: 0 }, [], LAYOUT, backend);
  assert.deepEqual([copy.revision, copy.modules.get(m.module)!.data[5]], [0, pristine[5]], 'back to the pristine base');
});

test('checkLayout names the module whose stored shape is wrong', async () => {
  const copy = await BaseCopy.load(BASE, LAYOUT);
  copy.checkLayout(LAYOUT);
  assert.throws(() => copy.checkLayout([{ ...LAYOUT[0], fanInFanOut: false }]), (e: unknown) => e instanceof ClientError && e.code === 'C_BASE_LAYOUT' && /\[16, 48\].*needs \[48, 16\]/.test(e.message));
});
