// Sharded bases (model.safetensors.index.json) in offline aggregation, and the commit of the output
// folder when a rename fails.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { aggregateFolders } from '../../../src/federation/offline/aggregateFolders.js';
import { AggregationInputError } from '../../../src/federation/offline/errors.js';
import { commitOutput } from '../../../src/federation/offline/outputFolder.js';
import { openSafetensors } from '../../../src/formats/safetensors.js';
import { writeSafetensors } from '../../../src/formats/safetensorsWriter.js';
import type { TensorToWrite } from '../../../src/formats/safetensorsWriter.js';
import { LLAMA_SPEC, LLAMA_TARGETS, makeFixture, SHARDS, shardCheckpoint, suiteUpdater } from '../../helpers/offlineFixtures.js';
import type { Fixture } from '../../helpers/offlineFixtures.js';
import { suiteTempDir } from '../../helpers/tempDir.js';
import { withCheckpoint } from '../../../src/model/checkpoint.js';

const updater = suiteUpdater();
const tmp = suiteTempDir('fedex-sharded-');

/** Every tensor of a single file or of the shards an index lists: name → [dtype, shape, bytes]. */
async function tensorsOf(files: readonly string[]): Promise<Map<string, [string, readonly number[], Buffer]>> {
  const all = new Map<string, [string, readonly number[], Buffer]>();
  for (const f of files) {
    const r = await openSafetensors(f);
    for (const t of r.tensors.values()) all.set(t.name, [t.dtype, t.shape, Buffer.from(await r.readRaw(t.name))]);
    await r.close();
  }
  return all;
}

