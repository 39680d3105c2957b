import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { matrix } from '../helpers/matrix.js';
import type { Matrix } from '../../src/core/tensor.js';
import { FormatError } from '../../src/formats/errors.js';
import type { FormatErrorCode } from '../../src/formats/errors.js';
import { float64ToBfloat16 } from '../../src/formats/halfFloat.js';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, createPeftAdapterWriter, readPeftAdapter, writePeftAdapter } from '../../src/formats/peft.js';
import { openPeftAdapterIndex } from '../../src/formats/peftIndex.js';
import { openSafetensors } from '../../src/formats/safetensors.js';
import { writeSafetensors } from '../../src/formats/safetensorsWriter.js';
import type { TensorToWrite } from '../../src/formats/safetensorsWriter.js';
import { bfloat16Value } from './halfFloatReference.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fedex-peft-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function filled(rows: number, cols: number, seed: number): Matrix<Float32Array> {
  const data = new Float32Array(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(seed * 7.31 + i * 1.37) * 0.5;
  return matrix(data, rows, cols);
}

/** Writes a folder by hand the way PEFT saves one: config JSON and base_model.model.… keys. */
async function handMadeAdapter(name: string, config: Record<string, unknown>, tensors: Record<string, TensorToWrite>): Promise<string> {
  const folder = join(dir, name);
  await mkdir(folder, { recursive: true });
  await writeFile(join(folder, ADAPTER_CONFIG_FILE), JSON.stringify(config, null, 2));
  await writeSafetensors(join(folder, ADAPTER_WEIGHTS_FILE), tensors, { format: 'pt' });
  return folder;
}

const f32 = (m: Matrix<Float32Array>): TensorToWrite => ({ dtype: 'F32', shape: m.shape, data: m.data });
const GPT2_CONFIG = { peft_type: 'LORA', r: 4, lora_alpha: 8, target_modules: ['c_attn'], fan_in_fan_out: true, bias: 'none', task_type: 'CAUSAL_LM' };

