/**
 * RoPE inverse frequencies and the cos/sin factor of every `rope_type` transformers defines
 * (`modeling_rope_utils.py`): `default`, `linear`, `llama3`, `dynamic` (NTK), `yarn` and `longrope`
 * (`su` is its early Phi-3 name), computed from one rope dict — `rope_scaling`, a flat
 * `rope_parameters`, or one layer type's entry of a nested `rope_parameters` (Gemma 3).
 */
import { ModelError } from '../errors.js';

type Raw = Readonly<Record<string, unknown>>;

/** RoPE types computed here. */
export const ROPE_TYPES: readonly string[] = ['default', 'linear', 'llama3', 'dynamic', 'yarn', 'longrope'];

/** The frequencies of one RoPE: what the cos/sin tables are made of. */
export interface RopeFrequencies {
  /** Inverse frequencies `[rotaryDim / 2]`, scaling applied. */
  readonly invFreq: Float64Array;
  /** Factor on cos and sin (YaRN's and LongRoPE's attention factor; 1 otherwise). */
  readonly attentionScaling: number;
  /** LongRoPE: the frequencies used instead when the sequence is longer than `afterLength`. */
  readonly long?: { readonly invFreq: Float64Array; readonly afterLength: number };
}

/** What one RoPE is computed from. */
export interface RopeSource {
  /** The rope dict (`rope_type` or `type`, `factor`, …); undefined or null: the default RoPE. */
  readonly params?: Raw;
  /** The base θ. */
  readonly theta: number;
  /** `max_position_embeddings`: the longest sequence the model takes. */
  readonly maxPositions: number;
  /**
   * A model-level `original_max_position_embeddings` (a top-level config field, or a config class
   * default such as Phi-3's 4096): as in transformers' flat configs, it wins over the rope dict's.
   */
  readonly originalMax?: number;
}

function num(params: Raw, name: string, type: string): number {
  const v = params[name];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ModelError('CONFIG_INVALID', `rope scaling '${type}': '${name}' must be a number, got ${JSON.stringify(v)}`);
  return v;
}

/** An optional number field: undefined when absent or null. */
function opt(params: Raw, name: string, type: string): number | undefined {
  const v = params[name];
  return v === undefined || v === null ? undefined : num(params, name, type);
}

/** The RoPE type of a rope dict (`su` read as `longrope`; none: `default`). */
function ropeTypeOf(params: Raw | undefined): string {
  const type = String(params?.rope_type ?? params?.type ?? 'default');
  return type === 'su' ? 'longrope' : type;
}

/** The pretraining length the scaled types start from: the model-level field, else the dict's, else max_position_embeddings (transformers' standardisation). */
function originalMaxOf(source: RopeSource, params: Raw, type: string): number {
  return source.originalMax ?? opt(params, 'original_max_position_embeddings', type) ?? source.maxPositions;
}

/** `1/θ^(2i/dim)`, i < dim/2. */
function defaultInv(dim: number, theta: number): Float64Array {
  return Float64Array.from({ length: dim / 2 }, (_, i) => 1 / theta ** ((2 * i) / dim));
}

/** Llama 3.1+: high frequencies kept, low ones divided by the factor, a smooth blend between. */
function llama3(source: RopeSource, params: Raw, dim: number): Float64Array {
  const factor = num(params, 'factor', 'llama3');
  const low = num(params, 'low_freq_factor', 'llama3');
  const high = num(params, 'high_freq_factor', 'llama3');
  const oldLen = originalMaxOf(source, params, 'llama3');
  const lowWavelen = oldLen / low;
  const highWavelen = oldLen / high;
  return defaultInv(dim, source.theta).map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highWavelen) return f;
    if (wavelen > lowWavelen) return f / factor;
    const smooth = (oldLen / wavelen - low) / (high - low);
    return (1 - smooth) * (f / factor) + smooth * f;
  });
}

/**
 * Dynamic NTK: θ' = θ·((f·L/max) − (f − 1))^(dim/(dim−2)) with L = max(sequence length,
 * max_position_embeddings). fedex takes sequences up to max_position_embeddings only (as every
 * family), so L is max_position_embeddings and θ' = θ — what transformers computes for such lengths
 * (it rescales only once a sequence grows past max_position_embeddings).
 */
function dynamicNtk(source: RopeSource, params: Raw, dim: number): Float64Array {
  const factor = num(params, 'factor', 'dynamic');
  const seqLen = source.maxPositions;
  const base = source.theta * ((factor * seqLen) / source.maxPositions - (factor - 1)) ** (dim / (dim - 2));
  return defaultInv(dim, base);
}

/** YaRN's attention factor for a scale `s` (`0.1·m·ln s + 1`, 1 for s ≤ 1). */
function yarnMscale(scale: number, mscale = 1): number {
  return scale <= 1 ? 1 : 0.1 * mscale * Math.log(scale) + 1;
}

