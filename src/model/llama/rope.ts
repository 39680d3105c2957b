/**
 * Rotary position embeddings as transformers computes them (`modeling_rope_utils.py`): the RoPE of
 * a flat config.json (`rope_scaling` or `rope_parameters`, every type of ropeScaling.ts), the
 * rotated share of each head (`partial_rotary_factor`), and the cos/sin tables of the graph.
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
import { ropeFrequencies, type RopeFrequencies, type RopeSource } from './ropeScaling.js';

type Raw = Readonly<Record<string, unknown>>;

/** What the graph needs to rotate q and k. */
export interface RopeSpec extends RopeFrequencies {
  /** Leading dims of each head that rotate (`partial_rotary_factor · head_dim`); the rest pass through. */
  readonly rotaryDim: number;
}

/** `rope_scaling` (or newer transformers' flat `rope_parameters`), when present. */
function scalingOf(raw: Raw): Raw | undefined {
  const scaling = raw.rope_scaling ?? raw.rope_parameters;
  return typeof scaling === 'object' && scaling !== null ? (scaling as Raw) : undefined;
}

/** How a config's family reads RoPE beyond `rope_scaling`. */
export interface RopeOptions {
  /** The attention applies `partial_rotary_factor` (Phi-3); elsewhere a factor other than 1 is refused. */
  readonly partialRotary?: boolean;
  /** The config class's default `original_max_position_embeddings` when config.json has none (Phi-3: 4096). */
  readonly originalMaxDefault?: number;
}

/**
 * The RoPE of a flat config (one RoPE for every layer): rotated dims (`partial_rotary_factor`,
 * honoured only where the model's attention applies it), frequencies and cos/sin scaling of the
 * `rope_scaling` type. A top-level `original_max_position_embeddings` wins over the rope dict's, as
 * in transformers.
 */
export function ropeSpec(raw: Raw, headDim: number, theta: number, maxPositions: number, options: RopeOptions = {}): RopeSpec {
  const scaling = scalingOf(raw);
  const partial = raw.partial_rotary_factor ?? scaling?.partial_rotary_factor ?? 1;
  if (typeof partial !== 'number' || !(partial > 0 && partial <= 1)) {
    throw new ModelError('CONFIG_INVALID', `llama config: partial_rotary_factor must be in (0, 1], got ${JSON.stringify(partial)}`);
  }
  if (partial !== 1 && options.partialRotary !== true) {
    throw new ModelError('UNSUPPORTED_OPTION', `llama config: partial_rotary_factor ${partial} (partial RoPE) is supported for model_type phi3 only`);
  }
  const rotaryDim = Math.trunc(headDim * partial);
  if (rotaryDim < 2 || rotaryDim % 2 !== 0) {
    throw new ModelError('CONFIG_INVALID', `llama config: rotary dim ${rotaryDim} (head dim ${headDim} × partial_rotary_factor ${partial}) must be even and ≥ 2`);
  }
  const top = raw.original_max_position_embeddings;
  const originalMax = typeof top === 'number' ? top : options.originalMaxDefault;
  // A rope_theta inside the rope dict wins (transformers sets the top-level one as its default).
  const base = typeof scaling?.rope_theta === 'number' ? scaling.rope_theta : theta;
  const source: RopeSource = { ...(scaling !== undefined ? { params: scaling } : {}), theta: base, maxPositions, ...(originalMax !== undefined ? { originalMax } : {}) };
  return { rotaryDim, ...ropeFrequencies(source, rotaryDim) };
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
 * The initializers are `<name>.cos` and `<name>.sin` (a model with two RoPEs names them apart).
 */
export function ropeTables(g: GraphBuilder, spec: RopeSpec, seq: Dim, maxPositions: number, dtype: FloatDType, like: Value, name = 'rope'): { cos: Value; sin: Value } {
  const rd = spec.rotaryDim;
  const s = spec.attentionScaling;
  const make = (which: 'cos' | 'sin'): Value => {
    if (typeof seq === 'number') {
      const inv = spec.long !== undefined && seq > spec.long.afterLength ? spec.long.invFreq : spec.invFreq;
      return g.initializer(`${name}.${which}`, table(inv, s, 0, seq, dtype, which), [seq, rd]);
    }
    if (spec.long === undefined) return slice(g.initializer(`${name}.${which}`, table(spec.invFreq, s, 0, maxPositions, dtype, which), [maxPositions, rd]), 0, 0, seq);
    const { afterLength, invFreq } = spec.long;
    const short = table(spec.invFreq, s, 0, afterLength, dtype, which);
    const both = dtype === 'float64' ? new Float64Array((afterLength + maxPositions) * rd) : new Float32Array((afterLength + maxPositions) * rd);
    both.set(short);
    both.set(table(invFreq, s, 0, maxPositions, dtype, which), short.length);
    const stacked = g.initializer(`${name}.${which}`, both, [afterLength + maxPositions, rd]);
    const isLong = cast(less(afterLength, g.dimsTensor([seq], like)), 'int64');
    return gather(stacked, add(arange(like, seq), mul(isLong, afterLength)));
  };
  return { cos: make('cos'), sin: make('sin') };
}