describe('PEFT adapter folders: round trip', () => {
  test('GPT-2 and Llama style modules, mixed ranks and alphas, F32: exact, with rank/alpha patterns derived', async () => {
    // prepare: non-square factors; one module with a different rank, one with a different alpha
    const folder = join(dir, 'roundtrip');
    const modules = [
      { modulePath: 'transformer.h.0.attn.c_attn', A: filled(4, 8, 1), B: filled(24, 4, 2) },
      { modulePath: 'transformer.h.1.attn.c_attn', A: filled(2, 8, 3), B: filled(24, 2, 4) },
      { modulePath: 'transformer.h.11.attn.c_attn', A: filled(4, 8, 5), B: filled(24, 4, 6), alpha: 32 },
    ];
    // act
    const written = await writePeftAdapter(folder, { config: { loraAlpha: 8, fanInFanOut: true, taskType: 'CAUSAL_LM', baseModelNameOrPath: 'gpt2' }, modules });
    const back = await readPeftAdapter(folder);
    // assert
    assert.deepEqual((await readdir(folder)).sort(), [ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE]);
    assert.equal(written.r, 4);
    assert.deepEqual(written.targetModules, ['c_attn']);
    assert.deepEqual(written.rankPattern, { 'h.1.attn.c_attn': 2 });
    assert.deepEqual(written.alphaPattern, { 'h.11.attn.c_attn': 32 });
    assert.deepEqual(back.modules.map((m) => [m.modulePath, m.rank, m.alpha, m.scaling]), [
      ['transformer.h.0.attn.c_attn', 4, 8, 2],
      ['transformer.h.1.attn.c_attn', 2, 8, 4],
      ['transformer.h.11.attn.c_attn', 4, 32, 8],
    ]);
    back.modules.forEach((m, i) => {
      assert.deepEqual(m.A.shape, modules[i].A.shape);
      assert.deepEqual(m.A.data, modules[i].A.data);
      assert.deepEqual(m.B.data, modules[i].B.data);
    });
    assert.equal(back.config.fanInFanOut, true);
    assert.equal(back.dtype, 'F32');
  });

  test('the weights file holds exactly the PEFT keys and shapes, with format=pt metadata', async () => {
    const folder = join(dir, 'keys');
    await writePeftAdapter(folder, {
      config: { loraAlpha: 16, taskType: 'CAUSAL_LM' },
      modules: [{ modulePath: 'model.layers.0.self_attn.q_proj', A: filled(8, 16, 1), B: filled(32, 8, 2) }],
    });
    const r = await openSafetensors(join(folder, ADAPTER_WEIGHTS_FILE));
    const entries = [...r.tensors.values()].map((t) => [t.name, t.dtype, t.shape]);
    const metadata = r.metadata;
    await r.close();
    assert.deepEqual(entries, [
      ['base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight', 'F32', [8, 16]],
      ['base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight', 'F32', [32, 8]],
    ]);
    assert.deepEqual(metadata, { format: 'pt' });
    const config = JSON.parse(await readFile(join(folder, ADAPTER_CONFIG_FILE), 'utf8')) as Record<string, unknown>;
    assert.equal(config.peft_type, 'LORA');
    assert.equal(config.r, 8);
    assert.deepEqual(config.target_modules, ['q_proj']);
    assert.deepEqual(config.rank_pattern, {});
  });

  test('exactTargets writes full module paths, so an adapter covering some layers targets only those', async () => {
    const folder = join(dir, 'exact');
    const written = await writePeftAdapter(folder, { config: { loraAlpha: 8 },
      modules: [
        { modulePath: 'model.layers.1.self_attn.q_proj', A: filled(2, 4, 1), B: filled(4, 2, 2) },
        { modulePath: 'model.layers.0.self_attn.q_proj', A: filled(2, 4, 3), B: filled(4, 2, 4) },
      ] }, { exactTargets: true });
    const back = await readPeftAdapter(folder);
    assert.deepEqual(written.targetModules, ['model.layers.1.self_attn.q_proj', 'model.layers.0.self_attn.q_proj']);
    assert.deepEqual(back.config.targetModules, written.targetModules);
    assert.deepEqual(back.modules.map((m) => m.modulePath), ['model.layers.1.self_attn.q_proj', 'model.layers.0.self_attn.q_proj']);
  });

  test('BF16 storage rounds each value to nearest even bf16', async () => {
    const folder = join(dir, 'bf16');
    const A = filled(2, 3, 9);
    const B = filled(5, 2, 10);
    await writePeftAdapter(folder, { config: { loraAlpha: 4 }, modules: [{ modulePath: 'q_proj', A, B }] }, { dtype: 'BF16' });
    const back = await readPeftAdapter(folder);
    const expected = Float32Array.from(float64ToBfloat16(A.data), bfloat16Value);
    assert.equal(back.dtype, 'BF16');
    assert.deepEqual(back.modules[0].A.data, expected);
  });

  test('extra tensors of modules_to_save are written under base_model.model. and read back', async () => {
    const folder = join(dir, 'seqcls');
    const head = { shape: [2, 8], data: new Float32Array(16).map((_, i) => i / 10) };
    await writePeftAdapter(folder, {
      config: { loraAlpha: 16, taskType: 'SEQ_CLS', modulesToSave: ['classifier'] },
      modules: [{ modulePath: 'roberta.encoder.layer.0.attention.self.query', A: filled(4, 8, 1), B: filled(8, 4, 2) }],
      extraTensors: new Map([['classifier.out_proj.weight', head]]),
    });
    const back = await readPeftAdapter(folder);
    assert.deepEqual([...back.extraTensors.keys()], ['classifier.out_proj.weight']);
    assert.deepEqual(back.extraTensors.get('classifier.out_proj.weight')?.data, head.data);
    await assert.rejects(writePeftAdapter(join(dir, 'seqcls2'), {
      config: { loraAlpha: 16 },
      modules: [{ modulePath: 'query', A: filled(4, 8, 1), B: filled(8, 4, 2) }],
      extraTensors: new Map([['classifier.weight', head]]),
    }), (e: unknown) => e instanceof FormatError && e.code === 'PEFT_TARGET_MISMATCH');
  });
});

