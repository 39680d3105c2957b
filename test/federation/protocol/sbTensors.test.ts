// Fed-SB on the wire (docs/protocol.md §5.7): a client_update carries `lora_R` (rank × rank) of every
// module and nothing else; a global message carries R and the frozen `lora_A`/`lora_B` of every
// module or of none; the receiver fills A and B from what it received before, and refuses a message
// without them when it holds none. Encoded and decoded through the real codec.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { adapterTensorShapes, sbRTensorShapes } from '../../../src/federation/protocol/adapterTensors.js';
import { decodeMessage, encodeMessage } from '../../../src/federation/protocol/codec.js';
import { adapterFromTensors, sbAdapterToTensors } from '../../../src/federation/shared/adapterWire.js';
import { LAYOUT, randomTensors } from './sample.js';

const SB = { layout: LAYOUT, adapterForm: 'sb' as const };
const update = { round: 1, examples: 8, trainLoss: 1.5 };
const start = { round: 1, deadline: 1_700_000_000_000, timeLimitMs: 1000, baseRevision: 0 };

describe('Fed-SB tensors', () => {
  test('client_update: R only; the bytes are Σ r² float32 values plus the frame', () => {
    const tensors = randomTensors(sbRTensorShapes(LAYOUT), 1);
    const frame = encodeMessage({ method: 'client_update', params: update, tensors }, SB);
    const decoded = decodeMessage(frame, { receiver: 'coordinator', ...SB });
    assert.deepEqual(decoded.tensors.map((t) => t.name), LAYOUT.map((m) => `${m.module}.lora_R`));
    const raw = LAYOUT.reduce((n, m) => n + 4 * m.rank * m.rank, 0);
    assert.ok(frame.length > raw && frame.length < raw + 1024, `frame ${frame.length} bytes for ${raw} raw`);

    const withA = [...tensors, ...randomTensors(adapterTensorShapes(LAYOUT), 2)];
    assert.throws(() => encodeMessage({ method: 'client_update', params: update, tensors: withA }, SB), /unexpected tensor transformer\.h\.0\.attn\.c_attn\.lora_A/);
    const wrong = tensors.map((t, i) => (i === 2 ? { ...t, shape: [2, 2], data: t.data.subarray(0, 4) } : t));
    assert.throws(() => encodeMessage({ method: 'client_update', params: update, tensors: wrong }, SB), /lora_R has shape \[2, 2\], expected \[4, 4\]/);
    // A plain-LoRA receiver does not take R.
    assert.throws(() => decodeMessage(frame, { receiver: 'coordinator', layout: LAYOUT }), /unexpected tensor .*lora_R/);
  });

  test('round_start: R with the frozen A and B of every module, or R alone; never some of them', () => {
    const r = randomTensors(sbRTensorShapes(LAYOUT), 3);
    const ab = randomTensors(adapterTensorShapes(LAYOUT), 4);
    const first = decodeMessage(encodeMessage({ method: 'round_start', params: start, tensors: [...ab, ...r] }, SB), { receiver: 'client', ...SB });
    const later = decodeMessage(encodeMessage({ method: 'round_start', params: start, tensors: r }, SB), { receiver: 'client', ...SB });
    assert.equal(first.tensors.length, 3 * LAYOUT.length);
    assert.equal(later.tensors.length, LAYOUT.length);
    assert.throws(() => encodeMessage({ method: 'round_start', params: start, tensors: [...ab.slice(1), ...r] }, SB), /every module or of none; missing transformer\.h\.0\.attn\.c_attn\.lora_A/);

    const held = adapterFromTensors(LAYOUT, first.tensors, 'sb');
    const next = adapterFromTensors(LAYOUT, later.tensors, 'sb', held);
    for (const m of LAYOUT) {
      assert.equal(next.get(m.module)!.a, held.get(m.module)!.a, 'A kept from the first message');
      assert.deepEqual(next.get(m.module)!.r!.shape, [m.rank, m.rank]);
    }
    assert.throws(() => adapterFromTensors(LAYOUT, later.tensors, 'sb'), /carries no lora_A and lora_B and none were received before/);
    assert.deepEqual(sbAdapterToTensors(LAYOUT, next, false).map((t) => t.name), LAYOUT.map((m) => `${m.module}.lora_R`));
  });
});
