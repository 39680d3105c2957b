// Synthetic GPT-2 (Conv1D, in × out) and Llama (Linear, out × in, grouped-query) checkpoints and
// client adapters: key names and stored shapes written out by hand here, config.json read back with
// readHfConfig, determinism by seed, and how clients' A relate (own, shared, drifted).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { syntheticModules, writeSyntheticAdapters, writeSyntheticCheckpoint } from '../../../src/model/checkpoints/synthetic.js';
import type { SyntheticModelSpec } from '../../../src/model/checkpoints/synthetic.js';
import { readHfConfig } from '../../../src/formats/hfConfig.js';
import { readPeftAdapter } from '../../../src/formats/peft.js';
import type { PeftAdapter } from '../../../src/formats/peft.js';
import { readTensors64, suiteFreshDirs } from './syntheticFixture.js';

const GPT2: SyntheticModelSpec = { family: 'gpt2', layers: 2, hidden: 16, heads: 2, vocab: 32, positions: 8, seed: 3 };
const LLAMA: SyntheticModelSpec = { family: 'llama', layers: 2, hidden: 32, heads: 4, kvHeads: 2, intermediate: 48, vocab: 40, seed: 4 };

const fresh = suiteFreshDirs('synthetic');

/** The expected GPT-2 state dict (d = 16, 4d MLP), written out by hand: Conv1D weights are in × out. */
function gpt2Expected(): Map<string, number[]> {
  const e = new Map<string, number[]>([['transformer.wte.weight', [32, 16]], ['transformer.wpe.weight', [8, 16]]]);
  for (const l of [0, 1]) {
    const p = `transformer.h.${l}`;
    for (const [k, s] of [
      ['ln_1.weight', [16]],
      ['ln_1.bias', [16]],
      ['attn.c_attn.weight', [16, 48]],
      ['attn.c_attn.bias', [48]],
      ['attn.c_proj.weight', [16, 16]],
      ['attn.c_proj.bias', [16]],
      ['ln_2.weight', [16]],
      ['ln_2.bias', [16]],
      ['mlp.c_fc.weight', [16, 64]],
      ['mlp.c_fc.bias', [64]],
      ['mlp.c_proj.weight', [64, 16]],
      ['mlp.c_proj.bias', [16]],
    ] as const) e.set(`${p}.${k}`, [...s]);
  }
  e.set('transformer.ln_f.weight', [16]).set('transformer.ln_f.bias', [16]);
  return e;
}

/** The expected Llama state dict (d = 32, 4 heads of 8, 2 kv heads, MLP 48): Linear weights are out × in. */
function llamaExpected(): Map<string, number[]> {
  const e = new Map<string, number[]>([['model.embed_tokens.weight', [40, 32]]]);
  for (const l of [0, 1]) {
    const p = `model.layers.${l}`;
    for (const [k, s] of [
      ['input_layernorm.weight', [32]],
      ['post_attention_layernorm.weight', [32]],
      ['self_attn.q_proj.weight', [32, 32]],
      ['self_attn.k_proj.weight', [16, 32]],
      ['self_attn.v_proj.weight', [16, 32]],
      ['self_attn.o_proj.weight', [32, 32]],
      ['mlp.gate_proj.weight', [48, 32]],
      ['mlp.up_proj.weight', [48, 32]],
      ['mlp.down_proj.weight', [32, 48]],
    ] as const) e.set(`${p}.${k}`, [...s]);
  }
  e.set('model.norm.weight', [32]).set('lm_head.weight', [40, 32]);
  return e;
}

