import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exportFailureText, exportPlan, findFederationRun, removePartialExport, summarizeExportReport } from '../../src/extension/federationExport.js';
import type { FederationRun } from '../../src/extension/federationExport.js';
import { runCliToEnd } from '../../src/extension/process/cliProcess.js';
import { exportCommand } from '../../src/cli/commands/export.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A run folder as `fedex host --out` leaves it, as far as the extension looks (state.json with plan.method). */
function runFolder(dir: string, method: string): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'state.json'), JSON.stringify({ format: 'fedex-run-state', plan: { method } }));
  return dir;
}

function report(over: Record<string, unknown> = {}, summary: Record<string, unknown> = {}): string {
  return JSON.stringify({
    format: 'fedex-export',
    version: 1,
    source: { runDir: '/runs/s/runs/fedex', method: 'fedex', roundsCompleted: 2, rounds: 2, finished: true, baseSteps: 2 },
    base: '/models/tiny-gpt2',
    as: 'adapter',
    options: { maxRank: null, maxRelativeError: null },
    adapterDir: '/out/fedex-export-fedex-1/adapter',
    modelDir: null,
    modules: [{ module: 'a', rank: 56, exactRank: 56 }, { module: 'b', rank: 56, exactRank: 56 }, { module: 'c', rank: 56, exactRank: 56 }],
    summary: { modules: 3, exactModules: 3, maxTruncationError: 0, adapterBytes: 1, maxDowncastAbsError: 0, ...summary },
    seconds: 0.5,
    ...over,
  });
}

describe('federation export: finding the run', () => {
  test('a host run folder, a simulation folder (methods in fedex, fedit, ffa order) and a plain adapter folder', async () => {
    // prepare
    const root = mkdtempSync(join(tmpdir(), 'fedex-export-find-'));
    const host = runFolder(join(root, 'host-1'), 'fedit');
    const sim = join(root, 'simulate-1');
    runFolder(join(sim, 'runs', 'ffa'), 'ffa');
    runFolder(join(sim, 'runs', 'fedex'), 'fedex');
    mkdirSync(join(sim, 'runs', 'fedit'), { recursive: true }); // a run that never wrote its state
    const trained = join(root, 'train-out');
    mkdirSync(trained);
    writeFileSync(join(trained, 'adapter_config.json'), '{}');
    writeFileSync(join(trained, 'adapter_model.safetensors'), '');
    const aggregated = join(root, 'aggregate-out');
    mkdirSync(join(aggregated, 'adapter'), { recursive: true });
    writeFileSync(join(aggregated, 'report.json'), JSON.stringify({ method: 'fedex', adapters: ['a', 'b'] }));
    // act
    const found = await Promise.all([host, sim, trained, join(root, 'missing'), aggregated].map(findFederationRun));
    // assert
    assert.deepEqual(found, [
      { kind: 'run', dir: host, method: 'fedit' },
      { kind: 'simulation', dir: sim, methods: ['fedex', 'ffa'] },
      null,
      null,
      { kind: 'run', dir: aggregated, method: 'fedex' },
    ]);
  });
});

