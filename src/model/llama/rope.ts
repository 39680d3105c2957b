/**
 * Rotary position embeddings of the Llama family as transformers computes them
 * (`modeling_rope_utils.py`): the inverse frequencies from config.json (`rope_scaling` or
 * `rope_parameters`: default, linear, llama3, longrope), the rotated share of each head
 * (`partial_rotary_factor`), and the cos/sin tables of the graph.
 */
import type { GraphBuilder, Value } from '../../graph/builder.js';
import type { FloatDType } from '../../graph/dtype.js';
import { add } from '../../graph/ops/add.js';
import { cast } from '../../graph/ops/cast.js';
import { gather } from '../../graph/ops/gather.js';
import { less } from '../../graph/ops/logical.js';
import { mul } from '../../graph/ops/mul.js';
import { arange } from '../../graph/ops/range.js';
import { slice } from '../../graph/ops/slice.js';
import type { Dim } from '../../graph/shape.js';
import { ModelError } from '../errors.js';

type Raw = Readonly<Record<string, unknown>>;

/** RoPE types this family computes; `su` is the early Phi-3 name of `longrope`. */
export const ROPE_TYPES: readonly string[] = ['default', 'linear', 'llama3', 'longrope'];

/** What the graph needs to rotate q and k. */
export interface RopeSpec {
  /** Leading dims of each head that rotate (`partial_rotary_factor · head_dim`); the rest pass through. */
  readonly rotaryDim: number;
  /** Inverse frequencies `[rotaryDim / 2]`, scaling applied. */
  readonly invFreq: Float64Array;
  /** Factor on cos and sin (LongRoPE's attention factor; 1 otherwise). */
  readonly attentionScaling: number;
  /** LongRoPE: the frequencies used instead when the sequence is longer than `afterLength`. */
  readonly long?: { readonly invFreq: Float64Array; readonly afterLength: number };
}

function num(raw: Raw, name: string, where = 'rope scaling field'): number {
  const v = raw[name];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ModelError('CONFIG_INVALID', `llama config: ${where} '${name}' must be a number, got ${JSON.stringify(v)}`);
  return v;
}

/** `rope_scaling` (or newer transformers' `rope_parameters`), when present. */
function scalingOf(raw: Raw): Raw | undefined {
  const scaling = raw.rope_scaling ?? raw.rope_parameters;
  return typeof scaling === 'object' && scaling !== null ? (scaling as Raw) : undefined;
}

/** The RoPE type named by config.json (`su` read as `longrope`). */
export function ropeType(raw: Raw): string {
  const scaling = scalingOf(raw);
  const type = String(scaling?.rope_type ?? scaling?.type ?? 'default');
  return type === 'su' ? 'longrope' : type;
}

/**
 * HF's RoPE inverse frequencies `1/θ^(2i/dim)` over `dim` rotated dims, with the `rope_scaling`
 * types `default`, `linear` and `llama3` (Llama 3.1+). LongRoPE needs more than one table: see
 * {@link ropeSpec}. Other types are refused rather than approximated.
 */
export function ropeInverseFrequencies(raw: Raw, dim: number, theta: number): Float64Array {
  const inv = Float64Array.from({ length: dim / 2 }, (_, i) => 1 / theta ** ((2 * i) / dim));
  const scaling = scalingOf(raw);
  const type = ropeType(raw);
  if (scaling === undefined || type === 'default') return inv;
  if (type === 'linear') return inv.map((f) => f / num(scaling, 'factor'));
  if (type === 'llama3') {
    const factor = num(scaling, 'factor');
    const low = num(scaling, 'low_freq_factor');
    const high = num(scaling, 'high_freq_factor');
    const oldLen = num(scaling, 'original_max_position_embeddings');
    const lowWavelen = oldLen / low;
    const highWavelen = oldLen / high;
    return inv.map((f) => {
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < highWavelen) return f;
      if (wavelen > lowWavelen) return f / factor;
      const smooth = (oldLen / wavelen - low) / (high - low);
      return (1 - smooth) * (f / factor) + smooth * f;
    });
  }
  if (type === 'longrope') throw new ModelError('UNSUPPORTED_OPTION', 'llama config: longrope has a short and a long table; read it with ropeSpec');
  throw new ModelError('UNSUPPORTED_OPTION', `llama config: rope scaling type '${type}' is not supported (supported: ${ROPE_TYPES.join(', ')})`);
}

function factorList(scaling: Raw, name: string, length: number): number[] {
  const v = scaling[name];
  if (!Array.isArray(v) || v.length !== length || !v.every((x) => typeof x === 'number' && Number.isFinite(x) && x > 0)) {
    throw new ModelError('CONFIG_INVALID', `llama config: longrope '${name}' must be ${length} positive numbers (rotary dim / 2), got ${JSON.stringify(v)}`);
  }
  return v as number[];
}

/**
 * LongRoPE (Phi-3 128k, Phi-4-mini): `1/(factor_i · θ^(2i/dim))` with the short factors up to
 * `original_max_position_embeddings` tokens and the long ones beyond, and cos/sin scaled by
 * `attention_factor` (default `√(1 + ln f / ln original)` with `f = max_position_embeddings /
 * original`), as transformers' `_compute_longrope_parameters` and `longrope_frequency_update`.
 */
