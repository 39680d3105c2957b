/**
 * Synthetic Hugging Face checkpoints and PEFT adapters with real key names and layouts, for tests,
 * the aggregation demo and benchmarks (no download needed). GPT-2 weights are Conv1D (in × out,
 * fused c_attn), Llama weights are Linear (out × in, grouped-query k/v), BERT/RoBERTa weights are
 * Linear under the `bert.` / `roberta.` prefix. Values are seeded random.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createRng, fillGaussian, kaimingUniform, randomMatrix } from '../../core/random.js';
import type { Rng } from '../../core/random.js';
import type { Matrix } from '../../core/tensor.js';
import { createSafetensorsWriter } from '../../formats/safetensorsWriter.js';
import { writePeftAdapter } from '../../formats/peft.js';

export type SyntheticFamily = 'gpt2' | 'llama' | 'bert';

export interface SyntheticModelSpec {
  readonly family: SyntheticFamily;
  readonly layers: number;
  readonly hidden: number;
  readonly heads: number;
  /** Llama: key/value heads (defaults to heads). */
  readonly kvHeads?: number;
  /** MLP width (GPT-2: n_inner, default 4·hidden). */
  readonly intermediate?: number;
  readonly vocab: number;
  readonly positions?: number;
  /** Storage dtype of float tensors. */
  readonly dtype?: 'F32' | 'F16' | 'BF16';
  readonly seed?: number;
  /** Keep only the weights of these module names (e.g. ['q_proj', 'v_proj']): for big benchmark files. */
  readonly onlyModules?: readonly string[];
  /** BERT family: `bert` (default) or `roberta` (keys under `roberta.`, positions offset by pad_token_id + 1). */
  readonly modelType?: 'bert' | 'roberta';
  /** BERT family: labels of the classification config (default 2). */
  readonly numLabels?: number;
  /** BERT family: also write the sequence-classification head (`classifier.*`); default false, like a base checkpoint. */
  readonly classifierHead?: boolean;
}

interface TensorPlan {
  name: string;
  shape: number[];
  std: number;
  /** Norm weights start at one. */
  ones?: boolean;
}

/** Module path, weight shape as stored, and (in, out) of every linear-like module per layer. */
export interface SyntheticModule {
  readonly path: string;
  readonly name: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
}

function mlpWidth(spec: SyntheticModelSpec): number {
  return spec.intermediate ?? (spec.family === 'llama' ? Math.round((8 * spec.hidden) / 3) : 4 * spec.hidden);
}

/** BERT family: the encoder's key prefix. */
function bertPrefix(spec: SyntheticModelSpec): 'bert' | 'roberta' {
  return spec.modelType ?? 'bert';
}

/** BERT family: rows of the position table (RoBERTa's positions start at pad_token_id + 1 = 2). */
function bertPositionRows(spec: SyntheticModelSpec): number {
  return (spec.positions ?? 64) + (bertPrefix(spec) === 'roberta' ? 2 : 0);
}

/** The adaptable modules of one layer, with their PEFT module paths. */
export function syntheticModules(spec: SyntheticModelSpec): SyntheticModule[] {
  const d = spec.hidden;
  const ff = mlpWidth(spec);
  const out: SyntheticModule[] = [];
  for (let l = 0; l < spec.layers; l++) {
    if (spec.family === 'gpt2') {
      const p = `transformer.h.${l}`;
      out.push({ path: `${p}.attn.c_attn`, name: 'c_attn', inFeatures: d, outFeatures: 3 * d });
      out.push({ path: `${p}.attn.c_proj`, name: 'c_proj', inFeatures: d, outFeatures: d });
      out.push({ path: `${p}.mlp.c_fc`, name: 'c_fc', inFeatures: d, outFeatures: ff });
      out.push({ path: `${p}.mlp.c_proj`, name: 'c_proj', inFeatures: ff, outFeatures: d });
    } else if (spec.family === 'bert') {
      const p = `${bertPrefix(spec)}.encoder.layer.${l}`;
      for (const m of ['query', 'key', 'value']) out.push({ path: `${p}.attention.self.${m}`, name: m, inFeatures: d, outFeatures: d });
      out.push({ path: `${p}.attention.output.dense`, name: 'dense', inFeatures: d, outFeatures: d });
      out.push({ path: `${p}.intermediate.dense`, name: 'dense', inFeatures: d, outFeatures: ff });
      out.push({ path: `${p}.output.dense`, name: 'dense', inFeatures: ff, outFeatures: d });
    } else {
      const hd = d / spec.heads;
      const kv = (spec.kvHeads ?? spec.heads) * hd;
      const p = `model.layers.${l}`;
      out.push({ path: `${p}.self_attn.q_proj`, name: 'q_proj', inFeatures: d, outFeatures: d });
      out.push({ path: `${p}.self_attn.k_proj`, name: 'k_proj', inFeatures: d, outFeatures: kv });
      out.push({ path: `${p}.self_attn.v_proj`, name: 'v_proj', inFeatures: d, outFeatures: kv });
      out.push({ path: `${p}.self_attn.o_proj`, name: 'o_proj', inFeatures: d, outFeatures: d });
      out.push({ path: `${p}.mlp.gate_proj`, name: 'gate_proj', inFeatures: d, outFeatures: ff });
      out.push({ path: `${p}.mlp.up_proj`, name: 'up_proj', inFeatures: d, outFeatures: ff });
      out.push({ path: `${p}.mlp.down_proj`, name: 'down_proj', inFeatures: ff, outFeatures: d });
    }
  }
  return out;
}

