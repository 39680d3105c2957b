// Bad input to offline aggregation: every case fails with an error that names the file, module or
// tensor at fault, and leaves nothing behind (no output folder, no `.partial`/`.old` sibling, no
// parent folder created for it, no open file).
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdir, open, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { aggregateFolders } from '../../../src/federation/offline/aggregateFolders.js';
import type { AggregateFoldersOptions } from '../../../src/federation/offline/aggregateFolders.js';
import { AggregationInputError } from '../../../src/federation/offline/errors.js';
import type { AggregationErrorCode } from '../../../src/federation/offline/errors.js';
import { FormatError } from '../../../src/formats/errors.js';
import type { FormatErrorCode } from '../../../src/formats/errors.js';
import { openSafetensors } from '../../../src/formats/safetensors.js';
import { matrix } from '../../helpers/matrix.js';
import { writeSyntheticAdapters } from '../../../src/model/checkpoints/synthetic.js';
import { GPT2_SPEC, makeFixture, suiteProductBackend, suiteUpdater } from '../../helpers/offlineFixtures.js';
import type { Fixture } from '../../helpers/offlineFixtures.js';
import { entries, openFdCount, suiteTempDir } from '../../helpers/tempDir.js';

const TARGETS = ['c_attn', 'c_proj'];
const backend = suiteProductBackend();
const updater = suiteUpdater();
const tmp = suiteTempDir('aggregate-input');
let fx: Fixture;
before(async () => {
  fx = await makeFixture(join(tmp.path, 'fx'), GPT2_SPEC, TARGETS);
  // onnxruntime opens files of its own (a cache database) on its first session and keeps them: open
  // them now, so that the file-handle counts below see only what an aggregation leaves open.
  await backend.addScaledProduct(matrix(new Float32Array(4), 2, 2), 'linear', matrix(new Float32Array(2), 2, 1), matrix(new Float32Array(2), 1, 2), 1);
});

type Expected =
  | { kind: 'input'; code: AggregationErrorCode; mentions: readonly (string | RegExp)[] }
  | { kind: 'format'; code: FormatErrorCode | readonly FormatErrorCode[]; mentions: readonly (string | RegExp)[] };

let caseNo = 0;

/**
 * Runs aggregateFolders with `overrides` into `<case>/out`, where `<case>` is a fresh empty folder,
 * expects the error, and checks that `<case>` is still empty and no file handle stayed open.
 */
async function expectFailure(overrides: Partial<AggregateFoldersOptions>, expected: Expected): Promise<void> {
  const parent = join(tmp.path, 'cases', String(caseNo++));
  await mkdir(parent, { recursive: true });
  const fds = openFdCount();
  const options: AggregateFoldersOptions = { method: 'fedex', base: fx.base, adapters: fx.adapters, out: join(parent, 'out'), updater, ...overrides };
  await assert.rejects(aggregateFolders(options), (err: unknown) => {
    const codes: readonly string[] = typeof expected.code === 'string' ? [expected.code] : expected.code;
    if (expected.kind === 'input') assert.ok(err instanceof AggregationInputError, `expected AggregationInputError, got ${String(err)}`);
    else assert.ok(err instanceof FormatError, `expected FormatError, got ${String(err)}`);
    assert.ok(codes.includes(err.code), `code ${err.code}, expected ${codes.join(' or ')} (${err.message})`);
    for (const m of expected.mentions) {
      assert.ok(typeof m === 'string' ? err.message.includes(m) : m.test(err.message), `message names ${String(m)}: ${err.message}`);
    }
    return true;
  });
  assert.deepEqual(await entries(parent), [], 'nothing written beside the output');
  if (fds !== null) assert.equal(openFdCount(), fds, 'no file handle left open');
}

/** Writes one adapter folder (client-0 of `<root>`) with different options. */
async function oneAdapter(root: string, options: { rank?: number; targets?: string[]; hidden?: number }): Promise<string> {
  const [dir] = await writeSyntheticAdapters(join(tmp.path, root), { ...GPT2_SPEC, hidden: options.hidden ?? GPT2_SPEC.hidden }, { clients: 1, rank: options.rank ?? 4, alpha: 8, targetModules: options.targets ?? TARGETS, seed: 99 });
  return dir;
}