describe('federation export: the fedex export command line', () => {
  const parse = (args: readonly string[]) => {
    assert.equal(args[0], 'export');
    return exportCommand.parse!(args.slice(1));
  };

  test('a hosted run: the run folder itself, no --method, the chosen kind, a new fedex-export-<method>-<stamp> folder', () => {
    // prepare
    const run: FederationRun = { kind: 'run', dir: '/ws/.fedex/runs/host-20250101-000000', method: 'fedex' };
    // act
    const plan = exportPlan(run, { as: 'adapter', parent: '/exports', device: 'cpu', stamp: '20250102-030405' });
    // assert
    assert.deepEqual(plan, {
      out: '/exports/fedex-export-fedex-20250102-030405',
      method: 'fedex',
      args: ['export', '/ws/.fedex/runs/host-20250101-000000', '--out', '/exports/fedex-export-fedex-20250102-030405', '--as', 'adapter', '--device', 'cpu', '--json'],
    });
    const parsed = parse(plan.args);
    assert.deepEqual(parsed.positionals, [run.dir]);
    assert.equal(parsed.values.out, plan.out);
    assert.equal(parsed.values.as, 'adapter');
    assert.equal(parsed.values.method, undefined);
    assert.equal(parsed.values.json, true);
    assert.throws(() => exportPlan(run, { as: 'adapter', parent: '/e', device: 'cpu', stamp: 's', method: 'ffa' }), /holds a fedex federation, not ffa/);
  });

  test('a simulation with several methods: the simulate folder and --method of the run the user chose', () => {
    // prepare
    const run: FederationRun = { kind: 'simulation', dir: '/ws/.fedex/runs/simulate-1', methods: ['fedex', 'fedit', 'ffa'] };
    // act
    const plan = exportPlan(run, { as: 'both', parent: '/exports', device: 'cuda', stamp: '20250102-030405', method: 'fedit' });
    // assert
    assert.deepEqual(plan.args, ['export', '/ws/.fedex/runs/simulate-1', '--out', '/exports/fedex-export-fedit-20250102-030405', '--as', 'both', '--method', 'fedit', '--device', 'cuda', '--json']);
    assert.equal(plan.method, 'fedit');
    const parsed = parse(plan.args);
    assert.deepEqual(parsed.positionals, [run.dir]);
    assert.equal(parsed.values.method, 'fedit');
    assert.equal(parsed.values.as, 'both');
    assert.equal(parsed.values.device, 'cuda');
    // the method is never left to the CLI's default when there is a choice; a single run needs none
    assert.throws(() => exportPlan(run, { as: 'adapter', parent: '/e', device: 'cpu', stamp: 's' }), /holds runs of fedex, fedit, ffa: choose one/);
    assert.throws(() => exportPlan({ ...run, methods: ['fedex'] }, { as: 'adapter', parent: '/e', device: 'cpu', stamp: 's', method: 'ffa' }), /has no ffa run/);
    assert.deepEqual(exportPlan({ ...run, methods: ['ffa'] }, { as: 'merged', parent: '/e', device: 'cpu', stamp: 's' }).args, ['export', run.dir, '--out', '/e/fedex-export-ffa-s', '--as', 'merged', '--method', 'ffa', '--device', 'cpu',
      '--json']);
  });
});

