import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { access, mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FormatError } from '../../src/formats/errors.js';
import { openSafetensors } from '../../src/formats/safetensors.js';
import { createSafetensorsWriter, writeSafetensors } from '../../src/formats/safetensorsWriter.js';
import { DowncastMeter, bfloat16ToFloat32, float32ToBfloat16 } from '../../src/formats/halfFloat.js';
import { downcastError } from '../helpers/downcast.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fedex-stwriter-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** 8-byte little-endian length followed by the header text, as hand-written bytes. */
function expectedHeader(length: number, text: string): Buffer {
  const prefix = Buffer.alloc(8);
  prefix.writeUInt32LE(length, 0);
  return Buffer.concat([prefix, Buffer.from(text, 'latin1')]);
}

describe('safetensors writer: bytes match the format', () => {
  test('one F32 [2, 2] tensor: compact JSON padded with spaces to 8 bytes, then the data', async () => {
    // prepare: the JSON below is 60 bytes, so 4 spaces pad it to 64
    const path = join(dir, 'spec.safetensors');
    const data = Float32Array.of(1, 2, 3, 4);
    // act
    await writeSafetensors(path, { name: { dtype: 'F32', shape: [2, 2], data } });
    const bytes = await readFile(path);
    // assert
    const header = expectedHeader(64, '{"name":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}    ');
    assert.deepEqual(bytes.subarray(0, 72), header);
    assert.deepEqual(bytes.subarray(72), Buffer.from([0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 0, 0, 0x40, 0x40, 0, 0, 0x80, 0x40]));
    assert.equal(bytes.length, 88);
  });

  test('the reference implementation test vector (attn0, F32 [1, 1, 2, 3]) is reproduced byte for byte', async () => {
    const path = join(dir, 'attn0.safetensors');
    await writeSafetensors(path, { attn0: { dtype: 'F32', shape: [1, 1, 2, 3], data: Float32Array.of(0, 1, 2, 3, 4, 5) } });
    const bytes = await readFile(path);
    assert.deepEqual(bytes.subarray(0, 80), expectedHeader(72, '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       '));
  });

  test('__metadata__ comes first; an empty file is {} plus padding', async () => {
    const withMeta = join(dir, 'meta.safetensors');
    const empty = join(dir, 'empty.safetensors');
    await writeSafetensors(withMeta, new Map([['x', { dtype: 'U8' as const, shape: [1], data: Uint8Array.of(7) }]]), { format: 'pt' });
    await writeSafetensors(empty, {}, undefined);
    const text = '{"__metadata__":{"format":"pt"},"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}';
    const padded = text + ' '.repeat((8 - (text.length % 8)) % 8);
    assert.deepEqual((await readFile(withMeta)).subarray(0, 8 + padded.length), expectedHeader(padded.length, padded));
    assert.deepEqual(await readFile(empty), expectedHeader(8, '{}      '));
  });

  test('the data section starts 8-byte aligned for every name length', async () => {
    for (let len = 1; len <= 9; len++) {
      const path = join(dir, `align-${len}.safetensors`);
      const name = 'n'.repeat(len);
      await writeSafetensors(path, { [name]: { dtype: 'F64', shape: [1], data: Float64Array.of(len) } });
      const r = await openSafetensors(path);
      const info = r.info(name);
      const value = await r.readFloat64(name);
      await r.close();
      assert.equal(info.byteOffset % 8, 0, `name length ${len}`);
      assert.equal(value[0], len);
    }
  });

  test("'reference' order sorts by dtype (widest first) then name, as huggingface/safetensors does", async () => {
    const path = join(dir, 'order.safetensors');
    const writer = await createSafetensorsWriter(path, [
      { name: 'b', dtype: 'F16', shape: [1] },
      { name: 'c', dtype: 'F32', shape: [1] },
      { name: 'a', dtype: 'F32', shape: [1] },
      { name: 'd', dtype: 'I64', shape: [1] },
    ], undefined, { order: 'reference' });
    assert.deepEqual(writer.tensors.map((t) => t.name), ['d', 'a', 'c', 'b']);
    await writer.abort();
  });
});

