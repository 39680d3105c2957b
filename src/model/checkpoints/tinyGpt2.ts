/**
 * A freshly initialised GPT-2 written as a real Hugging Face folder: `config.json` with
 * transformers' keys and `model.safetensors` with the hub's tensor names (`wte.weight`,
 * `h.0.attn.c_attn.weight`, …, lm_head tied to wte so not stored). Weights follow
 * transformers' `GPT2PreTrainedModel._init_weights`: N(0, 0.02²) for embeddings and Conv1D
 * weights, N(0, (0.02/√(2·n_layer))²) for the residual projections (`c_proj`), zero biases,
 * LayerNorm scale 1 and bias 0. The project pretrains its small default model from this.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createRng, fillGaussian } from '../../core/random.js';
import { writeFileAtomic } from '../../formats/atomicFile.js';
import { createSafetensorsWriter } from '../../formats/safetensorsWriter.js';
import { CONFIG_FILE, SAFETENSORS_FILE } from '../checkpoint.js';

export interface TinyGpt2Spec {
  readonly vocabSize: number;
  readonly nEmbd: number;
  readonly nLayer: number;
  readonly nHead: number;
  readonly nPositions: number;
  readonly seed: number;
  /** Storage dtype (default F32). */
  readonly dtype?: 'F32' | 'F16' | 'BF16';
  /** MLP width (default 4·nEmbd, written as n_inner null). */
  readonly nInner?: number;
  /** embd_pdrop, attn_pdrop and resid_pdrop (default 0.1, as GPT2Config). */
  readonly dropout?: number;
  readonly bosTokenId?: number;
  readonly eosTokenId?: number;
  readonly padTokenId?: number;
}

const INIT_STD = 0.02;

interface Plan {
  readonly name: string;
  readonly shape: readonly number[];
  /** 'normal' with std, 'zeros' or 'ones'. */
  readonly init: { readonly kind: 'normal'; readonly std: number } | { readonly kind: 'zeros' | 'ones' };
}

function checkSpec(spec: TinyGpt2Spec): void {
  for (const key of ['vocabSize', 'nEmbd', 'nLayer', 'nHead', 'nPositions'] as const) {
    const v = spec[key];
    if (!Number.isInteger(v) || v <= 0) throw new RangeError(`writeRandomGpt2Checkpoint: ${key} must be a positive integer, got ${v}`);
  }
  if (spec.nEmbd % spec.nHead !== 0) throw new RangeError(`writeRandomGpt2Checkpoint: nEmbd ${spec.nEmbd} is not divisible by nHead ${spec.nHead}`);
  if (spec.nInner !== undefined && (!Number.isInteger(spec.nInner) || spec.nInner <= 0)) {
    throw new RangeError(`writeRandomGpt2Checkpoint: nInner must be a positive integer, got ${spec.nInner}`);
  }
  const p = spec.dropout ?? 0.1;
  if (!(p >= 0 && p < 1)) throw new RangeError(`writeRandomGpt2Checkpoint: dropout must be in [0, 1), got ${p}`);
}

/** config.json as transformers' GPT2Config.save_pretrained writes it (the fields that matter). */
export function gpt2ConfigJson(spec: TinyGpt2Spec): Record<string, unknown> {
  const p = spec.dropout ?? 0.1;
  const torchDtype = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[spec.dtype ?? 'F32'];
  return {
    activation_function: 'gelu_new',
    architectures: ['GPT2LMHeadModel'],
    attn_pdrop: p,
    bos_token_id: spec.bosTokenId ?? spec.vocabSize - 1,
    embd_pdrop: p,
    eos_token_id: spec.eosTokenId ?? spec.vocabSize - 1,
    initializer_range: INIT_STD,
    layer_norm_epsilon: 1e-5,
    model_type: 'gpt2',
    n_ctx: spec.nPositions,
    n_embd: spec.nEmbd,
    n_head: spec.nHead,
    n_inner: spec.nInner ?? null,
    n_layer: spec.nLayer,
    n_positions: spec.nPositions,
    ...(spec.padTokenId !== undefined ? { pad_token_id: spec.padTokenId } : {}),
    reorder_and_upcast_attn: false,
    resid_pdrop: p,
    scale_attn_by_inverse_layer_idx: false,
    scale_attn_weights: true,
    summary_activation: null,
    summary_first_dropout: 0.1,
    summary_proj_to_labels: true,
    summary_type: 'cls_index',
    summary_use_proj: true,
    tie_word_embeddings: true,
    torch_dtype: torchDtype,
    use_cache: true,
    vocab_size: spec.vocabSize,
  };
}

