import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { aggregateArgs, DEFAULT_SETTINGS, EXPORT_KINDS, exportArgs, hostArgs, joinArgs, readSettings, simulateArgs, tokenEnv, validateFederationUrl, type FedexSettings } from '../../../src/extension/config/cliArgs.js';
import type { ParsedArgs } from '../../../src/cli/args.js';
import { aggregateCommand } from '../../../src/cli/commands/aggregate.js';
import { exportCommand } from '../../../src/cli/commands/export.js';
import { hostCommand } from '../../../src/cli/commands/host.js';
import { joinCommand } from '../../../src/cli/commands/join.js';
import { simulateCommand } from '../../../src/cli/commands/simulate.js';

const getter = (values: Record<string, unknown>) => (key: string): unknown => values[key];

describe('readSettings', () => {
  test('defaults when nothing is set', () => {
    const { settings, problems } = readSettings(getter({}));
    assert.deepEqual(settings, DEFAULT_SETTINGS);
    assert.deepEqual(problems, []);
  });

  test('bad values fall back to the default and are named', () => {
    const { settings, problems } = readSettings(getter({
      rank: 0, alpha: -1, port: 70000, method: 'fedprox', rounds: 2.5, targetModules: 'q_proj, v_proj',
      remoteFederations: [{ name: 'Lab', url: 'ws://lab:8765' }, { url: 'http://nope' }, { name: '', url: 'wss://x.org/fed' }],
    }));
    assert.equal(settings.rank, DEFAULT_SETTINGS.rank);
    assert.equal(settings.alpha, DEFAULT_SETTINGS.alpha);
    assert.equal(settings.port, DEFAULT_SETTINGS.port);
    assert.equal(settings.method, 'fedex');
    assert.equal(settings.rounds, DEFAULT_SETTINGS.rounds);
    assert.deepEqual(settings.targetModules, ['q_proj', 'v_proj']);
    assert.deepEqual(settings.remoteFederations, [{ name: 'Lab', url: 'ws://lab:8765' }, { name: 'wss://x.org/fed', url: 'wss://x.org/fed' }]);
    for (const key of ['fedex.rank', 'fedex.alpha', 'fedex.port', 'fedex.method', 'fedex.rounds', 'fedex.remoteFederations[1]']) {
      assert.ok(problems.some((p) => p.startsWith(key)), `no problem reported for ${key}: ${problems.join(' | ')}`);
    }
  });

  test('validateFederationUrl', () => {
    assert.equal(validateFederationUrl('ws://127.0.0.1:8765'), null);
    assert.match(validateFederationUrl('https://x') ?? '', /ws:\/\//);
    assert.match(validateFederationUrl('lab:8765 x') ?? '', /not a URL|ws:/);
  });
});

describe('settings → CLI arguments', () => {
  const s = { ...DEFAULT_SETTINGS, model: 'models/tiny', data: 'task:copy', rank: 4, alpha: 8, targetModules: ['c_attn', 'c_proj'], rounds: 3, localSteps: 7, method: 'fedit' as const, device: 'cuda', port: 9000, bindAddress: '0.0.0.0' };

  test('simulate', () => {
    assert.deepEqual(simulateArgs(s, { out: '/o', methods: ['fedex', 'fedit'], clients: 3 }), [
      'simulate', '--methods', 'fedex,fedit', '--clients', '3', '--rounds', '3', '--local-steps', '7',
      '--rank', '4', '--alpha', '8', '--target-modules', 'c_attn,c_proj', '--model', 'models/tiny', '--data', 'task:copy',
      '--device', 'cuda', '--out', '/o', '--events', '-',
    ]);
    // empty model/data/targets are left to the CLI's defaults
    const bare = simulateArgs(DEFAULT_SETTINGS, { out: '/o' });
    assert.ok(!bare.includes('--model') && !bare.includes('--data') && !bare.includes('--target-modules') && !bare.includes('--methods'));
  });

  test('host', () => {
    assert.deepEqual(hostArgs(s, { out: '/run' }), [
      'host', '--host', '0.0.0.0', '--port', '9000', '--rounds', '3', '--min-clients', '2', '--method', 'fedit', '--local-steps', '7',
      '--max-update-ratio', '1000', '--rank', '4', '--alpha', '8', '--target-modules', 'c_attn,c_proj', '--model', 'models/tiny', '--out', '/run', '--events', '-',
    ]);
    assert.ok(!hostArgs(s, { out: '/run' }).some((a) => a.startsWith('--token')), 'the token is never an argument');
    assert.deepEqual(tokenEnv('tok'), { FEDEX_TOKEN: 'tok' });
    assert.ok(!hostArgs(s, { out: '/run' }).includes('--manual-rounds'), 'automatic rounds by default');
    const manual = hostArgs({ ...s, manualRounds: true }, { out: '/run' });
    assert.deepEqual(manual.slice(manual.indexOf('--model'), manual.indexOf('--out')), ['--model', 'models/tiny', '--manual-rounds']);
  });

  test('fedex.residualRank: --residual-rank for a FedEx host and for simulate, nothing at 0 or for other methods', () => {
    const cut = { ...s, method: 'fedex' as const, residualRank: 4 };
    const host = hostArgs(cut, { out: '/run' });
    assert.deepEqual(host.slice(host.indexOf('--residual-rank'), host.indexOf('--residual-rank') + 2), ['--residual-rank', '4']);
    assert.ok(!hostArgs({ ...cut, method: 'fedit' }, { out: '/run' }).includes('--residual-rank'), 'FedEx only');
    assert.ok(!hostArgs({ ...cut, residualRank: 0 }, { out: '/run' }).includes('--residual-rank'), '0: exact');
    const sim = simulateArgs(cut, { out: '/o' });
    assert.deepEqual(sim.slice(sim.indexOf('--residual-rank'), sim.indexOf('--residual-rank') + 2), ['--residual-rank', '4']);
    assert.equal(readSettings((k) => (k === 'residualRank' ? 3 : undefined)).settings.residualRank, 3);
    assert.match(readSettings((k) => (k === 'residualRank' ? -1 : undefined)).problems.join('\n'), /fedex\.residualRank/);
  });

  test('fedex.manualRounds is read as a boolean; anything else falls back to false and is named', () => {
    assert.equal(readSettings(getter({ manualRounds: true })).settings.manualRounds, true);
    const bad = readSettings(getter({ manualRounds: 'yes' }));
    assert.equal(bad.settings.manualRounds, false);
    assert.match(bad.problems.join(' | '), /^fedex\.manualRounds must be true or false/);
  });

  test('join and aggregate', () => {
    assert.deepEqual(joinArgs(s, { url: 'ws://h:1', name: 'me', out: '/run/final-adapter' }), [
      'join', 'ws://h:1', '--data', 'task:copy', '--model', 'models/tiny', '--device', 'cuda', '--name', 'me', '--out', '/run/final-adapter', '--events', '-',
    ]);
    assert.deepEqual(aggregateArgs({ method: 'fedex', base: '/b', adapters: ['/a1', '/a2'], out: '/o', device: 'cpu', weights: [3, 1] }), [
      'aggregate', '--method', 'fedex', '--base', '/b', '--adapters', '/a1', '/a2', '--weights', '3,1', '--out', '/o', '--device', 'cpu', '--json',
    ]);
    assert.throws(() => aggregateArgs({ method: 'fedex', base: '/b', adapters: [], out: '/o', device: 'cpu' }), /no adapter folders/);
  });

  test('export', () => {
    assert.deepEqual(exportArgs({ source: '/runs/h', out: '/o', as: 'adapter', device: 'cpu' }), ['export', '/runs/h', '--out', '/o', '--as', 'adapter', '--device', 'cpu', '--json']);
    assert.deepEqual(exportArgs({ source: '/runs/s', out: '/o', as: 'both', method: 'fedit', device: 'cuda', maxRank: 16, maxError: 0.01, force: true }), [
      'export', '/runs/s', '--out', '/o', '--as', 'both', '--method', 'fedit', '--max-rank', '16', '--max-error', '0.01', '--device', 'cuda', '--force', '--json',
    ]);
  });
});

describe("the extension's fedex arguments parse with the CLI's own flag tables", () => {
  // Every flag the extension generates must exist in the command's table with the right kind; a
  // renamed or removed CLI flag fails here, not in a user's editor.
  const commands = new Map([hostCommand, joinCommand, simulateCommand, aggregateCommand, exportCommand].map((c) => [c.name, c]));
  const parse = (argv: readonly string[]): ParsedArgs => {
    const command = commands.get(argv[0]);
    assert.ok(command?.parse !== undefined, `no parser for fedex ${argv[0]}`);
    return command.parse(argv.slice(1));
  };
  const varied: FedexSettings[] = [
    DEFAULT_SETTINGS,
    { ...DEFAULT_SETTINGS, model: '/models/qwen', data: '/data/train.jsonl', targetModules: ['q_proj', 'v_proj'], manualRounds: true, method: 'ffa', bindAddress: '0.0.0.0', device: 'webgpu' },
    { ...DEFAULT_SETTINGS, method: 'fedex', residualRank: 6 },
  ];
  for (const s of varied) {
    test(`settings ${s === DEFAULT_SETTINGS ? 'by default' : s.residualRank > 0 ? 'with a residual rank' : 'all set'}`, () => {
      const host = parse(hostArgs(s, { out: '/runs/h' }));
      assert.equal(host.values['residual-rank'], s.residualRank > 0 ? String(s.residualRank) : undefined);
      assert.equal(parse(simulateArgs(s, { out: '/runs/s' })).values['residual-rank'], s.residualRank > 0 ? String(s.residualRank) : undefined);
      assert.equal(host.values.token, undefined, 'no token on the command line');
      assert.equal(host.values.rounds, String(s.rounds));
      assert.equal(host.values['min-clients'], String(s.minClients));
      assert.equal(host.values.method, s.method);
      assert.equal(host.values['manual-rounds'], s.manualRounds ? true : undefined);
      const join = parse(joinArgs(s, { url: 'ws://127.0.0.1:7777/', name: 'me', out: '/out/a' }));
      assert.deepEqual(join.positionals, ['ws://127.0.0.1:7777/']);
      assert.equal(join.values.token, undefined, 'the token travels in FEDEX_TOKEN, not argv');
      assert.equal(join.values.model, s.model === '' ? undefined : s.model);
      const sim = parse(simulateArgs(s, { out: '/runs/s', methods: ['fedex', 'fedit'], clients: 3 }));
      assert.equal(sim.values.methods, 'fedex,fedit');
      assert.equal(sim.values['local-steps'], String(s.localSteps));
      const agg = parse(aggregateArgs({ method: 'fedex', base: '/b', adapters: ['/a1', '/a2'], out: '/o', device: 'cpu', weights: [0.5, 0.5], force: true }));
      assert.deepEqual(agg.values.adapters, ['/a1', '/a2']);
      const hostRun = parse(exportArgs({ source: '/runs/h', out: '/exports/e', as: 'adapter', device: s.device }));
      assert.deepEqual(hostRun.positionals, ['/runs/h']);
      assert.equal(hostRun.values.method, undefined);
      for (const as of EXPORT_KINDS) {
        const simRun = parse(exportArgs({ source: '/runs/s', out: '/exports/e', as, method: s.method, device: s.device, maxRank: 8, maxError: 0.001, force: true }));
        assert.deepEqual(simRun.positionals, ['/runs/s']);
        assert.deepEqual([simRun.values.out, simRun.values.as, simRun.values.method, simRun.values['max-rank'], simRun.values['max-error'], simRun.values.device, simRun.values.force, simRun.values.json],
          ['/exports/e', as, s.method, '8', '0.001', s.device, true, true]);
      }
    });
  }
});