describe('aggregateFolders on a sharded base (model.safetensors.index.json)', () => {
  let fx: Fixture;
  let sharded: string;
  let weightMap: Record<string, string>;
  before(async () => {
    fx = await makeFixture(join(tmp.path, 'llama'), { ...LLAMA_SPEC, dtype: 'BF16', layers: 3, seed: 41 }, LLAMA_TARGETS, { seed: 42 });
    sharded = join(tmp.path, 'llama-sharded');
    weightMap = await shardCheckpoint(fx, sharded);
  });

  test('fedex writes the same shards and an index with the same weight_map; every tensor equals the single-file run byte for byte', async () => {
    // act
    const single = join(tmp.path, 'out-single');
    const out = join(tmp.path, 'out-sharded');
    const r1 = await aggregateFolders({ method: 'fedex', base: fx.base, adapters: fx.adapters, out: single, updater, checkRows: 5 });
    const r2 = await aggregateFolders({ method: 'fedex', base: sharded, adapters: fx.adapters, out, updater, checkRows: 5 });
    // assert
    assert.deepEqual((await readdir(out)).sort(), ['adapter', 'config.json', 'model.safetensors.index.json', ...SHARDS, 'report.json', 'residual.safetensors'].sort());
    const index = JSON.parse(await readFile(join(out, 'model.safetensors.index.json'), 'utf8')) as { metadata: { total_size: number }; weight_map: Record<string, string> };
    assert.deepEqual(index.weight_map, weightMap);
    const got = await tensorsOf(SHARDS.map((f) => join(out, f)));
    const want = await tensorsOf([join(single, 'model.safetensors')]);
    assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
    for (const [name, [dtype, shape, bytes]] of want) {
      const g = got.get(name)!;
      assert.deepEqual([g[0], g[1]], [dtype, shape], name);
      assert.ok(g[2].equals(bytes), `${name}: bytes equal the single-file run`);
    }
    assert.equal(index.metadata.total_size, [...got.values()].reduce((a, [, , b]) => a + b.byteLength, 0));
    // Each shard holds what the index says it holds.
    for (const f of SHARDS) {
      const r = await openSafetensors(join(out, f));
      assert.deepEqual([...r.tensors.keys()], Object.keys(weightMap).filter((k) => weightMap[k] === f), f);
      await r.close();
    }
    assert.equal(r2.base, join(sharded, 'model.safetensors.index.json'));
    assert.deepEqual(r2.modules.map((m) => [m.module, m.exactness]), r1.modules.map((m) => [m.module, m.exactness]));
    assert.ok(r2.summary.allWithinTolerance);
    assert.ok((await readFile(join(out, 'adapter', 'adapter_model.safetensors'))).equals(await readFile(join(single, 'adapter', 'adapter_model.safetensors'))), 'the same global adapter');
    assert.ok((await readFile(join(out, 'residual.safetensors'))).equals(await readFile(join(single, 'residual.safetensors'))), 'the same residual');
  });

  test('an index as transformers writes it (keys sorted), given as the index file itself: shards in name order, the same report order; a tensor the index leaves out is listed in the new one; the output folder loads as a checkpoint', async () => {
    // prepare: re-key the index in sorted order and drop one adapted weight from it
    const dir = join(tmp.path, 'llama-sorted');
    await shardCheckpoint(fx, dir);
    const indexPath = join(dir, 'model.safetensors.index.json');
    const index = JSON.parse(await readFile(indexPath, 'utf8')) as { metadata: unknown; weight_map: Record<string, string> };
    const dropped = 'model.layers.1.mlp.down_proj.weight';
    assert.ok(dropped in index.weight_map);
    const sorted = Object.fromEntries(Object.keys(index.weight_map).sort().filter((k) => k !== dropped).map((k) => [k, index.weight_map[k]]));
    await writeFile(indexPath, JSON.stringify({ metadata: index.metadata, weight_map: sorted }));
    // act
    const single = await aggregateFolders({ method: 'fedex', base: fx.base, adapters: fx.adapters, out: join(tmp.path, 'out-sorted-single'), updater, checkRows: 5 });
    const out = join(tmp.path, 'out-sorted');
    const r = await aggregateFolders({ method: 'fedex', base: indexPath, adapters: fx.adapters, out, updater, checkRows: 5 });
    // assert
    assert.deepEqual(r.modules.map((m) => [m.module, m.exactness]), single.modules.map((m) => [m.module, m.exactness]), 'same order, same sampled rows');
    const written = JSON.parse(await readFile(join(out, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
    assert.deepEqual(written.weight_map, weightMap, 'every tensor listed, the dropped one with its shard');
    await withCheckpoint(out, async (ckpt) => {
      const want = await tensorsOf([join(tmp.path, 'out-sorted-single', 'model.safetensors')]);
      assert.deepEqual([...ckpt.tensors.keys()].sort(), [...want.keys()].sort());
      assert.equal(ckpt.modelType, 'llama');
      const q = await ckpt.readFloat32(dropped);
      assert.equal(q.length, want.get(dropped)![1].reduce((a, b) => a * b, 1));
    });
  });

  test('--dtype float32: adapted weights become F32 and total_size counts them', async () => {
    const out = join(tmp.path, 'out-f32');
    await aggregateFolders({ method: 'fedex', base: sharded, adapters: fx.adapters, out, updater, dtype: 'float32' });
    const got = await tensorsOf(SHARDS.map((f) => join(out, f)));
    const index = JSON.parse(await readFile(join(out, 'model.safetensors.index.json'), 'utf8')) as { metadata: { total_size: number } };
    assert.equal(index.metadata.total_size, [...got.values()].reduce((a, [, , b]) => a + b.byteLength, 0));
    assert.ok([...got.entries()].some(([n, [d]]) => n.endsWith('q_proj.weight') && d === 'F32'));
    assert.ok([...got.entries()].some(([n, [d]]) => n.endsWith('norm.weight') && d === 'BF16'));
  });

  test('fedit on a sharded base writes the adapter only', async () => {
    const out = join(tmp.path, 'out-fedit');
    const r = await aggregateFolders({ method: 'fedit', base: sharded, adapters: fx.adapters, out, updater });
    assert.equal(r.modelWritten, false);
    assert.deepEqual((await readdir(out)).sort(), ['adapter', 'report.json']);
  });

  test('a broken index is named: a missing shard, a key mapped to the wrong shard, a tensor in two shards; nothing is written', async () => {
    const cases: [string, (dir: string) => Promise<void>, RegExp][] = [
      ['missing-shard', async (dir) => rm(join(dir, SHARDS[2])), /shard '.*model-00003-of-00003\.safetensors' listed in '.*model\.safetensors\.index\.json' does not exist/],
      ['wrong-shard', async (dir) => {
        const index = JSON.parse(await readFile(join(dir, 'model.safetensors.index.json'), 'utf8'));
        const key = Object.keys(index.weight_map)[0];
        index.weight_map[key] = SHARDS[1];
        await writeFile(join(dir, 'model.safetensors.index.json'), JSON.stringify(index));
      }, /maps '.*' to model-00002-of-00003\.safetensors, which does not hold it \(it is in '.*model-00001-of-00003\.safetensors'\)/],
      ['duplicate', async (dir) => {
        const r = await openSafetensors(join(dir, SHARDS[0]));
        const first = [...r.tensors.values()][0];
        const bytes = await r.readRaw(first.name);
        await r.close();
        const r3 = await openSafetensors(join(dir, SHARDS[2]));
        const part = new Map<string, TensorToWrite>([[first.name, { dtype: first.dtype, shape: first.shape, data: bytes }]]);
        for (const t of r3.tensors.values()) part.set(t.name, { dtype: t.dtype, shape: t.shape, data: await r3.readRaw(t.name) });
        await r3.close();
        await writeSafetensors(join(dir, SHARDS[2]), part);
      }, /tensor '.*' is in both '.*model-00001-of-00003\.safetensors' and '.*model-00003-of-00003\.safetensors'/],
    ];
    for (const [name, breakIt, message] of cases) {
      const dir = join(tmp.path, `broken-${name}`);
      await shardCheckpoint(fx, dir);
      await breakIt(dir);
      const parent = join(tmp.path, `broken-${name}-out`);
      await assert.rejects(aggregateFolders({ method: 'fedex', base: dir, adapters: fx.adapters, out: join(parent, 'out'), updater }), (err: Error) => {
        assert.ok(err instanceof AggregationInputError, `${name}: ${err.name}: ${err.message}`);
        assert.match(err.message, message);
        return true;
      });
      assert.equal(await stat(parent).then(() => true, () => false), false, `${name}: nothing written`);
    }
  });
});

describe('commitOutput', () => {
  test('replaces an existing output folder; a failed rename puts the previous output back and says so', async () => {
    const root = join(tmp.path, 'commit');
    const out = join(root, 'out');
    const mk = async (dir: string, content: string): Promise<void> => {
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'report.json'), content);
    };
    await mk(out, 'old');
    await mk(join(root, 'new1'), 'new1');
    assert.equal(await commitOutput(join(root, 'new1'), out, true), null);
    assert.equal(await readFile(join(out, 'report.json'), 'utf8'), 'new1');
    assert.deepEqual((await readdir(root)).sort(), ['out'], 'the previous output is removed');

    // The move of the new folder fails: the previous output is moved back.
    await mk(join(root, 'new2'), 'new2');
    const failing = {
      rename: async (from: string, to: string) => {
        if (from.endsWith('new2')) throw new Error('EXDEV: cross-device link not permitted');
        await rename(from, to);
      },
      rm,
    };
    await assert.rejects(commitOutput(join(root, 'new2'), out, true, failing), (err: Error) => {
      assert.ok(err instanceof AggregationInputError && err.code === 'OUTPUT_COMMIT');
      assert.match(err.message, /could not move the new output into '.*out' \(EXDEV: cross-device link not permitted\); the previous output is unchanged/);
      return true;
    });
    assert.equal(await readFile(join(out, 'report.json'), 'utf8'), 'new1');
    assert.deepEqual((await readdir(root)).sort(), ['new2', 'out'], 'no .old- folder left; the new folder stays for the caller to remove');

    // Both moves fail: the error says where the previous output is.
    const stuck = {
      rename: async (from: string, to: string) => {
        if (from.endsWith('new2') || from.includes('.old-')) throw new Error('EIO');
        await rename(from, to);
      },
      rm,
    };
    await assert.rejects(commitOutput(join(root, 'new2'), out, true, stuck), /the previous output could not be moved back: it is in '.*out\.old-[0-9a-f]{8}' \(EIO\)/);
  });

  test('an output folder that appeared meanwhile is refused without --force and left alone; a previous output that cannot be removed is returned, not an error', async () => {
    const root = join(tmp.path, 'commit2');
    const out = join(root, 'out');
    await mkdir(out, { recursive: true });
    await writeFile(join(out, 'mine.txt'), 'keep');
    await mkdir(join(root, 'new'), { recursive: true });
    await assert.rejects(commitOutput(join(root, 'new'), out, false), (err: Error) => err instanceof AggregationInputError && err.code === 'OUTPUT_EXISTS' && /appeared while aggregating; pass --force/.test(err.message));
    assert.equal(await readFile(join(out, 'mine.txt'), 'utf8'), 'keep');
    const noRm = { rename, rm: async () => {
      throw new Error('EBUSY');
    } };
    const leftover = await commitOutput(join(root, 'new'), out, true, noRm);
    assert.match(leftover ?? '', /out\.old-[0-9a-f]{8}$/);
    assert.equal(await readFile(join(leftover!, 'mine.txt'), 'utf8'), 'keep', 'the previous output is where the returned path says');
    assert.deepEqual(await readdir(out), [], 'the new output is in place');
  });
});
