import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { adapterTensorShapes, residualTensorShapes, type AdapterLayout, type ResidualEntry } from '../../../src/federation/protocol/adapterTensors.js';
import { decodeMessage, encodeMessage, errorParams, safeText, tryDecodeMessage } from '../../../src/federation/protocol/codec.js';
import { bfloat16ToFloat32, float16ToFloat32, float32ToBfloat16, float32ToFloat16 } from '../../../src/formats/halfFloat.js';
import { tensorMap, type AnyMessage, type Message, type NamedTensor } from '../../../src/federation/protocol/envelope.js';
import { ProtocolError } from '../../../src/federation/protocol/errors.js';
import { descriptorFor, MESSAGES, type DescriptorOf, type Method } from '../../../src/federation/protocol/messages.js';
import { LAYOUT, randomTensors, sampleMessages } from './sample.js';

function bytesOf(t: NamedTensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/**
 * Structural type guard: `value` is a `method` message whose params satisfy the catalogue schema
 * (and cross-field rules), with well-formed tensors. Tensor names and shapes against an adapter
 * layout are checked on decoding, not here.
 */
function isMessage<M extends Method>(value: unknown, method: M): value is Message<M> {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as { method?: unknown; params?: unknown; tensors?: unknown; blob?: unknown };
  if (v.method !== method) return false;
  const d = descriptorFor(method) as DescriptorOf<M> | undefined;
  if (d === undefined || !d.is(v.params)) return false;
  if (!Array.isArray(v.tensors)) return false;
  const tensorsOk = v.tensors.every((t: unknown) => {
    if (typeof t !== 'object' || t === null) return false;
    const { name, shape, data } = t as { name?: unknown; shape?: unknown; data?: unknown };
    return typeof name === 'string' && Array.isArray(shape) && data instanceof Float32Array
      && shape.every((n) => Number.isInteger(n) && n >= 0) && shape.reduce((a: number, b: number) => a * b, 1) === data.length;
  });
  return tensorsOk && (v.blob === undefined || v.blob instanceof Uint8Array);
}

function receiverFor(method: Method): 'client' | 'coordinator' {
  const d = MESSAGES.find((m) => m.method === method)!;
  return d.sender === 'client' ? 'coordinator' : 'client';
}

describe('encodeMessage / decodeMessage round trips', () => {
  for (const [method, message] of Object.entries(sampleMessages())) {
    test(`${method}: params, tensors (bit-exact) and blob survive`, () => {
      const frame = encodeMessage(message, { layout: LAYOUT });

      const decoded = decodeMessage(frame, { receiver: receiverFor(method as Method), layout: LAYOUT });

      assert.equal(decoded.method, method);
      assert.deepEqual(decoded.params, JSON.parse(JSON.stringify(message.params)));
      const sent = message.tensors ?? [];
      assert.equal(decoded.tensors.length, sent.length);
      sent.forEach((t, i) => {
        assert.equal(decoded.tensors[i].name, t.name);
        assert.deepEqual(decoded.tensors[i].shape, t.shape);
        assert.deepEqual(bytesOf(decoded.tensors[i]), bytesOf(t));
      });
      assert.deepEqual(decoded.blob, message.blob);
      assert.ok(isMessage(decoded, method as Method));
    });
  }

  test('every catalogue method has a sample (no message left untested)', () => {
    assert.deepEqual(Object.keys(sampleMessages()).sort(), MESSAGES.map((m) => m.method).sort());
  });

  test('float32 special bit patterns (−0, subnormals, max) round-trip bit-exactly', () => {
    const update = sampleMessages().client_update;
    const special = [-0, 1e-45, -1.17e-38, 3.4028234663852886e38, 1 / 3];
    const tensors = update.tensors!.map((t) => ({ ...t, data: t.data.map((_, i) => special[i % special.length]) }));

    const decoded = decodeMessage(encodeMessage({ ...update, tensors }, { layout: LAYOUT }), { layout: LAYOUT });

    tensors.forEach((t, i) => assert.deepEqual(bytesOf(decoded.tensors[i]), bytesOf(t)));
    assert.ok(Object.is(decoded.tensors[0].data[0], -0));
  });

  test('a Node Buffer at an odd offset inside a larger allocation decodes bit-exactly', () => {
    const message = sampleMessages().client_update;
    const frame = encodeMessage(message);
    const pool = Buffer.alloc(frame.length + 11, 0x55);
    pool.set(frame, 3);

    const decoded = decodeMessage(pool.subarray(3, 3 + frame.length), { layout: LAYOUT });

    message.tensors!.forEach((t, i) => assert.deepEqual(bytesOf(decoded.tensors[i]), bytesOf(t)));
  });

  for (const dtype of ['float16', 'bfloat16'] as const) {
    test(`${dtype} uplink: about half the bytes, decoded to float32 equal to the rounded values`, () => {
      const message = sampleMessages().client_update;
      const rounded = (data: Float32Array): Float32Array => (dtype === 'float16' ? float16ToFloat32(float32ToFloat16(data)) : bfloat16ToFloat32(float32ToBfloat16(data)));

      const frame = encodeMessage(message, { uplinkDtype: dtype, layout: LAYOUT });
      const decoded = decodeMessage(frame, { layout: LAYOUT, uplinkDtypes: [dtype] });

      const rawBytes = message.tensors!.reduce((n, t) => n + t.data.byteLength, 0);
      assert.ok(frame.length < 0.5 * rawBytes + 2048, `frame ${frame.length} vs raw float32 ${rawBytes}`);
      message.tensors!.forEach((t, i) => {
        const expected = rounded(t.data);
        assert.deepEqual(decoded.tensors[i].data, expected);
      });
    });
  }

  test('decodeMessage narrows by method (typed params)', () => {
    const decoded: AnyMessage = decodeMessage(encodeMessage(sampleMessages().welcome));

    assert.equal(decoded.method, 'welcome');
    if (decoded.method === 'welcome') assert.equal(decoded.params.config.layout[2].rank, 4);
  });

  test('params are typed by method at compile time (tsc checks the lines below)', () => {
    const compileOnly = (): void => {
      // @ts-expect-error update_ack has no clientName
      encodeMessage({ method: 'update_ack', params: { round: 1, clientName: 'x' } });
      // @ts-expect-error round is required
      encodeMessage({ method: 'update_ack', params: {} });
      // @ts-expect-error method must be in the catalogue
      encodeMessage({ method: 'launch', params: {} });
    };
    assert.equal(typeof compileOnly, 'function');
  });

  test('tryDecodeMessage returns the ProtocolError instead of throwing', () => {
    const result = tryDecodeMessage(new Uint8Array([1, 2, 3]));

    assert.equal(result.ok, false);
    if (!result.ok) assert.equal(result.error.code, 'E_TRUNCATED');
  });

  test('tensorMap indexes tensors by name', () => {
    const message = sampleMessages().round_start;
    const map = tensorMap(decodeMessage(encodeMessage(message)).tensors);
    assert.deepEqual([...map.keys()], message.tensors!.map((t) => t.name));
  });
});

describe('encodeMessage refuses what a receiver would refuse', () => {
  test('NaN and Inf are refused on encoding (E_NON_FINITE), naming the tensor', () => {
    const message = sampleMessages().client_update;
    for (const bad of [NaN, Infinity, -Infinity]) {
      const tensors = message.tensors!.map((t, i) => (i === 1 ? { ...t, data: Float32Array.from(t.data, (v, j) => (j === 3 ? bad : v)) } : t));
      assert.throws(() => encodeMessage({ ...message, tensors }), (e: unknown) => e instanceof ProtocolError && e.code === 'E_NON_FINITE' && e.message.includes(tensors[1].name));
    }
  });

  test('a value that overflows float16 is refused (E_NON_FINITE)', () => {
    const message = sampleMessages().client_update;
    const tensors = message.tensors!.map((t, i) => (i === 0 ? { ...t, data: Float32Array.from(t.data, (v, j) => (j === 0 ? 70000 : v)) } : t));

    assert.throws(() => encodeMessage({ ...message, tensors }, { uplinkDtype: 'float16' }), { code: 'E_NON_FINITE' });
    assert.doesNotThrow(() => encodeMessage({ ...message, tensors }, { uplinkDtype: 'bfloat16' }));
  });

  test('bad params (E_SCHEMA), data/shape disagreement (E_TENSOR_SHAPE), peer frame limit (E_TOO_LARGE)', () => {
    const update = sampleMessages().client_update;
    assert.throws(() => encodeMessage({ ...update, params: { ...update.params, examples: -1 } }), { code: 'E_SCHEMA' });
    const short = update.tensors!.map((t, i) => (i === 0 ? { ...t, data: t.data.subarray(1) } : t));
    assert.throws(() => encodeMessage({ ...update, tensors: short }), { code: 'E_TENSOR_SHAPE' });
    assert.throws(() => encodeMessage(update, { maxFrameBytes: 512 }), { code: 'E_TOO_LARGE' });
  });

  test('errorParams makes any message sendable as text', () => {
    const params = errorParams({ code: 'E_SCHEMA', message: 'bad name \u202e\u0007x'.padEnd(2000, 'y') }, true);

    assert.equal(params.message.length, 1024);
    assert.ok(params.message.startsWith('bad name \uFFFD\uFFFDx'));
    assert.doesNotThrow(() => encodeMessage({ method: 'error', params }));
    assert.equal(safeText('a\uD800b'), 'a\uFFFDb');
  });
});

/** 24 modules of 768 × 768 (q_proj/v_proj of 12 layers), rank 8: the design's realistic adapter. */
function realisticLayout(): AdapterLayout {
  const layout = [];
  for (let l = 0; l < 12; l++) {
    for (const p of ['q_proj', 'v_proj']) layout.push({ module: `model.layers.${l}.self_attn.${p}`, in: 768, out: 768, rank: 8 });
  }
  return layout;
}

describe('wire overhead (size property, docs/math.md §3: ≤ 1.02 × raw tensor bytes)', () => {
  test('client_update: 24 modules × (8×768 A, 768×8 B) float32', (t) => {
    const layout = realisticLayout();
    const tensors = randomTensors(adapterTensorShapes(layout), 5);
    const raw = tensors.reduce((n, x) => n + x.data.byteLength, 0);

    const frame = encodeMessage({ method: 'client_update', params: { round: 17, examples: 4096, trainLoss: 2.345678, steps: 500, durationMs: 123456 }, tensors }, { layout });

    t.diagnostic(`client_update: ${frame.length} bytes for ${raw} raw (${(frame.length / raw).toFixed(4)}×)`);
    assert.equal(raw, 24 * 2 * 8 * 768 * 4);
    assert.ok(frame.length <= 1.02 * raw, `${frame.length} > 1.02 × ${raw}`);
  });

  test('round_start: global adapter + factored residuals (k = 3 clients, innerDim 24) for every module', (t) => {
    const layout = realisticLayout();
    const modules: ResidualEntry[] = layout.map((m) => ({ module: m.module, form: 'factored', innerDim: 24, scale: 2 }));
    const shapes = adapterTensorShapes(layout);
    for (const [k, v] of residualTensorShapes(modules, layout)) shapes.set(k, v);
    const tensors = randomTensors(shapes, 6);
    const raw = tensors.reduce((n, x) => n + x.data.byteLength, 0);

    const frame = encodeMessage({ method: 'round_start', params: { round: 18, deadline: 1_800_000_000_000, timeLimitMs: 600_000, baseRevision: 17, baseUpdate: { fromRevision: 16, modules } }, tensors }, { layout });

    t.diagnostic(`round_start: ${frame.length} bytes for ${raw} raw (${(frame.length / raw).toFixed(4)}×)`);
    assert.ok(frame.length <= 1.02 * raw, `${frame.length} > 1.02 × ${raw}`);
  });
});