describe('PEFT adapter folders: reading what PEFT writes', () => {
  test('a PEFT-style folder with rsLoRA: scaling alpha/√r; extra config fields kept', async () => {
    const A = filled(16, 8, 1);
    const B = filled(8, 16, 2);
    const folder = await handMadeAdapter('rslora', { ...GPT2_CONFIG, r: 16, lora_alpha: 32, use_rslora: true, use_dora: false, loftq_config: {} }, { 'base_model.model.transformer.h.0.attn.c_attn.lora_A.weight': f32(A),
      'base_model.model.transformer.h.0.attn.c_attn.lora_B.weight': f32(B) });
    const adapter = await readPeftAdapter(folder);
    assert.equal(adapter.modules[0].scaling, 8);
    assert.equal(adapter.modules[0].alpha, 32);
    assert.deepEqual(adapter.config.extra, { use_dora: false, loftq_config: {} });
    assert.deepEqual(adapter.modules[0].B.data, B.data);
  });

  const A = filled(4, 8, 1);
  const B = filled(24, 4, 2);
  const key = (f: 'A' | 'B', path = 'transformer.h.0.attn.c_attn'): string => `base_model.model.${path}.lora_${f}.weight`;
  const bad: { name: string; config?: Record<string, unknown>; tensors: Record<string, TensorToWrite>; code: FormatErrorCode; tensor?: string }[] = [
    { name: 'missing-b', tensors: { [key('A')]: f32(A) }, code: 'PEFT_MISSING_TENSOR', tensor: key('A') },
    { name: 'rank-ab', tensors: { [key('A')]: f32(A), [key('B')]: f32(filled(24, 3, 2)) }, code: 'PEFT_RANK_MISMATCH', tensor: key('B') },
    { name: 'rank-config', config: { ...GPT2_CONFIG, r: 8 }, tensors: { [key('A')]: f32(A), [key('B')]: f32(B) }, code: 'PEFT_RANK_MISMATCH', tensor: key('A') },
    { name: 'nan', tensors: { [key('A')]: f32(A), [key('B')]: { dtype: 'F32', shape: [24, 4], data: B.data.map((x, i) => (i === 5 ? NaN : x)) } }, code: 'PEFT_NON_FINITE', tensor: key('B') },
    { name: 'inf', tensors: { [key('A')]: { dtype: 'F16', shape: [4, 8], data: A.data.map((x, i) => (i === 0 ? 1e6 : x)) }, [key('B')]: f32(B) }, code: 'PEFT_NON_FINITE', tensor: key('A') },
    { name: 'dims', tensors: { [key('A')]: { dtype: 'F32', shape: [32], data: A.data }, [key('B')]: f32(B) }, code: 'PEFT_SHAPE_MISMATCH', tensor: key('A') },
    { name: 'target', tensors: { [key('A', 'transformer.h.0.mlp.c_fc')]: f32(A), [key('B', 'transformer.h.0.mlp.c_fc')]: f32(B) }, code: 'PEFT_TARGET_MISMATCH' },
    {
      name: 'embedding',
      tensors: { [key('A')]: f32(A), [key('B')]: f32(B), 'base_model.model.transformer.wte.lora_embedding_A': f32(A) },
      code: 'PEFT_UNSUPPORTED',
      tensor: 'base_model.model.transformer.wte.lora_embedding_A',
    },
  ];
  for (const c of bad) {
    test(`${c.name} → ${c.code}, naming the file and tensor`, async () => {
      const folder = await handMadeAdapter(`bad-${c.name}`, c.config ?? GPT2_CONFIG, c.tensors);
      await assert.rejects(readPeftAdapter(folder), (e: unknown) => {
        assert.ok(e instanceof FormatError, String(e));
        assert.equal(e.code, c.code, e.message);
        assert.ok(e.message.includes(join(folder, ADAPTER_WEIGHTS_FILE)), e.message);
        if (c.tensor !== undefined) assert.equal(e.tensor, c.tensor, e.message);
        return true;
      });
    });
  }

  test('a folder without adapter_config.json is FILE_NOT_FOUND naming it', async () => {
    const folder = join(dir, 'no-config');
    await mkdir(folder, { recursive: true });
    await assert.rejects(readPeftAdapter(folder), (e: unknown) => e instanceof FormatError && e.code === 'FILE_NOT_FOUND' && e.message.includes(join(folder, ADAPTER_CONFIG_FILE)));
  });

  test('a folder with only adapter_model.bin says safetensors is needed', async () => {
    const folder = join(dir, 'pickle');
    await mkdir(folder, { recursive: true });
    await writeFile(join(folder, ADAPTER_CONFIG_FILE), JSON.stringify(GPT2_CONFIG));
    await writeFile(join(folder, 'adapter_model.bin'), 'not read');
    await assert.rejects(readPeftAdapter(folder), (e: unknown) => e instanceof FormatError && e.code === 'PEFT_UNSUPPORTED' && e.message.includes('safe_serialization'));
  });
});

