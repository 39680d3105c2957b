import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { baseModelHash, checkModelRequest, sha256Hex } from '../../../src/federation/protocol/baseModel.js';
import { parseTensorName, tensorName } from '../../../src/federation/protocol/adapterTensors.js';
import { preferFactored } from '../../../src/core/residual.js';

const files = [
  { name: 'config.json', bytes: 3, sha256: sha256Hex(new TextEncoder().encode('{}\n')) },
  { name: 'model.safetensors', bytes: 1000, sha256: 'ab'.repeat(32) },
];

test('baseModelHash is SHA-256 of "<sha256> <bytes> <name>\\n" lines, order-sensitive', () => {
  const manifest = files.map((f) => `${f.sha256} ${f.bytes} ${f.name}\n`).join('');

  assert.equal(baseModelHash(files), createHash('sha256').update(manifest).digest('hex'));
  assert.notEqual(baseModelHash([...files].reverse()), baseModelHash(files));
  assert.equal(sha256Hex(new Uint8Array(0)), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
});

test('checkModelRequest: E_MODEL_TRANSFER for no offer, wrong hash, bad index, too long, outside the file', () => {
  const offer = { hash: baseModelHash(files), files };
  const ok = { hash: offer.hash, file: 1, offset: 900, length: 100 };

  assert.equal(checkModelRequest(ok, offer, 4096), files[1]);
  for (const [request, available, max] of [
    [ok, undefined, 4096],
    [{ ...ok, hash: 'cd'.repeat(32) }, offer, 4096],
    [{ ...ok, file: 2 }, offer, 4096],
    [ok, offer, 99],
    [{ ...ok, offset: 901 }, offer, 4096],
  ] as const) {
    assert.throws(() => checkModelRequest(request, available, max), { code: 'E_MODEL_TRANSFER' });
  }
});

test('tensor names: PEFT module path + role, parsed back; residual form picks the smaller', () => {
  assert.equal(tensorName('model.layers.0.self_attn.q_proj', 'lora_A'), 'model.layers.0.self_attn.q_proj.lora_A');
  assert.deepEqual(parseTensorName('transformer.h.11.attn.c_attn.residual_P'), { module: 'transformer.h.11.attn.c_attn', role: 'residual_P' });
  assert.equal(parseTensorName('transformer.h.0.attn.c_attn.weight'), undefined);
  assert.equal(parseTensorName('lora_A'), undefined);
  // The sender's rule (docs/protocol.md §5.3), core's preferFactored with innerDim terms of rank 1 as the coordinator calls it.
  // 768×768, k·r = 24: (768+768)·24 = 36 864 < 589 824 elements → factored; innerDim 384 → dense.
  assert.equal(preferFactored(768, 768, 24, 1), true);
  assert.equal(preferFactored(768, 768, 384, 1), false);
  assert.equal(preferFactored(8, 8, 4, 1), false);
});