describe('writeSyntheticCheckpoint', () => {
  test('GPT-2: real key names, Conv1D shapes (c_attn is [d, 3d]), F32, norms at one, biases at zero', async () => {
    const dir = fresh();
    const { file, tensors } = await writeSyntheticCheckpoint(dir, GPT2);
    const got = await readTensors64(file);
    const want = gpt2Expected();
    assert.equal(tensors, want.size);
    assert.deepEqual(new Map([...got].map(([k, v]) => [k, v.shape])), want);
    for (const [name, t] of got) {
      assert.equal(t.dtype, 'F32', name);
      if (/ln_.*\.weight$/.test(name)) assert.ok(t.data.every((x) => x === 1), `${name} is ones`);
      else if (name.endsWith('.bias')) assert.ok(t.data.every((x) => x === 0), `${name} is zeros`);
      else assert.ok(t.data.some((x) => x !== 0) && t.data.every((x) => Math.abs(x) < 0.2), `${name} is small random`);
    }
  });

  test('Llama: real key names, Linear shapes (k_proj is [kvHeads·headDim, d]), stored as BF16 when asked', async () => {
    const { file } = await writeSyntheticCheckpoint(fresh(), { ...LLAMA, dtype: 'BF16' });
    const got = await readTensors64(file);
    assert.deepEqual(new Map([...got].map(([k, v]) => [k, v.shape])), llamaExpected());
    for (const [name, t] of got) assert.equal(t.dtype, 'BF16', name);
  });

  test('config.json is readable by readHfConfig with the architecture numbers', async () => {
    const g = await readHfConfig(join((await writeSyntheticCheckpoint(fresh(), GPT2)).file, '..', 'config.json'));
    assert.deepEqual(
      [g.modelType, g.family, g.hiddenSize, g.numLayers, g.numHeads, g.numKvHeads, g.headDim, g.intermediateSize, g.vocabSize, g.maxPositions, g.torchDtype],
      ['gpt2', 'gpt2', 16, 2, 2, 2, 8, 64, 32, 8, 'float32'],
    );
    const l = await readHfConfig(join((await writeSyntheticCheckpoint(fresh(), { ...LLAMA, dtype: 'BF16' })).file, '..', 'config.json'));
    assert.deepEqual(
      [l.modelType, l.family, l.hiddenSize, l.numLayers, l.numHeads, l.numKvHeads, l.headDim, l.intermediateSize, l.vocabSize, l.torchDtype],
      ['llama', 'llama', 32, 2, 4, 2, 8, 48, 40, 'bfloat16'],
    );
  });

  test('deterministic by seed: same seed gives identical bytes, another seed different weights', async () => {
    const [a, b, c] = [fresh(), fresh(), fresh()];
    await writeSyntheticCheckpoint(a, LLAMA);
    await writeSyntheticCheckpoint(b, LLAMA);
    await writeSyntheticCheckpoint(c, { ...LLAMA, seed: 5 });
    const bytes = (d: string): Promise<Buffer> => readFile(join(d, 'model.safetensors'));
    assert.ok((await bytes(a)).equals(await bytes(b)));
    assert.ok(!(await bytes(a)).equals(await bytes(c)));
    assert.equal(await readFile(join(a, 'config.json'), 'utf8'), await readFile(join(b, 'config.json'), 'utf8'));
  });

  test('onlyModules keeps just those weights; bad specs are refused with a clear error', async () => {
    const got = await readTensors64((await writeSyntheticCheckpoint(fresh(), { ...LLAMA, onlyModules: ['q_proj'] })).file);
    assert.deepEqual([...got.keys()].sort(), ['model.layers.0.self_attn.q_proj.weight', 'model.layers.1.self_attn.q_proj.weight']);
    await assert.rejects(writeSyntheticCheckpoint(fresh(), { ...LLAMA, hidden: 30 }), /hidden 30 is not divisible by heads 4/);
    await assert.rejects(writeSyntheticAdapters(fresh(), GPT2, { clients: 1, rank: 2, alpha: 4, targetModules: ['q_proj'] }), /gpt2.*q_proj/);
  });
});

function frob(a: ArrayLike<number>, b?: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - (b?.[i] ?? 0)) ** 2;
  return Math.sqrt(s);
}

async function readAll(dirs: readonly string[]): Promise<PeftAdapter[]> {
  return Promise.all(dirs.map((d) => readPeftAdapter(d)));
}