describe('federation export: what the user is told', () => {
  test('exact in every module, with the adapter folder and the ranks', () => {
    assert.deepEqual(summarizeExportReport(report()), {
      text: 'fedex federation exported (2/2 rounds). Adapter (PEFT, on the original base /models/tiny-gpt2): /out/fedex-export-fedex-1/adapter, exact in every module (3 modules, rank 56).',
      reveal: '/out/fedex-export-fedex-1/adapter',
    });
  });

  test('truncated modules, an unfinished run, a merged model, a synthetic base; unreadable reports are null', () => {
    const truncated = summarizeExportReport(
      report({ modules: [{ rank: 4, exactRank: 16 }, { rank: 8, exactRank: 8 }, { rank: 4, exactRank: 9 }], modelDir: '/out/x/model', source: { method: 'fedex', roundsCompleted: 1, rounds: 3, finished: false } }, { exactModules: 1,
        maxTruncationError: 0.01234 }),
    );
    assert.equal(truncated?.text,
      'fedex federation exported (1/3 rounds, unfinished). Adapter (PEFT, on the original base /models/tiny-gpt2): /out/fedex-export-fedex-1/adapter, 2 of 3 modules truncated, max relative error 1.2e-2, ranks 4–8. Merged model: /out/x/model.');
    const merged = summarizeExportReport(report({ adapterDir: null, modelDir: '/out/x/model' }));
    assert.deepEqual(merged, { text: 'fedex federation exported (2/2 rounds). Merged model: /out/x/model.', reveal: '/out/x/model' });
    assert.match(summarizeExportReport(report({ base: null }))?.text ?? '', /synthetic model: no base folder/);
    assert.equal(summarizeExportReport('not json'), null);
    assert.equal(summarizeExportReport('{"format":"fedex-aggregate"}'), null);
  });

  test("a failure shows the CLI's error line, without its prefix; a spawn failure says so", () => {
    const exit = { code: 1, signal: null, stopped: false };
    assert.equal(exportFailureText({ exit, stdout: '', stderr: ['fedex export: exporting the fedex run of /s', 'fedex export: [EXPORT_BASE] cannot read the base model folder /m: gone', ''] }),
      '[EXPORT_BASE] cannot read the base model folder /m: gone');
    assert.equal(exportFailureText({ exit, stdout: '', stderr: [] }), 'exited with code 1');
    assert.equal(exportFailureText({ exit: { code: null, signal: null, stopped: false, error: 'spawn /x ENOENT' }, stdout: '', stderr: [] }), 'could not start fedex: spawn /x ENOENT');
  });

  test('a cancelled export leaves no partial folder behind', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'fedex-export-cancel-'));
    mkdirSync(join(parent, '.fedex-export-fedex-1.partial-123-abcd', '.parts'), { recursive: true });
    mkdirSync(join(parent, 'keep'));
    assert.equal(await removePartialExport(join(parent, 'fedex-export-fedex-1')), 1);
    assert.equal(existsSync(join(parent, '.fedex-export-fedex-1.partial-123-abcd')), false);
    assert.equal(existsSync(join(parent, 'keep')), true);
  });
});

describe('federation export: the real CLI', () => {
  // The CLI from source (the extension starts dist/cli.cjs the same way, with the editor's Node).
  const cli = { nodePath: process.execPath, cliPath: join(ROOT, 'src', 'cli', 'bin.ts'), cwd: ROOT, env: { NODE_OPTIONS: '--import tsx' } };

  test("a small simulated run exports as one exact adapter; exporting again into the same folder fails with the CLI's reason", async () => {
    // prepare: a two-round FedEx-LoRA simulation
    const root = mkdtempSync(join(tmpdir(), 'fedex-export-real-'));
    const sim = join(root, 'simulate');
    const simulated = await runCliToEnd({ ...cli, args: ['simulate', '--seeds', '1', '--methods', 'fedex', '--rounds', '2', '--local-steps', '2', '--eval-examples', '8', '--out', sim] });
    assert.equal(simulated.exit.code, 0, simulated.stderr.join('\n'));
    const run = await findFederationRun(sim);
    assert.deepEqual(run, { kind: 'simulation', dir: sim, methods: ['fedex'] });
    const plan = exportPlan(run, { as: 'adapter', parent: join(root, 'exports'), device: 'cpu', stamp: 'test', method: 'fedex' });
    // act
    const result = await runCliToEnd({ ...cli, args: plan.args });
    const again = await runCliToEnd({ ...cli, args: plan.args });
    // assert
    assert.equal(result.exit.code, 0, result.stderr.join('\n'));
    const summary = summarizeExportReport(result.stdout);
    assert.ok(summary !== null, `unreadable report: ${result.stdout.slice(0, 200)}`);
    assert.equal(summary.reveal, join(plan.out, 'adapter'));
    assert.match(summary.text, /^fedex federation exported \(2\/2 rounds\)\. Adapter \(PEFT, on the original base .+\): .+, exact in every module \(\d+ modules, ranks? [\d–]+\)\.$/);
    for (const f of ['adapter/adapter_config.json', 'adapter/adapter_model.safetensors', 'export-report.json']) assert.ok(existsSync(join(plan.out, f)), `${f} is missing`);
    assert.equal(again.exit.code, 1);
    assert.match(exportFailureText(again), /already exists; pass --force/);
  });
});