describe('aggregateFolders: mismatched adapters', () => {
  test('ranks differ between clients: names the folder, the module and both ranks', async () => {
    const r2 = await oneAdapter('rank2', { rank: 2 });
    await expectFailure({ adapters: [fx.adapters[0], fx.adapters[1], r2] }, { kind: 'input', code: 'ADAPTER_MISMATCH', mentions: [r2, "'transformer.h.0.attn.c_attn'", 'rank 2', 'rank 4'] });
  });

  test('a client lacks a module: names the folder and the module', async () => {
    const attnOnly = await oneAdapter('attn-only', { targets: ['c_attn'] });
    await expectFailure({ adapters: [fx.adapters[0], fx.adapters[1], attnOnly] }, { kind: 'input', code: 'ADAPTER_MISMATCH', mentions: [attnOnly, "'transformer.h.0.attn.c_proj'", 'lacks'] });
    // The other way round: the first client has fewer modules than the rest.
    await expectFailure({ adapters: [attnOnly, fx.adapters[0]] }, { kind: 'input', code: 'ADAPTER_MISMATCH', mentions: [fx.adapters[0], "'transformer.h.0.attn.c_proj'"] });
  });

  test('adapters for a different base (hidden 48 vs 32): shape mismatch naming the module and the base file', async () => {
    const dirs = await writeSyntheticAdapters(join(tmp.path, 'hidden48'), { ...GPT2_SPEC, hidden: 48 }, { clients: 3, rank: 4, alpha: 8, targetModules: TARGETS });
    await expectFailure({ adapters: dirs }, { kind: 'format', code: 'BASE_SHAPE_MISMATCH', mentions: ["'transformer.h.0.attn.c_attn'", join(fx.base, 'model.safetensors')] });
  });

  test('a NaN in the last module of one adapter: found mid-stream, names the file and the tensor, nothing partial left', async () => {
    // prepare: the module streamed last (in the base's order) carries the NaN
    const bad = join(tmp.path, 'nan-client');
    await cp(fx.adapters[2], bad, { recursive: true });
    const file = join(bad, 'adapter_model.safetensors');
    const key = 'base_model.model.transformer.h.1.mlp.c_proj.lora_B.weight';
    const reader = await openSafetensors(file);
    const offset = reader.info(key).byteOffset + 4 * 5;
    await reader.close();
    const fh = await open(file, 'r+');
    await fh.write(new Uint8Array(new Float32Array([NaN]).buffer), 0, 4, offset);
    await fh.close();
    const streamed: string[] = [];
    // act + assert: refused with the tensor named, after the other modules were aggregated and
    // written (streaming), and still no output folder nor any partial file beside it
    await expectFailure({ adapters: [fx.adapters[0], fx.adapters[1], bad], onModule: (_d, _t, m) => streamed.push(m) }, { kind: 'format', code: 'PEFT_NON_FINITE', mentions: [file, key, 'NaN', 'flat index 5'] });
    assert.deepEqual(streamed, ['transformer.h.0.attn.c_attn', 'transformer.h.0.attn.c_proj', 'transformer.h.0.mlp.c_proj', 'transformer.h.1.attn.c_attn', 'transformer.h.1.attn.c_proj'], 'every module before it in the base was done first');
  });
});