describe('safetensors writer: streaming', () => {
  test('tensors may be written in any order; large tensors are converted in chunks', async () => {
    // prepare: 1.5 M values (more than one conversion chunk), all exact in float16
    const path = join(dir, 'big.safetensors');
    const big = new Float32Array(1_500_000).map((_, i) => (i % 4096) - 2048);
    const small = Float64Array.of(0.5, -0.25);
    const writer = await createSafetensorsWriter(path, [
      { name: 'big', dtype: 'F16', shape: [1500, 1000] },
      { name: 'small', dtype: 'F32', shape: [2] },
    ]);
    // act
    await writer.writeTensor('small', small);
    await writer.writeTensor('big', big);
    await writer.close();
    // assert
    const r = await openSafetensors(path);
    assert.deepEqual(await r.readFloat32('big'), big);
    assert.deepEqual([...(await r.readFloat32('small'))], [0.5, -0.25]);
    await r.close();
  });

  test('a tensor copied in raw pieces, in order, counts as written once complete; a down-cast is measured while encoding', async () => {
    // prepare: a BF16 tensor of 700 k values (several conversion chunks) and a raw I8 tensor
    const path = join(dir, 'pieces.safetensors');
    const values = new Float32Array(700_000).map((_, i) => Math.sin(i) * 3);
    const raw = new Uint8Array(10).map((_, i) => i * 7);
    const writer = await createSafetensorsWriter(path, [
      { name: 'w', dtype: 'BF16', shape: [700, 1000] },
      { name: 'ids', dtype: 'I8', shape: [10] },
      { name: 'empty', dtype: 'F32', shape: [0, 3] },
    ]);
    const meter = new DowncastMeter('BF16');
    // act
    await writer.writeRawPart('ids', raw.subarray(0, 4));
    await assert.rejects(writer.writeTensor('ids', raw), /being written in pieces/);
    await assert.rejects(writer.writeRawPart('ids', raw), /runs past the tensor's 10 bytes/);
    await writer.writeRawPart('ids', raw.subarray(4));
    await assert.rejects(writer.writeRawPart('ids', raw.subarray(0, 1)), /written twice/);
    await writer.writeRawPart('empty', new Uint8Array(0));
    await writer.writeTensor('w', values, { downcast: meter });
    await writer.close();
    // assert
    const r = await openSafetensors(path);
    assert.deepEqual(await r.readRaw('ids'), raw);
    assert.deepEqual(await r.readFloat32('w'), bfloat16ToFloat32(float32ToBfloat16(values)));
    await r.close();
    assert.deepEqual(meter.report(), downcastError(values, 'BF16'), 'the same report as a separate pass');
  });

  test('close() refuses an incomplete file and leaves nothing behind', async () => {
    const sub = join(dir, 'incomplete');
    await mkdir(sub);
    const path = join(sub, 'partial.safetensors');
    const writer = await createSafetensorsWriter(path, [
      { name: 'a', dtype: 'F32', shape: [1] },
      { name: 'b', dtype: 'F32', shape: [1] },
    ]);
    await writer.writeTensor('a', Float32Array.of(1));
    await assert.rejects(writer.close(), (e: unknown) => e instanceof FormatError && e.code === 'SAFETENSORS_WRITE_INCOMPLETE' && e.message.includes("'b'") && e.message.includes(path));
    await assert.rejects(access(path));
    assert.deepEqual(await readdir(sub), []);
  });

  test('wrong sizes, unknown names, double writes and floats into integer dtypes are refused', async () => {
    const path = join(dir, 'refuse.safetensors');
    const writer = await createSafetensorsWriter(path, [
      { name: 'w', dtype: 'BF16', shape: [2, 3] },
      { name: 'ids', dtype: 'I64', shape: [2] },
    ]);
    const invalid = (e: unknown): boolean => e instanceof FormatError && e.code === 'SAFETENSORS_WRITE_INVALID';
    await assert.rejects(writer.writeTensor('w', new Float32Array(5)), (e: unknown) => invalid(e) && (e as Error).message.includes("tensor 'w'"));
    await assert.rejects(writer.writeTensor('w', new Uint8Array(10)), invalid);
    await assert.rejects(writer.writeTensor('nope', new Float32Array(1)), invalid);
    await assert.rejects(writer.writeTensor('ids', new Float64Array(2)), (e: unknown) => invalid(e) && (e as Error).message.includes('I64'));
    await writer.writeTensor('w', new Float32Array(6));
    await assert.rejects(writer.writeTensor('w', new Float32Array(6)), invalid);
    await writer.abort();
    await assert.rejects(access(path));
  });

  test('duplicate or reserved names and bad shapes are refused before anything is written', async () => {
    const path = join(dir, 'plan.safetensors');
    await assert.rejects(createSafetensorsWriter(path, [{ name: 'a', dtype: 'F32', shape: [1] }, { name: 'a', dtype: 'F32', shape: [1] }]), (e: unknown) => e instanceof FormatError && e.code === 'SAFETENSORS_WRITE_INVALID');
    await assert.rejects(createSafetensorsWriter(path, [{ name: '__metadata__', dtype: 'F32', shape: [1] }]), (e: unknown) => e instanceof FormatError && e.code === 'SAFETENSORS_WRITE_INVALID');
    await assert.rejects(createSafetensorsWriter(path, [{ name: 'a', dtype: 'F32', shape: [2, -1] }]), (e: unknown) => e instanceof FormatError && e.code === 'SAFETENSORS_INVALID_SHAPE');
    await assert.rejects(access(path));
  });
});
