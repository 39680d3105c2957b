import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeMessage, encodeMessage } from '../../../src/federation/protocol/codec.js';
import { ProtocolError, type ProtocolErrorCode } from '../../../src/federation/protocol/errors.js';
import type { ReceiveOptions } from '../../../src/federation/protocol/validate.js';
import { craftFrame, dataOf, headerOf, rawEncode } from './craft.js';
import { LAYOUT, sampleMessages, welcomeParams } from './sample.js';

function expectCode(bytes: Uint8Array, code: ProtocolErrorCode, options: ReceiveOptions = { layout: LAYOUT }): void {
  assert.throws(() => decodeMessage(bytes, options), (err: unknown) => {
    assert.ok(err instanceof ProtocolError, `expected ProtocolError, got ${String(err)}`);
    assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`);
    return true;
  });
}

const samples = sampleMessages();
const updateFrame = encodeMessage(samples.client_update);
const helloFrame = encodeMessage(samples.hello);

/** Re-crafts a valid frame after `edit` changed its header (data section unchanged). */
function withHeader(frame: Uint8Array, edit: (h: ReturnType<typeof headerOf>) => void, data = dataOf(frame)): Uint8Array {
  const header = headerOf(frame);
  edit(header);
  return craftFrame(header, data);
}

describe('frame-level failures', () => {
  test('wrong magic → E_MAGIC', () => expectCode(craftFrame(headerOf(helloFrame), undefined, { magic: [0x46, 0x45, 0x44, 0x59] }), 'E_MAGIC'));
  test('wrong major version → E_VERSION', () => expectCode(craftFrame(headerOf(helloFrame), undefined, { version: 2 }), 'E_VERSION'));
  test('non-zero flags → E_MALFORMED', () => expectCode(craftFrame(headerOf(helloFrame), undefined, { flags: 1 }), 'E_MALFORMED'));

  test('oversized frame → E_TOO_LARGE, checked before anything is read (even the magic)', () => {
    const garbage = new Uint8Array(5000).fill(0xff);
    expectCode(garbage, 'E_TOO_LARGE', { limits: { maxFrameBytes: 4096 } });
    expectCode(updateFrame, 'E_TOO_LARGE', { limits: { maxFrameBytes: updateFrame.length - 1 } });
    assert.doesNotThrow(() => decodeMessage(updateFrame, { limits: { maxFrameBytes: updateFrame.length } }));
  });

  test('header longer than maxHeaderBytes → E_TOO_LARGE; too many tensors → E_TOO_LARGE', () => {
    expectCode(helloFrame, 'E_TOO_LARGE', { limits: { maxHeaderBytes: 64 } });
    expectCode(updateFrame, 'E_TOO_LARGE', { limits: { maxTensors: 5 } });
  });

  test('truncated: shorter than the prefix, than the header → E_TRUNCATED; inside the tensor data → E_TENSOR_BOUNDS', () => {
    expectCode(helloFrame.subarray(0, 11), 'E_TRUNCATED');
    expectCode(helloFrame.subarray(0, helloFrame.length - 8), 'E_TRUNCATED');
    expectCode(updateFrame.subarray(0, updateFrame.length - 4), 'E_TENSOR_BOUNDS');
  });

  test('header length field larger than the frame → E_TRUNCATED; misaligned header → E_MALFORMED', () => {
    expectCode(craftFrame(headerOf(helloFrame), undefined, { headerLength: 1 << 16 }), 'E_TRUNCATED');
    expectCode(craftFrame(null, undefined, { headerText: '{"method":"ping","params":{"nonce":1,"sentAt":2},"tensors":[]}', noPad: true }), 'E_MALFORMED');
  });

  test('header that is not UTF-8 JSON of the envelope shape → E_MALFORMED', () => {
    expectCode(craftFrame(null, undefined, { headerText: '{"method":' }), 'E_MALFORMED');
    expectCode(craftFrame(null, undefined, { headerText: '\uFEFF{}' }), 'E_MALFORMED');
    const badUtf8 = craftFrame(null, undefined, { headerText: '["xx"]  ' });
    badUtf8.set([0xc3, 0x28], 14);
    expectCode(badUtf8, 'E_MALFORMED');
    expectCode(craftFrame([1, 2, 3]), 'E_MALFORMED');
    expectCode(craftFrame({ method: 'ping', params: { nonce: 1, sentAt: 2 } }), 'E_MALFORMED');
    expectCode(craftFrame({ method: 'ping', params: { nonce: 1, sentAt: 2 }, tensors: [], extra: 1 }), 'E_MALFORMED');
    expectCode(craftFrame({ method: 7, params: {}, tensors: [] }), 'E_MALFORMED');
    expectCode(craftFrame({ method: 'ping', params: [], tensors: [] }), 'E_MALFORMED');
  });

  test('header that lies about offsets and lengths', () => {
    expectCode(withHeader(updateFrame, (h) => {
      h.tensors[0].offset = 1 << 20;
    }), 'E_TENSOR_BOUNDS');
    expectCode(withHeader(updateFrame, (h) => {
      h.tensors[0].offset = 4;
    }), 'E_TENSOR_TABLE');
    expectCode(withHeader(updateFrame, (h) => {
      h.tensors[0].offset = -8;
    }), 'E_TENSOR_TABLE');
    expectCode(withHeader(updateFrame, (h) => {
      h.tensors[0].length = (h.tensors[0].length as number) - 4;
    }), 'E_TENSOR_TABLE');
    expectCode(withHeader(updateFrame, (h) => {
      h.tensors[0].shape = [2, 8.5];
    }), 'E_TENSOR_TABLE');
    expectCode(withHeader(updateFrame, (h) => {
      h.tensors[0].shape = [1, 1, 1, 1, 1, 1, 1, 1, 64];
    }), 'E_TENSOR_TABLE');
    expectCode(withHeader(updateFrame, (h) => {
      delete h.tensors[0].length;
    }), 'E_TENSOR_TABLE');
  });

  test('bytes trailing after the last tensor → E_TENSOR_BOUNDS', () => {
    const data = dataOf(updateFrame);
    const padded = new Uint8Array(data.length + 16);
    padded.set(data);
    expectCode(craftFrame(headerOf(updateFrame), padded), 'E_TENSOR_BOUNDS');
    expectCode(craftFrame(headerOf(helloFrame), new Uint8Array(8)), 'E_TENSOR_BOUNDS');
  });

  test('overlapping tensors → E_TENSOR_OVERLAP', () => {
    expectCode(withHeader(updateFrame, (h) => {
      h.tensors[1].offset = (h.tensors[0].offset as number) + 8;
    }), 'E_TENSOR_OVERLAP');
  });

  test('unknown dtype → E_TENSOR_DTYPE; duplicate or badly formed name → E_TENSOR_NAME', () => {
    expectCode(withHeader(updateFrame, (h) => {
      h.tensors[0].dtype = 'float64';
    }), 'E_TENSOR_DTYPE');
    expectCode(withHeader(updateFrame, (h) => {
      h.tensors[1].name = h.tensors[0].name;
    }), 'E_TENSOR_NAME');
    expectCode(withHeader(updateFrame, (h) => {
      h.tensors[0].name = '../../etc/passwd';
    }), 'E_TENSOR_NAME');
  });
});

describe('message-level failures', () => {
  test('unknown method → E_UNKNOWN_METHOD', () => {
    expectCode(craftFrame({ method: 'launch_missiles', params: {}, tensors: [] }), 'E_UNKNOWN_METHOD');
  });

  test('a method from the wrong peer → E_DIRECTION', () => {
    const welcome = encodeMessage({ method: 'welcome', params: welcomeParams() });
    expectCode(welcome, 'E_DIRECTION', { receiver: 'coordinator' });
    expectCode(helloFrame, 'E_DIRECTION', { receiver: 'client' });
    assert.doesNotThrow(() => decodeMessage(encodeMessage(samples.ping), { receiver: 'client' }));
  });

  const schemaCases: [string, (h: ReturnType<typeof headerOf>) => void][] = [
    ['missing required field', (h) => {
      delete h.params.token;
    }],
    ['extra field', (h) => {
      h.params.isAdmin = true;
    }],
    ['wrong type', (h) => {
      h.params.protocolMinor = '0';
    }],
    ['non-integer', (h) => {
      h.params.protocolMinor = 0.5;
    }],
    ['out of range', (h) => {
      h.params.protocolMajor = 0;
    }],
    ['null for an optional field', (h) => {
      h.params.clientId = null;
    }],
    ['nested missing field', (h) => {
      delete (h.params.capabilities as Record<string, unknown>).factoredResidual;
    }],
    ['nested extra field', (h) => {
      (h.params.capabilities as Record<string, unknown>).root = true;
    }],
    ['bad enum value in an array', (h) => {
      (h.params.capabilities as Record<string, unknown>).uplinkDtypes = ['float32', 'int8'];
    }],
    ['control character in clientName', (h) => {
      h.params.clientName = 'eve\u0007';
    }],
    ['bidi override in clientName', (h) => {
      h.params.clientName = 'eve\u202egnp.exe';
    }],
    ['lone surrogate in clientName', (h) => {
      h.params.clientName = 'eve\ud800';
    }],
    ['clientName of 65 characters', (h) => {
      h.params.clientName = 'x'.repeat(65);
    }],
    ['empty clientName', (h) => {
      h.params.clientName = '';
    }],
    ['path-like clientId', (h) => {
      h.params.clientId = '../x';
    }],
    ['upper-case hash', (h) => {
      h.params.baseModelHash = 'AB'.repeat(32);
    }],
    ['cross-field rule (uplinkDtypes without float32)', (h) => {
      (h.params.capabilities as Record<string, unknown>).uplinkDtypes = ['float16'];
    }],
  ];
  for (const [name, edit] of schemaCases) {
    test(`hello with ${name} → E_SCHEMA`, () => expectCode(withHeader(helloFrame, edit), 'E_SCHEMA'));
  }

  test('schema errors name the field path', () => {
    const bad = withHeader(encodeMessage({ method: 'welcome', params: welcomeParams() }), (h) => {
      ((h.params.config as Record<string, unknown>).layout as Record<string, unknown>[])[1].rank = 0;
    });
    assert.throws(() => decodeMessage(bad), /welcome: params\.config\.layout\[1\]\.rank: 0 is outside 1\.\.4096/);
  });

  test('welcome and client_update cross-field and record rules → E_SCHEMA', () => {
    const welcome = encodeMessage({ method: 'welcome', params: welcomeParams() });
    expectCode(withHeader(welcome, (h) => {
      (h.params.config as Record<string, unknown>).localEpochs = 1;
    }), 'E_SCHEMA');
    expectCode(withHeader(welcome, (h) => {
      (h.params.config as Record<string, unknown>).lr = 0;
    }), 'E_SCHEMA');
    expectCode(withHeader(updateFrame, (h) => {
      h.params.metrics = JSON.parse('{"__proto__": 1}');
    }), 'E_SCHEMA');
    // JSON numbers beyond float64 parse to Infinity: still refused.
    const hugeLoss = JSON.stringify(headerOf(updateFrame)).replace('"trainLoss":2.5', '"trainLoss":1e400');
    assert.ok(hugeLoss.includes('1e400'));
    expectCode(craftFrame(null, dataOf(updateFrame), { headerText: hugeLoss }), 'E_SCHEMA');
    const start = encodeMessage(samples.round_start);
    expectCode(withHeader(start, (h) => {
      h.params.baseRevision = 0;
    }), 'E_SCHEMA');
  });

  test('wrong tensor shape for the layout → E_TENSOR_SHAPE', () => {
    const tensors = samples.client_update.tensors!.map((t, i) => (i === 0 ? { ...t, shape: [t.shape[1], t.shape[0]] } : t));
    const bad = { ...samples.client_update, tensors };
    expectCode(rawEncode(bad), 'E_TENSOR_SHAPE');
    // Without a layout the receiver still checks that lora_A and lora_B agree on the rank.
    expectCode(rawEncode(bad), 'E_TENSOR_SHAPE', {});
    // The sender refuses to build it in the first place.
    assert.throws(() => encodeMessage(bad, { layout: LAYOUT }), { code: 'E_TENSOR_SHAPE' });
  });

  test('wrong tensor dtype for the message → E_TENSOR_DTYPE', () => {
    const half = encodeMessage(samples.client_update, { uplinkDtype: 'float16' });
    expectCode(half, 'E_TENSOR_DTYPE', { layout: LAYOUT, uplinkDtypes: ['float32'] });
    const start = encodeMessage(samples.round_start);
    expectCode(withHeader(start, (h) => {
      h.tensors[0].dtype = 'float16';
      h.tensors[0].length = (h.tensors[0].length as number) / 2;
    }), 'E_TENSOR_DTYPE');
    const chunk = encodeMessage(samples.model_chunk);
    expectCode(withHeader(chunk, (h) => {
      h.tensors[0].dtype = 'float32';
      h.tensors[0].shape = [25];
    }), 'E_TENSOR_DTYPE');
  });

  test('missing, unexpected or unannounced tensors → E_TENSOR_NAME', () => {
    const update = samples.client_update;
    expectCode(rawEncode({ ...update, tensors: update.tensors!.slice(1) }), 'E_TENSOR_NAME');
    assert.throws(() => encodeMessage({ ...update, tensors: update.tensors!.slice(1) }), { code: 'E_TENSOR_NAME' });
    // Without a layout, slicing off a full module passes; slicing off half of one does not.
    assert.doesNotThrow(() => decodeMessage(rawEncode({ ...update, tensors: update.tensors!.slice(2) }), {}));
    expectCode(rawEncode({ ...update, tensors: update.tensors!.slice(1) }), 'E_TENSOR_NAME', {});
    const renamed = update.tensors!.map((t, i) => (i === 0 ? { ...t, name: 'transformer.h.9.attn.c_attn.lora_A' } : t));
    expectCode(rawEncode({ ...update, tensors: renamed }), 'E_TENSOR_NAME');
    const unknownRole = update.tensors!.map((t, i) => (i === 0 ? { ...t, name: 'transformer.h.0.attn.c_attn.lora_C' } : t));
    expectCode(rawEncode({ ...update, tensors: unknownRole }), 'E_TENSOR_NAME', {});
    expectCode(withHeader(helloFrame, (h) => {
      h.tensors = headerOf(updateFrame).tensors;
    }, dataOf(updateFrame)), 'E_TENSOR_NAME');
    const start = samples.round_start;
    // Residual tensors that baseUpdate does not announce.
    expectCode(withHeader(encodeMessage(start), (h) => {
      delete h.params.baseUpdate;
    }), 'E_TENSOR_NAME');
    // A residual for a module outside the layout.
    expectCode(withHeader(encodeMessage(start), (h) => {
      ((h.params.baseUpdate as Record<string, unknown>).modules as Record<string, unknown>[])[1].module = 'lm_head';
    }), 'E_TENSOR_NAME');
  });

  test('non-finite values in float32, float16 and bfloat16 tensors → E_NON_FINITE', () => {
    const nan32 = dataOf(updateFrame);
    new DataView(nan32.buffer).setFloat32(8, NaN, true);
    expectCode(craftFrame(headerOf(updateFrame), nan32), 'E_NON_FINITE');
    const inf32 = dataOf(updateFrame);
    new DataView(inf32.buffer).setFloat32(0, -Infinity, true);
    expectCode(craftFrame(headerOf(updateFrame), inf32), 'E_NON_FINITE');
    for (const [dtype, bits] of [['float16', 0x7c00], ['bfloat16', 0x7fc1]] as const) {
      const frame = encodeMessage(samples.client_update, { uplinkDtype: dtype });
      const data = dataOf(frame);
      new DataView(data.buffer).setUint16(2, bits, true);
      expectCode(craftFrame(headerOf(frame), data), 'E_NON_FINITE');
    }
  });

  test('update norm above the bound → E_NORM_BOUND; the reference is subtracted first', () => {
    const update = samples.client_update;
    let sumSq = 0;
    for (const t of update.tensors!) for (const v of t.data) sumSq += v * v;
    const norm = Math.sqrt(sumSq);

    expectCode(updateFrame, 'E_NORM_BOUND', { layout: LAYOUT, maxUpdateNorm: norm * 0.999 });
    assert.doesNotThrow(() => decodeMessage(updateFrame, { layout: LAYOUT, maxUpdateNorm: norm * 1.001 }));
    const reference = new Map(update.tensors!.map((t) => [t.name, t.data]));
    assert.doesNotThrow(() => decodeMessage(updateFrame, { layout: LAYOUT, maxUpdateNorm: 1e-6, normReference: reference }));
  });
});
