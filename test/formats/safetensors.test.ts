import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FormatError } from '../../src/formats/errors.js';
import type { FormatErrorCode } from '../../src/formats/errors.js';
import { openSafetensors, withSafetensors } from '../../src/formats/safetensors.js';
import { writeSafetensors } from '../../src/formats/safetensorsWriter.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fedex-safetensors-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Bytes of a file built by hand: length prefix (or `length`), header text, data. */
function handMade(header: string, data: Uint8Array = new Uint8Array(0), length?: bigint): Uint8Array {
  const json = Buffer.from(header, 'utf8');
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, length ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function le16(...values: number[]): Uint8Array {
  return new Uint8Array(Uint16Array.from(values).buffer);
}

describe('safetensors reader: dtypes', () => {
  test('F16 and BF16 are stored with the exact known bit patterns and read back as float32', async () => {
    // prepare
    const path = join(dir, 'half.safetensors');
    const values = Float32Array.of(1, -2, 0.1, 65504, 70000, 2 ** -24, -Infinity);
    await writeSafetensors(path, new Map([
      ['h', { dtype: 'F16' as const, shape: [7], data: values }],
      ['b', { dtype: 'BF16' as const, shape: [7], data: values }],
    ]));
    // act
    const reader = await openSafetensors(path);
    const hRaw = await reader.readRaw('h');
    const bRaw = await reader.readRaw('b');
    const h = await reader.readFloat32('h');
    const b = await reader.readFloat32('b');
    await reader.close();
    // assert
    assert.deepEqual(hRaw, le16(0x3c00, 0xc000, 0x2e66, 0x7bff, 0x7c00, 0x0001, 0xfc00));
    assert.deepEqual(bRaw, le16(0x3f80, 0xc000, 0x3dcd, 0x4780, 0x4789, 0x3380, 0xff80));
    assert.deepEqual([...h], [1, -2, 0.0999755859375, 65504, Infinity, 2 ** -24, -Infinity]);
    assert.deepEqual([...b], [1, -2, 0.10009765625, 65536, 70144, 2 ** -24, -Infinity]);
  });

  test('F32 and F64 round-trip exactly; F64 narrows to the nearest float32', async () => {
    const path = join(dir, 'wide.safetensors');
    const f32 = Float32Array.of(0.1, -3.5, NaN, 1e-45);
    const f64 = Float64Array.of(0.1, 1 + 2 ** -40, -1e300, 5e-324);
    await writeSafetensors(path, { a: { dtype: 'F32', shape: [2, 2], data: f32 }, d: { dtype: 'F64', shape: [4], data: f64 } });
    await withSafetensors(path, async (r) => {
      assert.deepEqual(await r.readFloat32('a'), f32);
      assert.deepEqual(await r.readFloat64('d'), f64);
      assert.deepEqual([...(await r.readFloat32('d'))], [Math.fround(0.1), 1, -Infinity, 0]);
      assert.deepEqual([...(await r.readFloat64('a'))], [...f32]);
    });
  });

  test('integer dtypes pass through raw; asking for floats names the tensor and dtype', async () => {
    const path = join(dir, 'ints.safetensors');
    const ids = BigInt64Array.of(-1n, 2n ** 40n, 7n);
    const mask = Uint8Array.of(1, 0, 1);
    await writeSafetensors(path, new Map([
      ['position_ids', { dtype: 'I64' as const, shape: [1, 3], data: new Uint8Array(ids.buffer) }],
      ['mask', { dtype: 'BOOL' as const, shape: [3], data: mask }],
    ]));
    const r = await openSafetensors(path);
    assert.deepEqual(new BigInt64Array((await r.readRaw('position_ids')).buffer), ids);
    assert.deepEqual(await r.readRaw('mask'), mask);
    await assert.rejects(r.readFloat32('position_ids'), (e: unknown) => e instanceof FormatError && e.code === 'SAFETENSORS_NOT_FLOAT' && e.message.includes('position_ids') && e.message.includes('I64'));
    await r.close();
  });
});

describe('safetensors reader: by range', () => {
  test('reads one tensor, a block of rows and metadata from a multi-tensor file', async () => {
    // prepare: three tensors of different dtypes, so offsets are not multiples of one size
    const path = join(dir, 'multi.safetensors');
    const w = new Float32Array(6 * 5).map((_, i) => i - 7);
    await writeSafetensors(path, new Map([
      ['first', { dtype: 'F16' as const, shape: [3], data: Float32Array.of(1, 2, 3) }],
      ['w', { dtype: 'F32' as const, shape: [6, 5], data: w }],
      ['last', { dtype: 'BF16' as const, shape: [2], data: Float32Array.of(4, 5) }],
    ]), { format: 'pt' });
    // act
    const r = await openSafetensors(path);
    const names = [...r.tensors.keys()];
    const rows = await r.readRows('w', 2, 4);
    const m = await r.readMatrix('w');
    const last = await r.readFloat32('last');
    await r.close();
    // assert
    assert.deepEqual(names, ['first', 'w', 'last']);
    assert.deepEqual(r.metadata, { format: 'pt' });
    assert.deepEqual([...rows], [...w.subarray(10, 20)]);
    assert.deepEqual(m.shape, [6, 5]);
    assert.deepEqual(m.data, w);
    assert.deepEqual([...last], [4, 5]);
  });

  test('readFloat32Into widens every float dtype into a reused buffer, in pieces; readRawRange reads stored bytes', async () => {
    // prepare: 2.5 M BF16 values (more than one 4 MiB piece), exact in bf16; small F16/F64/F32 tensors
    const path = join(dir, 'into.safetensors');
    const big = new Float32Array(2_500_000).map((_, i) => (i % 511) - 255);
    const small = Float32Array.of(0.5, -2, 3.25);
    await writeSafetensors(path, new Map([
      ['big', { dtype: 'BF16' as const, shape: [2500, 1000], data: big }],
      ['h', { dtype: 'F16' as const, shape: [3], data: small }],
      ['d', { dtype: 'F64' as const, shape: [3], data: small }],
      ['f', { dtype: 'F32' as const, shape: [3], data: small }],
    ]));
    const r = await openSafetensors(path);
    const buffer = new Float32Array(2_500_000).fill(NaN);
    // act + assert: each read overwrites exactly its view of the shared buffer
    await r.readFloat32Into('big', buffer);
    assert.deepEqual(buffer, big);
    for (const name of ['h', 'd', 'f']) {
      buffer.fill(NaN, 0, 4);
      await r.readFloat32Into(name, buffer.subarray(0, 3));
      assert.deepEqual([...buffer.subarray(0, 4)], [0.5, -2, 3.25, NaN], name);
    }
    assert.deepEqual(await r.readRawRange('f', 4, 8), new Uint8Array(small.buffer, 4, 8));
    assert.deepEqual(await r.readRawRange('big', 0, 0), new Uint8Array(0));
    await assert.rejects(r.readFloat32Into('h', new Float32Array(4)), /out has 4 elements, .*'h' has 3/);
    await assert.rejects(r.readRawRange('f', 8, 8), /bytes \[8, 16\) out of range .*'f' with 12 bytes/);
    const into = new Uint8Array(12).fill(7);
    await r.readRawRangeInto('f', 4, into.subarray(2, 10));
    assert.deepEqual(into, Uint8Array.from([7, 7, ...new Uint8Array(small.buffer, 4, 8), 7, 7]));
    await assert.rejects(r.readRawRangeInto('f', 8, new Uint8Array(8)), /readRawRangeInto: bytes \[8, 16\) out of range .*'f' with 12 bytes/);
    await r.close();
  });

  test('a metadata key named __proto__ stays plain data', async () => {
    const path = join(dir, 'proto.safetensors');
    await writeFile(path, handMade('{"__metadata__":{"__proto__":"x","a":"b"}}'));
    const r = await openSafetensors(path);
    await r.close();
    assert.deepEqual(Object.keys(r.metadata), ['__proto__', 'a']);
    assert.equal(Object.getPrototypeOf(r.metadata), Object.prototype);
  });

  test('tensor entries carry absolute offsets inside the file', async () => {
    const path = join(dir, 'offsets.safetensors');
    await writeSafetensors(path, new Map([
      ['a', { dtype: 'U8' as const, shape: [3], data: Uint8Array.of(9, 8, 7) }],
      ['b', { dtype: 'U8' as const, shape: [2], data: Uint8Array.of(6, 5) }],
    ]));
    const r = await openSafetensors(path);
    const a = r.info('a');
    const b = r.info('b');
    await r.close();
    assert.equal(a.byteOffset % 8, 0);
    assert.equal(b.byteOffset, a.byteOffset + 3);
    assert.equal(b.byteLength, 2);
  });

  test('an unknown tensor name lists close names', async () => {
    const path = join(dir, 'names.safetensors');
    await writeSafetensors(path, { 'h.0.attn.c_attn.weight': { dtype: 'F32', shape: [1], data: Float32Array.of(1) } });
    const r = await openSafetensors(path);
    assert.throws(() => r.info('transformer.h.0.attn.c_attn.weight'), (e: unknown) => e instanceof FormatError && e.code === 'SAFETENSORS_TENSOR_NOT_FOUND' && e.message.includes("'h.0.attn.c_attn.weight'"));
    await r.close();
    await assert.rejects(r.readRaw('h.0.attn.c_attn.weight'), (e: unknown) => e instanceof FormatError && e.code === 'SAFETENSORS_CLOSED');
  });
});

describe('safetensors reader: corrupt files', () => {
  const f32x4 = new Uint8Array(16);
  const cases: { name: string; bytes: Uint8Array; code: FormatErrorCode; tensor?: string; mentions?: string }[] = [
    { name: 'shorter than the length prefix', bytes: Uint8Array.of(1, 2, 3), code: 'SAFETENSORS_TRUNCATED' },
    { name: 'header length beyond the file', bytes: handMade('{}', new Uint8Array(0), 4096n), code: 'SAFETENSORS_TRUNCATED' },
    { name: 'header over 100 MB', bytes: handMade('{}', new Uint8Array(0), 100_000_001n), code: 'SAFETENSORS_HEADER_TOO_LARGE' },
    { name: 'header length near 2^64', bytes: handMade('{}', new Uint8Array(0), 2n ** 64n - 1n), code: 'SAFETENSORS_HEADER_TOO_LARGE' },
    { name: 'invalid JSON', bytes: handMade('{"w": {"dtype": "F32",'), code: 'SAFETENSORS_INVALID_HEADER' },
    { name: 'header not an object', bytes: handMade('[1, 2]   '), code: 'SAFETENSORS_INVALID_HEADER' },
    { name: 'invalid UTF-8', bytes: (() => {
      const b = handMade('{"\u00e9":1}');
      b[10] = 0xff;
      return b;
    })(), code: 'SAFETENSORS_INVALID_HEADER' },
    { name: 'metadata value not a string', bytes: handMade('{"__metadata__":{"step":3}}'), code: 'SAFETENSORS_INVALID_HEADER', mentions: 'step' },
    { name: 'unknown dtype', bytes: handMade('{"w":{"dtype":"F12","shape":[2],"data_offsets":[0,4]}}', new Uint8Array(4)), tensor: 'w', code: 'SAFETENSORS_UNKNOWN_DTYPE', mentions: 'F12' },
    { name: 'negative dimension', bytes: handMade('{"w":{"dtype":"F32","shape":[-1,4],"data_offsets":[0,16]}}', f32x4), tensor: 'w', code: 'SAFETENSORS_INVALID_SHAPE' },
    { name: 'fractional dimension', bytes: handMade('{"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,10]}}', new Uint8Array(10)), tensor: 'w', code: 'SAFETENSORS_INVALID_SHAPE' },
    { name: 'end before begin', bytes: handMade('{"w":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}}', new Uint8Array(4)), tensor: 'w', code: 'SAFETENSORS_INVALID_OFFSETS' },
    { name: 'byte length ≠ shape·itemsize', bytes: handMade('{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}', new Uint8Array(12)), tensor: 'w', code: 'SAFETENSORS_SIZE_MISMATCH', mentions: '16' },
    {
      name: 'overlapping ranges',
      bytes: handMade('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', new Uint8Array(12)),
      tensor: 'w',
      code: 'SAFETENSORS_OVERLAP',
    },
    {
      name: 'gap between ranges',
      bytes: handMade('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}', new Uint8Array(12)),
      tensor: 'w',
      code: 'SAFETENSORS_GAP',
    },
    { name: 'data past the end of the file', bytes: handMade('{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}', new Uint8Array(10)), tensor: 'w', code: 'SAFETENSORS_TRUNCATED' },
    { name: 'trailing bytes after the last tensor', bytes: handMade('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', new Uint8Array(9)), code: 'SAFETENSORS_TRAILING_DATA' },
  ];
  for (const c of cases) {
    test(`${c.name} → ${c.code}`, async () => {
      const path = join(dir, `bad-${c.name.replace(/[^a-z0-9]+/gi, '-')}.safetensors`);
      await writeFile(path, c.bytes);
      await assert.rejects(openSafetensors(path), (e: unknown) => {
        assert.ok(e instanceof FormatError, `not a FormatError: ${String(e)}`);
        assert.equal(e.code, c.code, e.message);
        assert.ok(e.message.includes(path), `message names the file: ${e.message}`);
        if (c.tensor !== undefined) {
          assert.equal(e.tensor, c.tensor);
          assert.ok(e.message.includes(`tensor '${c.tensor}'`), `message names the tensor: ${e.message}`);
        }
        if (c.mentions !== undefined) assert.ok(e.message.includes(c.mentions), e.message);
        return true;
      });
    });
  }

  test('entries that name a tensor name it in the message', async () => {
    const path = join(dir, 'bad-named.safetensors');
    await writeFile(path, handMade('{"lm_head.weight":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', new Uint8Array(8)));
    await assert.rejects(openSafetensors(path), (e: unknown) => e instanceof FormatError && e.code === 'SAFETENSORS_SIZE_MISMATCH' && e.tensor === 'lm_head.weight' && e.message.includes("tensor 'lm_head.weight'"));
  });

  test('data truncated after a valid header names the last tensor', async () => {
    const path = join(dir, 'bad-cut.safetensors');
    await writeFile(path, handMade('{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"F32","shape":[4],"data_offsets":[2,18]}}', new Uint8Array(7)));
    await assert.rejects(openSafetensors(path), (e: unknown) => e instanceof FormatError && e.code === 'SAFETENSORS_TRUNCATED' && e.tensor === 'b');
  });

  test('a missing file is FILE_NOT_FOUND naming the path', async () => {
    const path = join(dir, 'nope.safetensors');
    await assert.rejects(openSafetensors(path), (e: unknown) => e instanceof FormatError && e.code === 'FILE_NOT_FOUND' && e.message.includes(path));
  });
});