function planTensors(spec: SyntheticModelSpec): TensorPlan[] {
  const d = spec.hidden;
  const std = 0.02;
  const plans: TensorPlan[] = [];
  const keep = (name: string): boolean => spec.onlyModules === undefined || spec.onlyModules.includes(name);
  if (spec.family === 'gpt2') {
    if (spec.onlyModules === undefined) {
      plans.push({ name: 'transformer.wte.weight', shape: [spec.vocab, d], std }, { name: 'transformer.wpe.weight', shape: [spec.positions ?? 64, d], std: 0.01 });
    }
    const mods = syntheticModules(spec);
    for (let l = 0; l < spec.layers; l++) {
      const p = `transformer.h.${l}`;
      if (spec.onlyModules === undefined) plans.push({ name: `${p}.ln_1.weight`, shape: [d], std: 0, ones: true }, { name: `${p}.ln_1.bias`, shape: [d], std: 0 });
      for (const m of mods.filter((x) => x.path.startsWith(`${p}.`))) {
        if (!keep(m.name)) continue;
        // Conv1D stores in × out.
        plans.push({ name: `${m.path}.weight`, shape: [m.inFeatures, m.outFeatures], std });
        if (spec.onlyModules === undefined) plans.push({ name: `${m.path}.bias`, shape: [m.outFeatures], std: 0 });
        if (m.name === 'c_proj' && m.path.includes('.attn.') && spec.onlyModules === undefined) plans.push({ name: `${p}.ln_2.weight`, shape: [d], std: 0, ones: true }, { name: `${p}.ln_2.bias`, shape: [d], std: 0 });
      }
    }
    if (spec.onlyModules === undefined) plans.push({ name: 'transformer.ln_f.weight', shape: [d], std: 0, ones: true }, { name: 'transformer.ln_f.bias', shape: [d], std: 0 });
  } else if (spec.family === 'bert') {
    planBertTensors(spec, plans, keep);
  } else {
    if (spec.onlyModules === undefined) plans.push({ name: 'model.embed_tokens.weight', shape: [spec.vocab, d], std });
    const mods = syntheticModules(spec);
    for (let l = 0; l < spec.layers; l++) {
      const p = `model.layers.${l}`;
      if (spec.onlyModules === undefined) plans.push({ name: `${p}.input_layernorm.weight`, shape: [d], std: 0, ones: true }, { name: `${p}.post_attention_layernorm.weight`, shape: [d], std: 0, ones: true });
      for (const m of mods.filter((x) => x.path.startsWith(`${p}.`))) {
        // Linear stores out × in.
        if (keep(m.name)) plans.push({ name: `${m.path}.weight`, shape: [m.outFeatures, m.inFeatures], std });
      }
    }
    if (spec.onlyModules === undefined) plans.push({ name: 'model.norm.weight', shape: [d], std: 0, ones: true }, { name: 'lm_head.weight', shape: [spec.vocab, d], std });
  }
  return plans;
}