describe('aggregateFolders: bad base model', () => {
  test('a truncated model.safetensors: names the file', async () => {
    const base = join(tmp.path, 'truncated');
    await cp(fx.base, base, { recursive: true });
    const file = join(base, 'model.safetensors');
    await truncate(file, Math.floor((await stat(file)).size / 2));
    await expectFailure({ base }, { kind: 'format', code: ['SAFETENSORS_TRUNCATED', 'SAFETENSORS_SIZE_MISMATCH', 'SAFETENSORS_INVALID_OFFSETS'], mentions: [file] });
  });

  test('a model.safetensors with a garbage header: names the file', async () => {
    const base = join(tmp.path, 'garbage');
    await cp(fx.base, base, { recursive: true });
    const file = join(base, 'model.safetensors');
    const bytes = await readFile(file);
    bytes.fill(0x7b, 8, 40); // '{{{{…' where the JSON header starts
    await writeFile(file, bytes);
    await expectFailure({ base }, { kind: 'format', code: 'SAFETENSORS_INVALID_HEADER', mentions: [file] });
  });

  test('a missing base, or a folder without model.safetensors: names the path', async () => {
    const missing = join(tmp.path, 'no-such-model');
    await expectFailure({ base: missing }, { kind: 'input', code: 'BASE_NOT_FOUND', mentions: [missing] });
    const empty = join(tmp.path, 'empty-model');
    await mkdir(empty);
    await expectFailure({ base: empty }, { kind: 'input', code: 'BASE_NOT_FOUND', mentions: [empty, 'model.safetensors'] });
  });
});

describe('aggregateFolders: weights and output folder', () => {
  test('weights count differs from adapters count', async () => {
    await expectFailure({ weights: [1, 2] }, { kind: 'input', code: 'BAD_WEIGHTS', mentions: ['2 weights', '3 adapters'] });
  });

  test('a negative weight: names the weight and its adapter folder', async () => {
    await expectFailure({ weights: [1, -1, 1] }, { kind: 'input', code: 'BAD_WEIGHTS', mentions: ['-1', fx.adapters[1]] });
  });

  test('non-finite or all-zero weights', async () => {
    await expectFailure({ weights: [1, NaN, 1] }, { kind: 'input', code: 'BAD_WEIGHTS', mentions: ['NaN', fx.adapters[1]] });
    await expectFailure({ weights: [0, 0, 0] }, { kind: 'input', code: 'BAD_WEIGHTS', mentions: ['zero'] });
  });

  test('no adapters', async () => {
    await expectFailure({ adapters: [] }, { kind: 'input', code: 'NO_ADAPTERS', mentions: ['no adapter'] });
  });

  test('a failure creates no missing parent folder of the output', async () => {
    const dirs = await writeSyntheticAdapters(join(tmp.path, 'hidden48b'), { ...GPT2_SPEC, hidden: 48 }, { clients: 2, rank: 4, alpha: 8, targetModules: TARGETS });
    const root = join(tmp.path, 'no-parent');
    await assert.rejects(aggregateFolders({ method: 'fedex', base: fx.base, adapters: dirs, out: join(root, 'a', 'b', 'out'), updater }), FormatError);
    assert.equal(await stat(root).catch(() => null), null, `'${root}' was not created`);
  });

  test('an existing output folder without force: refused, untouched, no file handle left open', async () => {
    const parent = join(tmp.path, 'exists');
    const out = join(parent, 'out');
    await mkdir(out, { recursive: true });
    await writeFile(join(out, 'keep.txt'), 'mine');
    const fds = openFdCount();
    await assert.rejects(
      aggregateFolders({ method: 'fedex', base: fx.base, adapters: fx.adapters, out, updater }),
      (err: unknown) => err instanceof AggregationInputError && err.code === 'OUTPUT_EXISTS' && err.message.includes(out) && err.message.includes('--force'),
    );
    assert.equal(await readFile(join(out, 'keep.txt'), 'utf8'), 'mine');
    assert.deepEqual(await entries(parent), ['out']);
    assert.deepEqual(await entries(out), ['keep.txt']);
    if (fds !== null) assert.equal(openFdCount(), fds, 'the base reader was closed');
  });

  test('force replaces the output folder and leaves no backup or partial folder', async () => {
    const parent = join(tmp.path, 'forced');
    const out = join(parent, 'out');
    await mkdir(out, { recursive: true });
    await writeFile(join(out, 'stale.txt'), 'old');
    const report = await aggregateFolders({ method: 'fedex', base: fx.base, adapters: fx.adapters, out, updater, force: true });
    assert.equal(report.modules.length, 6);
    assert.deepEqual(await entries(out), ['adapter', 'config.json', 'model.safetensors', 'report.json', 'residual.safetensors']);
    assert.deepEqual(await entries(parent), ['out'], 'no .old-* or .partial-* sibling');
  });
});