function plans(spec: TinyGpt2Spec): Plan[] {
  const d = spec.nEmbd;
  const inner = spec.nInner ?? 4 * d;
  const normal = { kind: 'normal', std: INIT_STD } as const;
  const residual = { kind: 'normal', std: INIT_STD / Math.sqrt(2 * spec.nLayer) } as const;
  const zeros = { kind: 'zeros' } as const;
  const ones = { kind: 'ones' } as const;
  const out: Plan[] = [
    { name: 'wte.weight', shape: [spec.vocabSize, d], init: normal },
    { name: 'wpe.weight', shape: [spec.nPositions, d], init: normal },
  ];
  for (let l = 0; l < spec.nLayer; l++) {
    const p = `h.${l}`;
    out.push(
      { name: `${p}.ln_1.weight`, shape: [d], init: ones },
      { name: `${p}.ln_1.bias`, shape: [d], init: zeros },
      { name: `${p}.attn.c_attn.weight`, shape: [d, 3 * d], init: normal },
      { name: `${p}.attn.c_attn.bias`, shape: [3 * d], init: zeros },
      { name: `${p}.attn.c_proj.weight`, shape: [d, d], init: residual },
      { name: `${p}.attn.c_proj.bias`, shape: [d], init: zeros },
      { name: `${p}.ln_2.weight`, shape: [d], init: ones },
      { name: `${p}.ln_2.bias`, shape: [d], init: zeros },
      { name: `${p}.mlp.c_fc.weight`, shape: [d, inner], init: normal },
      { name: `${p}.mlp.c_fc.bias`, shape: [inner], init: zeros },
      { name: `${p}.mlp.c_proj.weight`, shape: [inner, d], init: residual },
      { name: `${p}.mlp.c_proj.bias`, shape: [d], init: zeros },
    );
  }
  out.push({ name: 'ln_f.weight', shape: [d], init: ones }, { name: 'ln_f.bias', shape: [d], init: zeros });
  return out;
}

/**
 * Writes `config.json` and `model.safetensors` of a randomly initialised GPT-2 into `dir`
 * (created if needed), one tensor at a time. Deterministic in the spec (same seed, same bytes).
 * Returns the config written.
 */
export async function writeRandomGpt2Checkpoint(dir: string, spec: TinyGpt2Spec): Promise<Record<string, unknown>> {
  checkSpec(spec);
  await mkdir(dir, { recursive: true });
  const rng = createRng(spec.seed);
  const list = plans(spec);
  const dtype = spec.dtype ?? 'F32';
  const writer = await createSafetensorsWriter(join(dir, SAFETENSORS_FILE), list.map((p) => ({ name: p.name, dtype, shape: p.shape })), { format: 'pt' });
  try {
    for (const p of list) {
      const data = new Float32Array(p.shape.reduce((a, b) => a * b, 1));
      if (p.init.kind === 'normal') fillGaussian(data, rng, p.init.std);
      else if (p.init.kind === 'ones') data.fill(1);
      await writer.writeTensor(p.name, data);
    }
  } catch (err) {
    await writer.abort();
    throw err;
  }
  await writer.close();
  const config = gpt2ConfigJson(spec);
  await writeFileAtomic(join(dir, CONFIG_FILE), `${JSON.stringify(config, null, 2)}\n`);
  return config;
}