describe('writeSyntheticAdapters', () => {
  test('GPT-2: one folder per client, PEFT keys, A is r × in and B out × r, fan_in_fan_out set', async () => {
    const dirs = await writeSyntheticAdapters(fresh(), GPT2, { clients: 2, rank: 4, alpha: 8, targetModules: ['c_attn', 'c_proj'] });
    assert.deepEqual(dirs.map((d) => d.slice(-9)), ['/client-0', '/client-1']);
    const [a] = await readAll(dirs);
    assert.equal(a.config.fanInFanOut, true);
    assert.equal(a.config.r, 4);
    assert.equal(a.config.loraAlpha, 8);
    const shapes = new Map(a.modules.map((m) => [m.modulePath, [m.A.shape, m.B.shape]]));
    assert.deepEqual(shapes, new Map([0, 1].flatMap((l) => [
      [`transformer.h.${l}.attn.c_attn`, [[4, 16], [48, 4]]],
      [`transformer.h.${l}.attn.c_proj`, [[4, 16], [16, 4]]],
      [`transformer.h.${l}.mlp.c_proj`, [[4, 64], [16, 4]]],
    ])));
  });

  test('Llama: k/v factors fit the grouped-query shapes, fan_in_fan_out unset', async () => {
    const [a] = await readAll(await writeSyntheticAdapters(fresh(), LLAMA, { clients: 1, rank: 2, alpha: 4, targetModules: ['k_proj', 'down_proj'] }));
    assert.equal(a.config.fanInFanOut, false);
    const k = a.modules.find((m) => m.modulePath === 'model.layers.1.self_attn.k_proj')!;
    assert.deepEqual([k.A.shape, k.B.shape], [[2, 32], [16, 2]]);
    const down = a.modules.find((m) => m.modulePath === 'model.layers.0.mlp.down_proj')!;
    assert.deepEqual([down.A.shape, down.B.shape], [[2, 48], [32, 2]]);
    assert.deepEqual(syntheticModules(LLAMA).filter((m) => m.name === 'k_proj').map((m) => [m.inFeatures, m.outFeatures]), [[32, 16], [32, 16]]);
  });

  test('deterministic by seed', async () => {
    const opts = { clients: 2, rank: 2, alpha: 4, targetModules: ['q_proj'], seed: 9 };
    const [a, b, c] = [fresh(), fresh(), fresh()];
    await writeSyntheticAdapters(a, LLAMA, opts);
    await writeSyntheticAdapters(b, LLAMA, opts);
    await writeSyntheticAdapters(c, LLAMA, { ...opts, seed: 10 });
    const bytes = (d: string): Promise<Buffer> => readFile(join(d, 'client-1', 'adapter_model.safetensors'));
    assert.ok((await bytes(a)).equals(await bytes(b)));
    assert.ok(!(await bytes(a)).equals(await bytes(c)));
  });

  test("A per client: own Kaiming draws by default, identical with sharedA, close to client 0's with aDrift", async () => {
    const base = { clients: 3, rank: 4, alpha: 8, targetModules: ['q_proj', 'down_proj'], seed: 5 };
    const own = await readAll(await writeSyntheticAdapters(fresh(), LLAMA, base));
    const shared = await readAll(await writeSyntheticAdapters(fresh(), LLAMA, { ...base, sharedA: true }));
    const drift = await readAll(await writeSyntheticAdapters(fresh(), LLAMA, { ...base, aDrift: 0.01 }));
    for (const [idx, m0] of own[0].modules.entries()) {
      // PEFT's kaiming_uniform_(a=√5) bound for lora_A is 1/√in.
      const bound = 1 / Math.sqrt(m0.A.shape[1]);
      for (const clients of [own, shared, drift]) assert.ok(clients[0].modules[idx].A.data.every((x) => Math.abs(x) <= bound * (1 + 1e-6)), `${m0.modulePath}: |A| ≤ 1/√in`);
      for (const i of [1, 2]) {
        const rel = (c: PeftAdapter[]): number => frob(c[i].modules[idx].A.data, c[0].modules[idx].A.data) / frob(c[0].modules[idx].A.data);
        assert.ok(rel(own) > 0.5, `${m0.modulePath}: independent A differ (${rel(own)})`);
        assert.equal(rel(shared), 0, `${m0.modulePath}: shared A are identical`);
        // Drift of 0.01·(1/√in) per entry against A's spread of 1/√(3·in): ≈ 0.01·√3 relative.
        assert.ok(rel(drift) > 0.005 && rel(drift) < 0.03, `${m0.modulePath}: drifted A stay close (${rel(drift)})`);
        for (const c of [own, shared, drift]) assert.ok(frob(c[i].modules[idx].B.data, c[0].modules[idx].B.data) > 0, `${m0.modulePath}: B differs`);
      }
    }
  });
});