/** BERT/RoBERTa state dict: embeddings, post-norm encoder layers (Linear out × in, biases), BERT's pooler, the optional head. */
function planBertTensors(spec: SyntheticModelSpec, plans: TensorPlan[], keep: (name: string) => boolean): void {
  const d = spec.hidden;
  const std = 0.02;
  const all = spec.onlyModules === undefined;
  const prefix = bertPrefix(spec);
  const norm = (key: string): void => {
    if (all) plans.push({ name: `${key}.weight`, shape: [d], std: 0, ones: true }, { name: `${key}.bias`, shape: [d], std: 0 });
  };
  const dense = (key: string, outF: number, inF: number): void => {
    plans.push({ name: `${key}.weight`, shape: [outF, inF], std });
    if (all) plans.push({ name: `${key}.bias`, shape: [outF], std: 0 });
  };
  if (all) {
    plans.push(
      { name: `${prefix}.embeddings.word_embeddings.weight`, shape: [spec.vocab, d], std },
      { name: `${prefix}.embeddings.position_embeddings.weight`, shape: [bertPositionRows(spec), d], std },
      { name: `${prefix}.embeddings.token_type_embeddings.weight`, shape: [prefix === 'roberta' ? 1 : 2, d], std },
    );
  }
  norm(`${prefix}.embeddings.LayerNorm`);
  const mods = syntheticModules(spec);
  for (let l = 0; l < spec.layers; l++) {
    const p = `${prefix}.encoder.layer.${l}`;
    for (const m of mods.filter((x) => x.path.startsWith(`${p}.`))) {
      if (keep(m.name)) dense(m.path, m.outFeatures, m.inFeatures);
      if (m.path.endsWith('.attention.output.dense')) norm(`${p}.attention.output.LayerNorm`);
    }
    norm(`${p}.output.LayerNorm`);
  }
  if (!all) return;
  if (prefix === 'bert') dense('bert.pooler.dense', d, d);
  if (spec.classifierHead === true) {
    const labels = spec.numLabels ?? 2;
    if (prefix === 'bert') dense('classifier', labels, d);
    else {
      dense('classifier.dense', d, d);
      dense('classifier.out_proj', labels, d);
    }
  }
}

function bertConfigJson(spec: SyntheticModelSpec, torchDtype: string): Record<string, unknown> {
  const roberta = bertPrefix(spec) === 'roberta';
  const labels = spec.numLabels ?? 2;
  const id2label = Object.fromEntries(Array.from({ length: labels }, (_, i) => [String(i), `LABEL_${i}`]));
  return {
    model_type: bertPrefix(spec),
    architectures: [roberta ? 'RobertaForSequenceClassification' : 'BertForSequenceClassification'],
    hidden_size: spec.hidden,
    num_hidden_layers: spec.layers,
    num_attention_heads: spec.heads,
    intermediate_size: mlpWidth(spec),
    vocab_size: spec.vocab,
    max_position_embeddings: bertPositionRows(spec),
    type_vocab_size: roberta ? 1 : 2,
    layer_norm_eps: roberta ? 1e-5 : 1e-12,
    hidden_act: 'gelu',
    hidden_dropout_prob: 0.1,
    attention_probs_dropout_prob: 0.1,
    initializer_range: 0.02,
    pad_token_id: roberta ? 1 : 0,
    position_embedding_type: 'absolute',
    id2label,
    label2id: Object.fromEntries(Object.entries(id2label).map(([k, v]) => [v, Number(k)])),
    torch_dtype: torchDtype,
  };
}

function configJson(spec: SyntheticModelSpec): Record<string, unknown> {
  const torchDtype = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[spec.dtype ?? 'F32'];
  if (spec.family === 'bert') return bertConfigJson(spec, torchDtype);
  if (spec.family === 'gpt2') {
    return {
      model_type: 'gpt2',
      architectures: ['GPT2LMHeadModel'],
      n_embd: spec.hidden,
      n_layer: spec.layers,
      n_head: spec.heads,
      n_inner: spec.intermediate ?? null,
      vocab_size: spec.vocab,
      n_positions: spec.positions ?? 64,
      n_ctx: spec.positions ?? 64,
      layer_norm_epsilon: 1e-5,
      activation_function: 'gelu_new',
      tie_word_embeddings: true,
      torch_dtype: torchDtype,
    };
  }
  return {
    model_type: 'llama',
    architectures: ['LlamaForCausalLM'],
    hidden_size: spec.hidden,
    num_hidden_layers: spec.layers,
    num_attention_heads: spec.heads,
    num_key_value_heads: spec.kvHeads ?? spec.heads,
    intermediate_size: mlpWidth(spec),
    vocab_size: spec.vocab,
    max_position_embeddings: spec.positions ?? 64,
    rms_norm_eps: 1e-6,
    hidden_act: 'silu',
    rope_theta: 10000,
    tie_word_embeddings: false,
    torch_dtype: torchDtype,
  };
}