/**
 * YaRN: per frequency, a blend of the interpolated (`f/factor`) and the original (extrapolated)
 * frequency, by a linear ramp between the dims that rotate `beta_fast` and `beta_slow` times over
 * the original length; cos/sin times the attention factor (`attention_factor`, else from `mscale`
 * and `mscale_all_dim`, else `0.1·ln factor + 1`).
 */
function yarn(source: RopeSource, params: Raw, dim: number): RopeFrequencies {
  if (!('factor' in params)) throw new ModelError('CONFIG_INVALID', "rope scaling 'yarn': 'factor' is missing");
  const original = originalMaxOf(source, params, 'yarn');
  const factor = opt(params, 'factor', 'yarn') ?? source.maxPositions / original;
  const mscale = opt(params, 'mscale', 'yarn');
  const mscaleAllDim = opt(params, 'mscale_all_dim', 'yarn');
  // transformers tests these for truthiness: 0 counts as unset.
  const attention = opt(params, 'attention_factor', 'yarn')
    ?? (mscale && mscaleAllDim ? yarnMscale(factor, mscale) / yarnMscale(factor, mscaleAllDim) : yarnMscale(factor));
  const betaFast = opt(params, 'beta_fast', 'yarn') || 32;
  const betaSlow = opt(params, 'beta_slow', 'yarn') || 1;
  const truncate = params.truncate === undefined || params.truncate === null ? true : params.truncate === true;
  const theta = source.theta;
  // The dim whose frequency turns `rotations` times over the original length.
  const correctionDim = (rotations: number): number => (dim * Math.log(original / (rotations * 2 * Math.PI))) / (2 * Math.log(theta));
  let low = correctionDim(betaFast);
  let high = correctionDim(betaSlow);
  if (truncate) {
    low = Math.floor(low);
    high = Math.ceil(high);
  }
  low = Math.max(low, 0);
  high = Math.min(high, dim - 1);
  if (low === high) high += 0.001;
  const extrapolated = defaultInv(dim, theta);
  const invFreq = extrapolated.map((f, i) => {
    const ramp = Math.min(1, Math.max(0, (i - low) / (high - low)));
    return (f / factor) * ramp + f * (1 - ramp);
  });
  return { invFreq, attentionScaling: attention };
}

function factorList(params: Raw, name: string, length: number): number[] {
  const v = params[name];
  if (!Array.isArray(v) || v.length !== length || !v.every((x) => typeof x === 'number' && Number.isFinite(x) && x > 0)) {
    throw new ModelError('CONFIG_INVALID', `rope scaling 'longrope': '${name}' must be ${length} positive numbers (rotary dim / 2), got ${JSON.stringify(v)}`);
  }
  return v as number[];
}

/**
 * LongRoPE (Phi-3 128k, Phi-3.5, Phi-4-mini): `1/(factor_i · θ^(2i/dim))` with the short factors up
 * to the original length and the long ones beyond, cos/sin times `attention_factor` (default
 * `√(1 + ln f / ln original)` with `f = factor`, else max_position_embeddings / original).
 */
function longRope(source: RopeSource, params: Raw, dim: number): RopeFrequencies {
  const original = originalMaxOf(source, params, 'longrope');
  const factor = opt(params, 'factor', 'longrope') ?? source.maxPositions / original;
  const attention = opt(params, 'attention_factor', 'longrope') ?? (factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(original)));
  const freqs = (ext: number[]): Float64Array => Float64Array.from(ext, (e, i) => 1 / (e * source.theta ** ((2 * i) / dim)));
  const short = freqs(factorList(params, 'short_factor', dim / 2));
  const long = freqs(factorList(params, 'long_factor', dim / 2));
  return { invFreq: short, attentionScaling: attention, ...(source.maxPositions > original ? { long: { invFreq: long, afterLength: original } } : {}) };
}

/** The frequencies of a RoPE over `dim` rotated dims; an unknown type is refused naming the supported ones. */
export function ropeFrequencies(source: RopeSource, dim: number): RopeFrequencies {
  const params = source.params ?? {};
  const type = ropeTypeOf(source.params);
  switch (type) {
    case 'default':
      return { invFreq: defaultInv(dim, source.theta), attentionScaling: 1 };
    case 'linear': {
      const factor = num(params, 'factor', 'linear');
      return { invFreq: defaultInv(dim, source.theta).map((f) => f / factor), attentionScaling: 1 };
    }
    case 'llama3':
      return { invFreq: llama3(source, params, dim), attentionScaling: 1 };
    case 'dynamic':
      return { invFreq: dynamicNtk(source, params, dim), attentionScaling: 1 };
    case 'yarn':
      return yarn(source, params, dim);
    case 'longrope':
      return longRope(source, params, dim);
    default:
      throw new ModelError('UNSUPPORTED_OPTION', `rope scaling type '${type}' is not supported (supported: ${ROPE_TYPES.join(', ')})`);
  }
}
