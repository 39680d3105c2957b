/**
 * A minimal protocol-buffers writer: just what ONNX's ModelProto needs (varints, fixed32/64,
 * length-delimited fields, packed repeated scalars). Messages are built bottom-up as byte arrays.
 */

const textEncoder = new TextEncoder();

/** Wire types of the protobuf encoding. */
const VARINT = 0;
const FIXED64 = 1;
const LEN = 2;
const FIXED32 = 5;

/** Growable byte buffer that encodes protobuf fields. */
export class ProtoWriter {
  private buf: Uint8Array;
  private len = 0;

  constructor(initialCapacity = 256) {
    this.buf = new Uint8Array(initialCapacity);
  }

  private ensure(extra: number): void {
    if (this.len + extra <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + extra) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  private rawVarint(value: bigint): void {
    // Negative int64 values are encoded as their 64-bit two's complement (10 bytes).
    let v = BigInt.asUintN(64, value);
    this.ensure(10);
    while (v >= 0x80n) {
      this.buf[this.len++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.len++] = Number(v);
  }

  private rawSmallVarint(value: number): void {
    if (value < 0 || !Number.isSafeInteger(value)) {
      this.rawVarint(BigInt(value));
      return;
    }
    this.ensure(10);
    let v = value;
    while (v >= 0x80) {
      this.buf[this.len++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.len++] = v;
  }

  private tag(field: number, wireType: number): void {
    this.rawSmallVarint(field * 8 + wireType);
  }

  /** An int32/int64/enum/bool field. */
  int(field: number, value: number | bigint): this {
    this.tag(field, VARINT);
    if (typeof value === 'bigint') this.rawVarint(value);
    else this.rawSmallVarint(value);
    return this;
  }

  /** A `float` field (fixed32, little-endian). */
  float(field: number, value: number): this {
    this.tag(field, FIXED32);
    this.ensure(4);
    new DataView(this.buf.buffer, this.buf.byteOffset + this.len, 4).setFloat32(0, value, true);
    this.len += 4;
    return this;
  }

  /** A `double` field (fixed64, little-endian). */
  double(field: number, value: number): this {
    this.tag(field, FIXED64);
    this.ensure(8);
    new DataView(this.buf.buffer, this.buf.byteOffset + this.len, 8).setFloat64(0, value, true);
    this.len += 8;
    return this;
  }

  /** A `bytes` or embedded-message field. */
  bytes(field: number, value: Uint8Array): this {
    this.tag(field, LEN);
    this.rawSmallVarint(value.length);
    this.ensure(value.length);
    this.buf.set(value, this.len);
    this.len += value.length;
    return this;
  }

  /** A `string` field (UTF-8). */
  string(field: number, value: string): this {
    return this.bytes(field, textEncoder.encode(value));
  }

  /** A packed `repeated int64` field. */
  packedInts(field: number, values: readonly (number | bigint)[]): this {
    const inner = new ProtoWriter(values.length * 2 + 8);
    for (const v of values) {
      if (typeof v === 'bigint') inner.rawVarint(v);
      else inner.rawSmallVarint(v);
    }
    return this.bytes(field, inner.finish());
  }

  /** A packed `repeated float` field. */
  packedFloats(field: number, values: readonly number[]): this {
    const out = new Uint8Array(values.length * 4);
    const view = new DataView(out.buffer);
    values.forEach((v, i) => view.setFloat32(i * 4, v, true));
    return this.bytes(field, out);
  }

  /** The encoded bytes (a view, valid until the next write). */
  finish(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}
