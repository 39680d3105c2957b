/**
 * IEEE binary16 (F16) and bfloat16 (BF16) conversions, round-to-nearest-even, with NaN and ±Inf
 * kept and subnormals handled. The float32 paths work on bit patterns (fast, for whole tensors);
 * the float64 paths encode each value with exact arithmetic, so float64 data is rounded once, never
 * twice through float32.
 */

/** Half formats: exponent and mantissa widths. */
interface HalfFormat {
  readonly expBits: number;
  readonly mantBits: number;
}
const F16: HalfFormat = { expBits: 5, mantBits: 10 };
const BF16: HalfFormat = { expBits: 8, mantBits: 7 };

/** Rounds a non-negative number to an integer, ties to even. Exact for v < 2^52. */
function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

function encode(x: number, fmt: HalfFormat): number {
  const { expBits, mantBits } = fmt;
  const expMax = (1 << expBits) - 1;
  const bias = expMax >> 1;
  const inf = expMax << mantBits;
  if (Number.isNaN(x)) return inf | (1 << (mantBits - 1));
  const sign = x < 0 || Object.is(x, -0) ? 1 << (expBits + mantBits) : 0;
  const a = Math.abs(x);
  if (a === Infinity) return sign | inf;
  if (a < 2 ** (1 - bias)) {
    // Subnormal range: a·2^(bias−1+mantBits) is exact; a result of 2^mantBits is the smallest normal.
    return sign | roundHalfEven(a * 2 ** (bias - 1 + mantBits));
  }
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  let m = roundHalfEven(a * 2 ** (mantBits - e));
  if (m === 2 ** (mantBits + 1)) {
    e++;
    m = 2 ** mantBits;
  }
  const biased = e + bias;
  if (biased >= expMax) return sign | inf;
  return sign | (biased << mantBits) | (m - 2 ** mantBits);
}

function decode(h: number, fmt: HalfFormat): number {
  const { expBits, mantBits } = fmt;
  const expMax = (1 << expBits) - 1;
  const bias = expMax >> 1;
  const negative = ((h >> (expBits + mantBits)) & 1) === 1;
  const e = (h >> mantBits) & expMax;
  const m = h & ((1 << mantBits) - 1);
  let v: number;
  if (e === expMax) v = m === 0 ? Infinity : NaN;
  else if (e === 0) v = m * 2 ** (1 - bias - mantBits);
  else v = (2 ** mantBits + m) * 2 ** (e - bias - mantBits);
  return negative ? -v : v;
}

let f16Table: Float32Array | undefined;
/** All 65536 float16 values as float32 (256 KiB, built on first use). */
function float16Table(): Float32Array {
  if (f16Table === undefined) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = decode(h, F16);
  }
  return f16Table;
}

function bitsOf(src: Float32Array): Uint32Array {
  return new Uint32Array(src.buffer, src.byteOffset, src.length);
}

function outputFor(length: number, out: Uint16Array | undefined, op: string): Uint16Array {
  if (out === undefined) return new Uint16Array(length);
  if (out.length !== length) throw new RangeError(`${op}: out has ${out.length} elements, source has ${length}`);
  return out;
}

/** Rounds float32 values to float16 bits (ties to even; NaN stays NaN, overflow becomes ±Inf). */
export function float32ToFloat16(src: Float32Array, out?: Uint16Array): Uint16Array {
  const dst = outputFor(src.length, out, 'float32ToFloat16');
  const bits = bitsOf(src);
  for (let i = 0; i < bits.length; i++) {
    const u = bits[i];
    const sign = (u >>> 16) & 0x8000;
    const x = u & 0x7fffffff;
    if (x >= 0x7f800000) {
      // Inf stays Inf; NaN keeps its top payload bits and is forced quiet, so it cannot become Inf.
      dst[i] = sign | 0x7c00 | (x > 0x7f800000 ? 0x200 | ((x >>> 13) & 0x3ff) : 0);
    } else if (x >= 0x477ff000) {
      dst[i] = sign | 0x7c00; // ≥ 65520 rounds (ties to even) past 65504
    } else if (x >= 0x38800000) {
      // Normal: rebias the exponent (127 → 15) and round the 13 dropped mantissa bits.
      dst[i] = sign | ((x + 0xfff + ((x >>> 13) & 1) - 0x38000000) >>> 13);
    } else {
      dst[i] = sign | roundHalfEven(Math.abs(src[i]) * 16777216); // subnormal: units of 2^-24
    }
  }
  return dst;
}