function longRope(raw: Raw, scaling: Raw, dim: number, theta: number, maxPositions: number): Omit<RopeSpec, 'rotaryDim'> {
  const original = typeof scaling.original_max_position_embeddings === 'number'
    ? scaling.original_max_position_embeddings
    : num(raw, 'original_max_position_embeddings', 'longrope needs');
  const factor = typeof scaling.factor === 'number' ? scaling.factor : maxPositions / original;
  const attention = typeof scaling.attention_factor === 'number'
    ? scaling.attention_factor
    : factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(original));
  const freqs = (ext: number[]): Float64Array => Float64Array.from(ext, (e, i) => 1 / (e * theta ** ((2 * i) / dim)));
  const short = freqs(factorList(scaling, 'short_factor', dim / 2));
  const long = freqs(factorList(scaling, 'long_factor', dim / 2));
  return { invFreq: short, attentionScaling: attention, ...(maxPositions > original ? { long: { invFreq: long, afterLength: original } } : {}) };
}

/**
 * The RoPE of a config: rotated dims (`partial_rotary_factor`, honoured only where the model's
 * attention applies it: `partialRotary`), frequencies and scaling.
 */
export function ropeSpec(raw: Raw, headDim: number, theta: number, maxPositions: number, partialRotary: boolean): RopeSpec {
  const scaling = scalingOf(raw);
  const partial = raw.partial_rotary_factor ?? scaling?.partial_rotary_factor ?? 1;
  if (typeof partial !== 'number' || !(partial > 0 && partial <= 1)) {
    throw new ModelError('CONFIG_INVALID', `llama config: partial_rotary_factor must be in (0, 1], got ${JSON.stringify(partial)}`);
  }
  if (partial !== 1 && !partialRotary) {
    throw new ModelError('UNSUPPORTED_OPTION', `llama config: partial_rotary_factor ${partial} (partial RoPE) is supported for model_type phi3 only`);
  }
  const rotaryDim = Math.trunc(headDim * partial);
  if (rotaryDim < 2 || rotaryDim % 2 !== 0) {
    throw new ModelError('CONFIG_INVALID', `llama config: rotary dim ${rotaryDim} (head dim ${headDim} × partial_rotary_factor ${partial}) must be even and ≥ 2`);
  }
  if (scaling !== undefined && ropeType(raw) === 'longrope') return { rotaryDim, ...longRope(raw, scaling, rotaryDim, theta, maxPositions) };
  return { rotaryDim, invFreq: ropeInverseFrequencies(raw, rotaryDim, theta), attentionScaling: 1 };
}

/** cos or sin `[rows, rotaryDim]` (HF: `emb = cat(freqs, freqs)`, times the attention scaling) for positions `first…`. */
function table(inv: Float64Array, scale: number, first: number, rows: number, dtype: FloatDType, which: 'cos' | 'sin'): Float32Array | Float64Array {
  const rd = 2 * inv.length;
  const data = dtype === 'float64' ? new Float64Array(rows * rd) : new Float32Array(rows * rd);
  const f = which === 'cos' ? Math.cos : Math.sin;
  for (let t = 0; t < rows; t++) for (let i = 0; i < rd; i++) data[t * rd + i] = scale * f((first + t) * inv[i % inv.length]);
  return data;
}

/**
 * The cos/sin tables `[seq, rotaryDim]` of a graph whose sequence length is `seq` (a number, or a
 * symbol read from `like` at run time, up to `maxPositions`). LongRoPE with a symbolic length keeps
 * the short table's rows, then the long table's, and gathers rows `t + (seq > original ? original : 0)`.
 */
export function ropeTables(g: GraphBuilder, spec: RopeSpec, seq: Dim, maxPositions: number, dtype: FloatDType, like: Value): { cos: Value; sin: Value } {
  const rd = spec.rotaryDim;
  const s = spec.attentionScaling;
  const make = (which: 'cos' | 'sin'): Value => {
    if (typeof seq === 'number') {
      const inv = spec.long !== undefined && seq > spec.long.afterLength ? spec.long.invFreq : spec.invFreq;
      return g.initializer(`rope.${which}`, table(inv, s, 0, seq, dtype, which), [seq, rd]);
    }
    if (spec.long === undefined) return slice(g.initializer(`rope.${which}`, table(spec.invFreq, s, 0, maxPositions, dtype, which), [maxPositions, rd]), 0, 0, seq);
    const { afterLength, invFreq } = spec.long;
    const short = table(spec.invFreq, s, 0, afterLength, dtype, which);
    const both = dtype === 'float64' ? new Float64Array((afterLength + maxPositions) * rd) : new Float32Array((afterLength + maxPositions) * rd);
    both.set(short);
    both.set(table(invFreq, s, 0, maxPositions, dtype, which), short.length);
    const stacked = g.initializer(`rope.${which}`, both, [afterLength + maxPositions, rd]);
    const isLong = cast(less(afterLength, g.dimsTensor([seq], like)), 'int64');
    return gather(stacked, add(arange(like, seq), mul(isLong, afterLength)));
  };
  return { cos: make('cos'), sin: make('sin') };
}