/** Fills a large tensor quickly: a seeded Gaussian block tiled with a per-tensor sign pattern. */
function fillTensor(n: number, std: number, rng: Rng, block: Float32Array): Float32Array {
  const out = new Float32Array(n);
  if (std === 0) return out;
  if (n <= block.length) return fillGaussian(out, rng, std);
  const offset = Math.floor(rng.next() * block.length);
  const sign = rng.next() < 0.5 ? -1 : 1;
  for (let i = 0; i < n; i++) out[i] = sign * std * block[(i + offset) % block.length];
  return out;
}

/**
 * Writes `config.json` and `model.safetensors` of a synthetic model into `dir` (created). Streams
 * one tensor at a time, so benchmark-sized models need memory for one tensor only.
 */
export async function writeSyntheticCheckpoint(dir: string, spec: SyntheticModelSpec): Promise<{ file: string; tensors: number }> {
  if (spec.family !== 'gpt2' && spec.hidden % spec.heads !== 0) throw new RangeError(`synthetic ${spec.family}: hidden ${spec.hidden} is not divisible by heads ${spec.heads}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), `${JSON.stringify(configJson(spec), null, 2)}\n`);
  const plans = planTensors(spec);
  const file = join(dir, 'model.safetensors');
  const dtype = spec.dtype ?? 'F32';
  const writer = await createSafetensorsWriter(file, plans.map((p) => ({ name: p.name, dtype, shape: p.shape })), { format: 'pt' });
  const rng = createRng(spec.seed ?? 1);
  const block = fillGaussian(new Float32Array(1 << 20), rng, 1);
  try {
    for (const p of plans) {
      const n = p.shape.reduce((a, b) => a * b, 1);
      await writer.writeTensor(p.name, p.ones === true ? new Float32Array(n).fill(1) : fillTensor(n, p.std, rng, block));
    }
    await writer.close();
  } catch (err) {
    await writer.abort();
    throw err;
  }
  return { file, tensors: plans.length };
}

export interface SyntheticAdapterOptions {
  readonly clients: number;
  readonly rank: number;
  readonly alpha: number;
  /** Module names to adapt (e.g. ['c_attn'] or ['q_proj', 'v_proj']). */
  readonly targetModules: readonly string[];
  readonly seed?: number;
  readonly useRslora?: boolean;
  /** All clients share A (as FFA-LoRA clients do); B still differs. */
  readonly sharedA?: boolean;
  /** Standard deviation of B's entries (trained B is small but non-zero). */
  readonly bStd?: number;
  /**
   * Clients start from one shared A and drift from it by this relative amount (as after a round of
   * local training from a common global adapter). Absent: every client draws its own A.
   */
  readonly aDrift?: number;
}

/**
 * Writes one PEFT adapter folder per client (`<dir>/client-<i>`) for a synthetic model: A from
 * PEFT's Kaiming-uniform initialisation, B small Gaussian, as after a little training.
 */
export async function writeSyntheticAdapters(dir: string, spec: SyntheticModelSpec, options: SyntheticAdapterOptions): Promise<string[]> {
  const modules = syntheticModules(spec).filter((m) => options.targetModules.includes(m.name));
  if (modules.length === 0) throw new RangeError(`synthetic adapters: no ${spec.family} module is named ${options.targetModules.join(', ')}`);
  const rng = createRng(options.seed ?? 7);
  const sharedA = new Map<string, Matrix<Float32Array>>();
  const dirs: string[] = [];
  for (let c = 0; c < options.clients; c++) {
    const folder = join(dir, `client-${c}`);
    const factors = modules.map((m) => {
      let a = sharedA.get(m.path);
      if (a === undefined || (options.sharedA !== true && options.aDrift === undefined)) {
        a = kaimingUniform(options.rank, m.inFeatures, rng);
        sharedA.set(m.path, a);
      } else if (options.aDrift !== undefined && options.sharedA !== true) {
        const base = a;
        const bound = 1 / Math.sqrt(m.inFeatures);
        a = { shape: base.shape, data: base.data.map((x) => x + options.aDrift! * bound * rng.gaussian()) };
      }
      return { modulePath: m.path, A: a, B: randomMatrix(m.outFeatures, options.rank, rng, options.bStd ?? 0.01) };
    });
    await writePeftAdapter(folder, {
      config: {
        r: options.rank,
        loraAlpha: options.alpha,
        useRslora: options.useRslora ?? false,
        fanInFanOut: spec.family === 'gpt2',
        targetModules: [...options.targetModules],
        taskType: spec.family === 'bert' ? 'SEQ_CLS' : 'CAUSAL_LM',
        baseModelNameOrPath: `synthetic-${spec.family}`,
      },
      modules: factors,
    });
    dirs.push(folder);
  }
  return dirs;
}