describe('PEFT adapter folders: writing refuses what PEFT could not load', () => {
  const A = filled(4, 8, 1);
  const B = filled(24, 4, 2);
  const refuse = async (name: string, input: Parameters<typeof writePeftAdapter>[1], code: FormatErrorCode): Promise<void> => {
    const folder = join(dir, `wbad-${name}`);
    await assert.rejects(writePeftAdapter(folder, input), (e: unknown) => e instanceof FormatError && e.code === code && e.message.includes(folder));
    await assert.rejects(readdir(folder), 'nothing was written');
  };

  test('rank mismatch between A and B', () => refuse('rank', { config: { loraAlpha: 8 }, modules: [{ modulePath: 'q', A, B: filled(24, 3, 2) }] }, 'PEFT_RANK_MISMATCH'));
  test('non-finite values', () => refuse('nan', { config: { loraAlpha: 8 }, modules: [{ modulePath: 'q', A: matrix(A.data.map(() => NaN), 4, 8), B }] }, 'PEFT_NON_FINITE'));
  test('a module target_modules does not match', () => refuse('target', { config: { loraAlpha: 8, targetModules: ['v_proj'] }, modules: [{ modulePath: 'm.q_proj', A, B }] }, 'PEFT_TARGET_MISMATCH'));
  test('a rank that contradicts a given rank_pattern', () => refuse('pattern', { config: { loraAlpha: 8, r: 4, rankPattern: { q_proj: 2 } }, modules: [{ modulePath: 'm.q_proj', A, B }] }, 'PEFT_RANK_MISMATCH'));
  test('duplicate modules', () => refuse('dup', { config: { loraAlpha: 8 }, modules: [{ modulePath: 'q', A, B }, { modulePath: 'q', A, B }] }, 'PEFT_CONFIG_INVALID'));
});

