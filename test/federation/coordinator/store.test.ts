// The run directory's atomicity: state.json is the only commit point; a crash between writing a
// file and renaming it (simulated by leaving the temporary behind), or between writing the tensor
// files and state.json, never yields a partially written or inconsistent state on resume.
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import type { LoraFactors } from '../../../src/core/lora.js';
import { writeSafetensors } from '../../../src/formats/safetensorsWriter.js';
import { resolvePlan } from '../../../src/federation/coordinator/config.js';
import { initialAdapter } from '../../../src/federation/coordinator/initialState.js';
import { RunStore, type PersistedState } from '../../../src/federation/coordinator/store.js';
import { writeFileAtomic } from '../../../src/formats/atomicFile.js';
import { BASE, LAYOUT, coordinatorConfig, tempRunDir } from './fixtures.js';

function state(round: number, revision: number, plan: PersistedState['plan']): PersistedState {
  return {
    format: 'fedex-coordinator-run',
    version: 1,
    plan,
    round,
    revision,
    roundsCompleted: round,
    ...RunStore.fileNames(round, revision),
    registry: [],
    history: [],
    done: null,
    updatedAt: 0,
  };
}

function scaled(global: Map<string, LoraFactors>, k: number): Map<string, LoraFactors> {
  return new Map([...global].map(([name, f]) => [name, { a: { shape: f.a.shape, data: f.a.data.map((v) => v * k) }, b: { shape: f.b.shape, data: f.b.data.map(() => k) } }]));
}

test('resume reads the last committed state and ignores what a crash left half-written', async () => {
  const { dir, cleanup } = await tempRunDir();
  try {
    const plan = resolvePlan(coordinatorConfig(dir));
    const store = await RunStore.create(dir);
    const g1 = scaled(initialAdapter(plan), 1);
    await store.commit(state(1, 0, plan), { global: g1, base: BASE.modules });

    // Crash 1: round 2's tensor file complete, state.json never renamed into place (its temporary is partial).
    const g2 = scaled(g1, 2);
    await writeSafetensors(join(dir, RunStore.fileNames(2, 0).globalFile), new Map([[`${LAYOUT[0].module}.lora_A`, { dtype: 'F32', shape: [1, 1], data: new Float32Array(1) }]]));
    const full = JSON.stringify(state(2, 0, plan));
    await writeFile(join(dir, `state.json.tmp-4242-0badf00d`), full.slice(0, full.length >> 1));
    // Crash 2: a safetensors file cut off before its rename.
    await writeFile(join(dir, 'base-v000001.safetensors.partial-4242-0badf00d'), new Uint8Array(37));

    // The crashed coordinator's lock is gone with its process.
    await assert.rejects(RunStore.open(dir), { code: 'RUN_DIR_LOCKED' });
    await store.unlock();
    const reopened = await RunStore.open(dir);
    const loaded = await reopened.load();
    assert.equal(loaded.state.round, 1, 'the committed round, not the half-written one');
    for (const m of LAYOUT) {
      assert.deepEqual(loaded.global.get(m.module)!.a.data, g1.get(m.module)!.a.data);
      assert.notDeepEqual(loaded.global.get(m.module)!.a.data, g2.get(m.module)!.a.data);
      assert.deepEqual(loaded.base.get(m.module)!.data, BASE.modules.get(m.module)!.data);
    }
    assert.deepEqual((await readdir(dir)).filter((n) => /tmp-|partial-/.test(n)), [], 'temporaries are removed on resume');

    // The next commit replaces the stray round-2 file and drops files no state refers to.
    await reopened.commit(state(2, 0, plan), { global: g2 });
    await reopened.unlock();
    const again = await (await RunStore.open(dir)).load();
    assert.equal(again.state.round, 2);
    assert.deepEqual(again.global.get(LAYOUT[1].module)!.b.data, g2.get(LAYOUT[1].module)!.b.data);
    assert.deepEqual((await readdir(dir)).filter((n) => n.startsWith('global-r')), ['global-r000002.safetensors']);
  } finally {
    await cleanup();
  }
});

test('a new run refuses a directory that already holds one; resume refuses one that holds none', async () => {
  const { dir, cleanup } = await tempRunDir();
  try {
    const plan = resolvePlan(coordinatorConfig(dir));
    await assert.rejects(RunStore.open(dir), { code: 'RESUME_FAILED' });
    const store = await RunStore.create(dir);
    await store.commit(state(0, 0, plan), { global: initialAdapter(plan), base: BASE.modules });
    await assert.rejects(RunStore.create(dir), (e: unknown) => (e as { code?: string }).code === 'RUN_DIR_LOCKED' && new RegExp(`pid ${process.pid}`).test((e as Error).message));
    await store.unlock();
    await assert.rejects(RunStore.create(dir), { code: 'RUN_DIR_IN_USE' });
  } finally {
    await cleanup();
  }
});

test('writeFileAtomic replaces the whole file and leaves no temporary', async () => {
  const { dir, cleanup } = await tempRunDir();
  try {
    await RunStore.create(dir);
    const path = join(dir, 'x.json');
    await writeFileAtomic(path, 'first version, rather long');
    await writeFileAtomic(path, 'second');
    assert.equal(await readFile(path, 'utf8'), 'second');
    assert.deepEqual((await readdir(dir)).filter((n) => n.startsWith('x.json')), ['x.json']);
  } finally {
    await cleanup();
  }
});