/** Rounds float32 values to bfloat16 bits (ties to even; NaN stays NaN, overflow becomes ±Inf). */
export function float32ToBfloat16(src: Float32Array, out?: Uint16Array): Uint16Array {
  const dst = outputFor(src.length, out, 'float32ToBfloat16');
  const bits = bitsOf(src);
  for (let i = 0; i < bits.length; i++) {
    const u = bits[i];
    if ((u & 0x7fffffff) > 0x7f800000) dst[i] = (u >>> 16) | 0x40;
    else dst[i] = (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
  }
  return dst;
}

/** Rounds float64 values to float16 bits directly (one rounding). */
export function float64ToFloat16(src: ArrayLike<number>, out?: Uint16Array): Uint16Array {
  const dst = outputFor(src.length, out, 'float64ToFloat16');
  for (let i = 0; i < src.length; i++) dst[i] = encode(src[i], F16);
  return dst;
}

/** Rounds float64 values to bfloat16 bits directly (one rounding). */
export function float64ToBfloat16(src: ArrayLike<number>, out?: Uint16Array): Uint16Array {
  const dst = outputFor(src.length, out, 'float64ToBfloat16');
  for (let i = 0; i < src.length; i++) dst[i] = encode(src[i], BF16);
  return dst;
}

/** Widens float16 bits to float32 (exact). */
export function float16ToFloat32(src: Uint16Array, out?: Float32Array): Float32Array {
  const dst = out ?? new Float32Array(src.length);
  if (dst.length !== src.length) throw new RangeError(`float16ToFloat32: out has ${dst.length} elements, source has ${src.length}`);
  const table = float16Table();
  for (let i = 0; i < src.length; i++) dst[i] = table[src[i]];
  return dst;
}

/** Widens bfloat16 bits to float32 (exact, NaN payload kept). */
export function bfloat16ToFloat32(src: Uint16Array, out?: Float32Array): Float32Array {
  const dst = out ?? new Float32Array(src.length);
  if (dst.length !== src.length) throw new RangeError(`bfloat16ToFloat32: out has ${dst.length} elements, source has ${src.length}`);
  const bits = bitsOf(dst);
  for (let i = 0; i < src.length; i++) bits[i] = src[i] << 16;
  return dst;
}

/** A float dtype a float32/float64 array can be stored as. */
export type StorageFloat = 'F64' | 'F32' | 'F16' | 'BF16';

/** Precision lost when float values are stored in a narrower dtype. */
export interface DowncastReport {
  readonly dtype: StorageFloat;
  readonly count: number;
  /** max |x − stored(x)| over finite x. */
  readonly maxAbsError: number;
  /** max |x − stored(x)| / |x| over finite non-zero x. */
  readonly maxRelError: number;
  /** ‖x − stored(x)‖₂ / ‖x‖₂ over finite x (0 when ‖x‖ = 0). */
  readonly relativeError: number;
  /** Finite values that became ±Inf. */
  readonly overflowCount: number;
  /** Non-zero values that became 0. */
  readonly underflowCount: number;
}

/**
 * Accumulates a {@link DowncastReport} over the pieces of a tensor as they are stored: feed each
 * piece with what storing it gives back (the safetensors writer does so while it encodes, so the
 * error costs no second conversion pass over the tensor).
 */
export class DowncastMeter {
  private count = 0;
  private maxAbs = 0;
  private maxRel = 0;
  private errSq = 0;
  private normSq = 0;
  private overflow = 0;
  private underflow = 0;

  constructor(readonly dtype: StorageFloat) {}

  /** Adds values and their stored counterparts (`stored[i]` = the value `values[i]` is stored as). */
  add(values: Float32Array | Float64Array, stored: Float32Array | Float64Array): void {
    if (stored.length !== values.length) throw new RangeError(`DowncastMeter.add: ${values.length} values but ${stored.length} stored`);
    let { maxAbs, maxRel, errSq, normSq, overflow, underflow } = this;
    for (let i = 0; i < values.length; i++) {
      const x = values[i];
      if (!Number.isFinite(x)) continue;
      const q = stored[i];
      if (!Number.isFinite(q)) {
        overflow++;
        continue;
      }
      normSq += x * x;
      if (x === q) continue;
      if (q === 0) underflow++;
      const err = Math.abs(x - q);
      if (err > maxAbs) maxAbs = err;
      // Divides only for a likely new maximum (the margin keeps the filter from missing one to rounding).
      if (err > maxRel * Math.abs(x) * (1 - 1e-7)) {
        const rel = err / Math.abs(x);
        if (rel > maxRel) maxRel = rel;
      }
      errSq += err * err;
    }
    this.maxAbs = maxAbs;
    this.maxRel = maxRel;
    this.errSq = errSq;
    this.normSq = normSq;
    this.overflow = overflow;
    this.underflow = underflow;
    this.count += values.length;
  }

  /**
   * Adds a piece measured elsewhere with the same definitions (e.g. reductions in an onnxruntime
   * graph): its element count, max |x − stored(x)|, max relative error, Σ(x − stored(x))², Σx² over
   * finite x, and its overflow and underflow counts.
   */
  addReduced(r: { count: number; maxAbs: number; maxRel: number; errSq: number; normSq: number; overflow: number; underflow: number }): void {
    this.count += r.count;
    this.maxAbs = Math.max(this.maxAbs, r.maxAbs);
    this.maxRel = Math.max(this.maxRel, r.maxRel);
    this.errSq += r.errSq;
    this.normSq += r.normSq;
    this.overflow += r.overflow;
    this.underflow += r.underflow;
  }

  report(): DowncastReport {
    return {
      dtype: this.dtype,
      count: this.count,
      maxAbsError: this.maxAbs,
      maxRelError: this.maxRel,
      relativeError: this.normSq === 0 ? 0 : Math.sqrt(this.errSq / this.normSq),
      overflowCount: this.overflow,
      underflowCount: this.underflow,
    };
  }
}