describe('PEFT adapter folders: module by module', () => {
  const modules = [
    { modulePath: 'model.layers.0.self_attn.q_proj', A: filled(4, 8, 1), B: filled(12, 4, 2) },
    { modulePath: 'model.layers.0.self_attn.v_proj', A: filled(2, 8, 3), B: filled(6, 2, 4), alpha: 16 },
    { modulePath: 'model.layers.1.self_attn.q_proj', A: filled(4, 8, 5), B: filled(12, 4, 6) },
  ];
  const plan = modules.map((m) => ({ modulePath: m.modulePath, rank: m.A.shape[0], inFeatures: m.A.shape[1], outFeatures: m.B.shape[0], ...(m.alpha !== undefined ? { alpha: m.alpha } : {}) }));

  test('the index lists modules from the header; a NaN surfaces only when its module is read', async () => {
    // prepare: the last module's B holds a NaN
    const folder = join(dir, 'index-nan');
    await writePeftAdapter(folder, { config: { loraAlpha: 8 }, modules });
    const file = join(folder, ADAPTER_WEIGHTS_FILE);
    const bytes = await readFile(file);
    const r = await openSafetensors(file);
    const nanAt = r.info('base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight').byteOffset + 4 * 3;
    await r.close();
    bytes.set(new Uint8Array(Float32Array.of(NaN).buffer), nanAt);
    await writeFile(file, bytes);
    // act
    const index = await openPeftAdapterIndex(folder);
    const first = await index.readModule('model.layers.0.self_attn.v_proj');
    // assert
    assert.deepEqual(index.modules.map((m) => [m.modulePath, m.rank, m.inFeatures, m.outFeatures, m.alpha, m.scaling]), [
      ['model.layers.0.self_attn.q_proj', 4, 8, 12, 8, 2],
      ['model.layers.0.self_attn.v_proj', 2, 8, 6, 16, 8],
      ['model.layers.1.self_attn.q_proj', 4, 8, 12, 8, 2],
    ]);
    assert.deepEqual(first.B.data, modules[1].B.data);
    await assert.rejects(index.readModule('model.layers.1.self_attn.q_proj'),
      (e: unknown) => e instanceof FormatError && e.code === 'PEFT_NON_FINITE' && e.tensor === 'base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight' && e.message.includes('flat index 3'));
    await assert.rejects(index.readModule('model.layers.2.self_attn.q_proj'), (e: unknown) => e instanceof FormatError && e.code === 'PEFT_MISSING_TENSOR');
    await index.close();
    await assert.rejects(readPeftAdapter(folder), (e: unknown) => e instanceof FormatError && e.code === 'PEFT_NON_FINITE', 'reading whole still refuses it');
    const lenient = await openPeftAdapterIndex(folder, { allowNonFinite: true });
    assert.ok(Number.isNaN((await lenient.readModule('model.layers.1.self_attn.q_proj')).B.data[3]));
    await lenient.close();
  });

  test('modules written one at a time, in any order, give the same bytes as writing them all at once', async () => {
    // prepare
    const whole = join(dir, 'stream-whole');
    const streamed = join(dir, 'stream-parts');
    await writePeftAdapter(whole, { config: { loraAlpha: 8, taskType: 'CAUSAL_LM' }, modules }, { dtype: 'BF16' });
    // act
    const writer = await createPeftAdapterWriter(streamed, { config: { loraAlpha: 8, taskType: 'CAUSAL_LM' }, modules: plan }, { dtype: 'BF16' });
    for (const m of [...modules].reverse()) await writer.writeModule(m);
    await writer.close();
    // assert
    for (const f of [ADAPTER_WEIGHTS_FILE, ADAPTER_CONFIG_FILE]) assert.ok((await readFile(join(streamed, f))).equals(await readFile(join(whole, f))), f);
    assert.deepEqual(writer.config.rankPattern, { v_proj: 2 });
  });

  test('a module that does not fit the plan, an unplanned one or a missing one is refused; nothing is left', async () => {
    const folder = join(dir, 'stream-bad');
    const writer = await createPeftAdapterWriter(folder, { config: { loraAlpha: 8 }, modules: plan });
    await assert.rejects(writer.writeModule({ ...modules[0], A: filled(4, 9, 1) }), (e: unknown) => e instanceof FormatError && e.code === 'PEFT_SHAPE_MISMATCH' && e.message.includes('planned [4, 8]'));
    await assert.rejects(writer.writeModule({ ...modules[0], modulePath: 'other.q_proj' }), (e: unknown) => e instanceof FormatError && e.message.includes('not among the 3 planned'));
    await assert.rejects(writer.writeModule({ ...modules[0], B: matrix(modules[0].B.data.map(() => Infinity), 12, 4) }), (e: unknown) => e instanceof FormatError && e.code === 'PEFT_NON_FINITE');
    await writer.writeModule(modules[0]);
    await assert.rejects(writer.close(), (e: unknown) => e instanceof FormatError && e.code === 'SAFETENSORS_WRITE_INCOMPLETE');
    assert.deepEqual(await readdir(folder), [], 'no weights file and no config');
  });
});
