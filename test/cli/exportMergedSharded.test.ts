// `fedex export --as merged` on a federation whose base is stored as users download today's models:
// bfloat16 and sharded (model-0000N-of-00002.safetensors + index). The merged model keeps the shard
// names, the index and the dtype, and each adapted weight is the federated one (the run's float32
// master + s·B̄Ā) rounded to bfloat16 once, with the rounding reported.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnFedex } from '../helpers/fedexProcess.js';
import { bfloat16ToFloat32, float32ToBfloat16 } from '../../src/formats/halfFloat.js';
import { openSafetensors, withSafetensors } from '../../src/formats/safetensors.js';
import { writeSafetensors, type TensorToWrite } from '../../src/formats/safetensorsWriter.js';
import { readRunState } from '../../src/federation/coordinator/store.js';
import { loraScaling } from '../../src/core/lora.js';
import type { ExportReport } from '../../src/federation/export/exportFederation.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SHIPPED = join(ROOT, 'models', 'tiny-gpt2');
const SHARDS = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];

/** The shipped tiny GPT-2 as bfloat16 in two shards with an index, config and tokenizer files alongside. */
async function bf16ShardedCopy(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) await copyFile(join(SHIPPED, f), join(dir, f));
  const reader = await openSafetensors(join(SHIPPED, 'model.safetensors'));
  try {
    const names = [...reader.tensors.keys()];
    const weightMap: Record<string, string> = {};
    let total = 0;
    const half = Math.ceil(names.length / 2);
    for (const [i, file] of SHARDS.entries()) {
      const part = new Map<string, TensorToWrite>();
      for (const name of names.slice(i * half, (i + 1) * half)) {
        const info = reader.info(name);
        const data = info.dtype === 'F32' ? new Uint8Array(float32ToBfloat16((await reader.readTensor(name)).data).buffer) : await reader.readRaw(name);
        const dtype = info.dtype === 'F32' ? 'BF16' : info.dtype;
        part.set(name, { dtype, shape: info.shape, data });
        weightMap[name] = file;
        total += data.byteLength;
      }
      await writeSafetensors(join(dir, file), part, { format: 'pt' });
    }
    await writeFile(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2));
  } finally {
    await reader.close();
  }
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fedex-export-bf16-'));
});
after(async () => {
  if (process.env.KEEP_TMP === undefined) await rm(dir, { recursive: true, force: true });
  else process.stderr.write(`kept ${dir}\n`);
});

test('merged export of a bfloat16, sharded base: same shards, index and dtype; each adapted weight is the federated one rounded once', { timeout: 600_000 }, async () => {
  const base = join(dir, 'base');
  await bf16ShardedCopy(base);
  const sim = join(dir, 'sim');
  const r = await spawnFedex(['simulate', '--seeds', '1', '--methods', 'fedex', '--rounds', '2', '--local-steps', '3', '--eval-examples', '16', '--model', base, '--out', sim]).done;
  assert.equal(r.code, 0, r.stderr);
  const out = join(dir, 'export');
  const e = await spawnFedex(['export', sim, '--out', out, '--as', 'merged', '--json']).done;
  assert.equal(e.code, 0, e.stderr);
  const report = JSON.parse(e.stdout) as ExportReport;
  const files = (await readdir(join(out, 'model'))).sort();
  assert.deepEqual(files, ['config.json', 'model.safetensors.index.json', ...SHARDS, 'tokenizer.json', 'tokenizer_config.json'].sort());
  const index = JSON.parse(await readFile(join(out, 'model', 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
  const baseIndex = JSON.parse(await readFile(join(base, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
  assert.deepEqual(index.weight_map, baseIndex.weight_map);

  // The federated weight: the run's float32 master (W0 + folded residuals) + s·(B̄Ā)ᵀ (GPT-2 Conv1D), in float64.
  const runDir = join(sim, 'runs', 'fedex');
  const state = await readRunState(runDir);
  const master = await openSafetensors(join(runDir, state.baseFile));
  const global = await openSafetensors(join(runDir, state.globalFile));
  try {
    for (const m of state.plan.layout) {
      const key = Object.entries(index.weight_map).find(([k]) => m.module.endsWith(k.replace(/\.weight$/, '')) || k.replace(/\.weight$/, '').endsWith(m.module.replace(/^transformer\./, '')))![0];
      const shard = index.weight_map[key];
      const merged = await withSafetensors(join(out, 'model', shard), async (st) => {
        assert.equal(st.info(key).dtype, 'BF16', `${key} keeps the base's dtype`);
        return bfloat16ToFloat32(new Uint16Array((await st.readRaw(key)).slice().buffer));
      });
      const w = (await master.readMatrix(`${m.module}.weight`)).data; // stored in × out
      const a = (await global.readMatrix(`${m.module}.lora_A`)).data; // r × in
      const b = (await global.readMatrix(`${m.module}.lora_B`)).data; // out × r
      const s = loraScaling(state.plan.lora.alpha, m.rank, state.plan.lora.rsLora);
      let worst = 0;
      for (let i = 0; i < m.in; i++) {
        for (let o = 0; o < m.out; o++) {
          let ba = 0;
          for (let k = 0; k < m.rank; k++) ba += b[o * m.rank + k] * a[k * m.in + i];
          const exact = w[i * m.out + o] + s * ba;
          // One bfloat16 rounding (half an ulp: 2⁻⁹ relative) plus float32 round-off of the factors.
          worst = Math.max(worst, Math.abs(merged[i * m.out + o] - exact) / Math.max(Math.abs(exact), 1e-3));
        }
      }
      assert.ok(worst <= 2 ** -8, `${m.module}: worst relative difference ${worst}`);
      const mod = report.modules.find((x) => x.module === m.module)!;
      assert.equal(mod.downcast?.dtype, 'BF16');
      assert.ok(mod.downcast!.maxAbsError > 0, 'the rounding to bfloat16 is reported');
      assert.ok(mod.mergedCheck!.relativeError <= 1e-5, `${m.module}: merged check ${mod.mergedCheck!.relativeError}`);
    }
  } finally {
    await master.close();
    await global.close();
  }
});
