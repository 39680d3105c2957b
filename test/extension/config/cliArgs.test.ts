import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { aggregateArgs, DEFAULT_SETTINGS, exportArgs, hostArgs, joinArgs, readSettings, simulateArgs, tokenEnv, validateFederationUrl, type FedexSettings, clientsArgs, keygenArgs } from '../../../src/extension/config/cliArgs.js';
import type { ParsedArgs } from '../../../src/cli/args.js';
import { aggregateCommand } from '../../../src/cli/commands/aggregate.js';
import { exportCommand } from '../../../src/cli/commands/export.js';
import { EXPORT_KINDS } from '../../../src/federation/export/exportFederation.js';
import { clientsCommand } from '../../../src/cli/commands/clients.js';
import { keygenCommand } from '../../../src/cli/commands/keygen.js';
import { hostCommand } from '../../../src/cli/commands/host.js';
import { joinCommand } from '../../../src/cli/commands/join.js';
import { simulateCommand } from '../../../src/cli/commands/simulate.js';
import { privacyFlags } from '../../../src/cli/privacyFlags.js';

const getter = (values: Record<string, unknown>) => (key: string): unknown => values[key];

describe('readSettings', () => {
  test('defaults when nothing is set', () => {
    const { settings, problems } = readSettings(getter({}));
    assert.deepEqual(settings, DEFAULT_SETTINGS);
    assert.deepEqual(problems, []);
  });

  test('bad values fall back to the default and are named', () => {
    const { settings, problems } = readSettings(getter({
      rank: 0,
      alpha: -1,
      port: 70000,
      method: 'fedprox',
      rounds: 2.5,
      targetModules: 'q_proj, v_proj',
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
  // What simulate and host both pass from s: the adapter's shape, then the model.
  const loraAndModel = ['--rank', '4', '--alpha', '8', '--target-modules', 'c_attn,c_proj', '--model', 'models/tiny'];

  test('simulate', () => {
    assert.deepEqual(simulateArgs(s, { out: '/o', methods: ['fedex', 'fedit'], clients: 3 }), [
      'simulate',
      '--seeds',
      '1',
      '--methods',
      'fedex,fedit',
      '--clients',
      '3',
      '--rounds',
      '3',
      '--local-steps',
      '7',
      ...loraAndModel,
      '--data',
      'task:copy',
      '--device',
      'cuda',
      '--out',
      '/o',
      '--events',
      '-',
    ]);
    // empty model/data/targets are left to the CLI's defaults
    const bare = simulateArgs(DEFAULT_SETTINGS, { out: '/o' });
    assert.ok(!bare.includes('--model') && !bare.includes('--data') && !bare.includes('--target-modules') && !bare.includes('--methods'));
  });

  test('host', () => {
    assert.deepEqual(hostArgs(s, { out: '/run' }), [
      'host',
      '--host',
      '0.0.0.0',
      '--port',
      '9000',
      '--rounds',
      '3',
      '--min-clients',
      '2',
      '--method',
      'fedit',
      '--local-steps',
      '7',
      '--max-update-ratio',
      '1000',
      ...loraAndModel,
      '--out',
      '/run',
      '--events',
      '-',
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

  test('fedex.aggregation: --aggregation (and --trim for a trimmed mean) for host, simulate and aggregate, parsed by the CLI; nothing for the mean', () => {
    const after = (args: string[], flag: string): string | undefined => (args.includes(flag) ? args[args.indexOf(flag) + 1] : undefined);
    const median = { ...s, aggregation: 'median' as const };
    const trimmed = { ...s, aggregation: 'trimmed-mean' as const, aggregationTrim: 0.25 };
    for (const [settings, rule, trim] of [[median, 'median', undefined], [trimmed, 'trimmed-mean', '0.25']] as const) {
      const host = hostArgs(settings, { out: '/run' });
      const sim = simulateArgs(settings, { out: '/o' });
      const agg = aggregateArgs({ method: 'fedex', base: '/b', adapters: ['/a1', '/a2'], out: '/o', device: 'cpu', aggregation: settings.aggregation, trim: settings.aggregationTrim });
      for (const [args, command] of [[host, hostCommand], [sim, simulateCommand], [agg, aggregateCommand]] as const) {
        assert.deepEqual([after(args, '--aggregation'), after(args, '--trim')], [rule, trim], args.join(' '));
        const parsed = command.parse!(args.slice(1));
        assert.deepEqual([parsed.values.aggregation, parsed.values.trim], [rule, trim], `fedex ${args[0]} parses it`);
      }
    }
    for (const args of [hostArgs(s, { out: '/run' }), simulateArgs(s, { out: '/o' }), aggregateArgs({ method: 'fedex', base: '/b', adapters: ['/a'], out: '/o', device: 'cpu', aggregation: 'mean', trim: 0.2 })]) {
      assert.ok(!args.includes('--aggregation') && !args.includes('--trim'), 'the mean is the CLI default');
    }
    assert.deepEqual(readSettings(getter({ aggregation: 'trimmed-mean', aggregationTrim: 0.3 })).settings.aggregationTrim, 0.3);
    const bad = readSettings(getter({ aggregation: 'mode', aggregationTrim: 0.5 }));
    assert.deepEqual([bad.settings.aggregation, bad.settings.aggregationTrim], ['mean', 0.2]);
    assert.match(bad.problems.join(' | '), /fedex\.aggregation must be one of mean, median, trimmed-mean, got 'mode'/);
    assert.match(bad.problems.join(' | '), /fedex\.aggregationTrim must be a number in \[0, 0\.5\), got 0\.5/);
  });

  test('fedex.dpClip/dpNoise/dpDelta: --dp-clip --dp-noise --dp-delta for host and simulate, read back by the CLI; nothing at dpClip 0', () => {
    const dp = { ...s, method: 'fedex' as const, dpClip: 0.5, dpNoise: 1.2, dpDelta: 1e-6 };
    for (const [args, command] of [[hostArgs(dp, { out: '/run' }), hostCommand], [simulateArgs(dp, { out: '/o' }), simulateCommand]] as const) {
      const parsed = command.parse!(args.slice(1));
      assert.deepEqual(privacyFlags(parsed, args[0]), { clip: 0.5, noiseMultiplier: 1.2, delta: 1e-6 }, args.join(' '));
    }
    for (const args of [hostArgs(s, { out: '/run' }), simulateArgs(s, { out: '/o' })]) assert.ok(!args.some((a) => a.startsWith('--dp-')), 'DP off by default');
    assert.deepEqual(readSettings(getter({ dpClip: 2, dpNoise: 0, dpDelta: 0.001 })).settings, { ...DEFAULT_SETTINGS, dpClip: 2, dpNoise: 0, dpDelta: 0.001 });
    const bad = readSettings(getter({ dpClip: -1, dpNoise: 'loud', dpDelta: 1 }));
    assert.deepEqual([bad.settings.dpClip, bad.settings.dpNoise, bad.settings.dpDelta], [0, 1, 1e-5]);
    for (const key of ['fedex.dpClip must be a number ≥ 0, got -1', 'fedex.dpNoise must be a number ≥ 0, got "loud"', 'fedex.dpDelta must be a number in (0, 1), got 1']) {
      assert.ok(bad.problems.some((p) => p.startsWith(key)), `${key}: ${bad.problems.join(' | ')}`);
    }
  });

  test('fedex.manualRounds is read as a boolean; anything else falls back to false and is named', () => {
    assert.equal(readSettings(getter({ manualRounds: true })).settings.manualRounds, true);
    const bad = readSettings(getter({ manualRounds: 'yes' }));
    assert.equal(bad.settings.manualRounds, false);
    assert.match(bad.problems.join(' | '), /^fedex\.manualRounds must be true or false/);
  });

  test('join and aggregate', () => {
    assert.deepEqual(joinArgs(s, { url: 'ws://h:1', name: 'me', out: '/run/final-adapter' }), [
      'join',
      'ws://h:1',
      '--data',
      'task:copy',
      '--model',
      'models/tiny',
      '--device',
      'cuda',
      '--name',
      'me',
      '--out',
      '/run/final-adapter',
      '--events',
      '-',
    ]);
    assert.deepEqual(aggregateArgs({ method: 'fedex', base: '/b', adapters: ['/a1', '/a2'], out: '/o', device: 'cpu', weights: [3, 1] }), [
      'aggregate',
      '--method',
      'fedex',
      '--base',
      '/b',
      '--adapters',
      '/a1',
      '/a2',
      '--weights',
      '3,1',
      '--out',
      '/o',
      '--device',
      'cpu',
      '--json',
    ]);
    assert.throws(() => aggregateArgs({ method: 'fedex', base: '/b', adapters: [], out: '/o', device: 'cpu' }), /no adapter folders/);
  });

  test('TLS settings: --cert, --key, --client-ca for a host; --ca, --client-cert, --client-key for a join; nothing when empty', () => {
    const { settings, problems } = readSettings(getter({
      hostCert: ' certs/server.pem ',
      hostKey: 'certs/server-key.pem',
      hostClientCa: '/pki/ca.pem',
      joinCa: 'certs/ca.pem',
      joinClientCert: 'me.pem',
      joinClientKey: 'me-key.pem',
    }));
    assert.deepEqual(problems, []);
    const host = hostArgs(settings, { out: '/run' });
    const after = (args: string[], flag: string): string | undefined => (args.includes(flag) ? args[args.indexOf(flag) + 1] : undefined);
    assert.deepEqual(['--cert', '--key', '--client-ca'].map((f) => after(host, f)), ['certs/server.pem', 'certs/server-key.pem', '/pki/ca.pem']);
    const joined = joinArgs(settings, { url: 'wss://h:1/' });
    assert.deepEqual(['--ca', '--client-cert', '--client-key'].map((f) => after(joined, f)), ['certs/ca.pem', 'me.pem', 'me-key.pem']);
    assert.ok(!host.includes('--client-cert') && !joined.includes('--client-ca'), 'each command gets its own side');
    for (const flag of ['--cert', '--key', '--client-ca', '--ca', '--client-cert', '--client-key']) {
      assert.ok(![...hostArgs(DEFAULT_SETTINGS, { out: '/run' }), ...joinArgs(DEFAULT_SETTINGS, { url: 'ws://h:1/' })].includes(flag), `${flag} only when set`);
    }
    const bad = readSettings(getter({ joinClientCert: 42 }));
    assert.equal(bad.settings.joinClientCert, '');
    assert.match(bad.problems.join(' | '), /^fedex\.joinClientCert must be a string/);
  });

  test('export', () => {
    assert.deepEqual(exportArgs({ source: '/runs/h', out: '/o', as: 'adapter', device: 'cpu' }), ['export', '/runs/h', '--out', '/o', '--as', 'adapter', '--device', 'cpu', '--json']);
    assert.deepEqual(exportArgs({ source: '/runs/s', out: '/o', as: 'both', method: 'fedit', device: 'cuda', maxRank: 16, maxError: 0.01, force: true }), [
      'export',
      '/runs/s',
      '--out',
      '/o',
      '--as',
      'both',
      '--method',
      'fedit',
      '--max-rank',
      '16',
      '--max-error',
      '0.01',
      '--device',
      'cuda',
      '--force',
      '--json',
    ]);
  });
});

describe("the extension's fedex arguments parse with the CLI's own flag tables", () => {
  // Every flag the extension generates must exist in the command's table with the right kind; a
  // renamed or removed CLI flag fails here, not in a user's editor.
  const commands = new Map([hostCommand, joinCommand, simulateCommand, aggregateCommand, exportCommand, clientsCommand, keygenCommand].map((c) => [c.name, c]));
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
        assert.deepEqual([simRun.values.out, simRun.values.as, simRun.values.method, simRun.values['max-rank'], simRun.values['max-error'], simRun.values.device, simRun.values.force, simRun.values.json], ['/exports/e', as, s.method, '8',
          '0.001', s.device, true, true]);
      }
    });
  }

  test('TLS settings parse as fedex host --cert --key --client-ca and fedex join --ca --client-cert --client-key', () => {
    const s = { ...DEFAULT_SETTINGS, hostCert: 's.pem', hostKey: 's-key.pem', hostClientCa: 'ca.pem', joinCa: 'server-ca.pem', joinClientCert: 'c.pem', joinClientKey: 'c-key.pem' };
    const host = parse(hostArgs(s, { out: '/runs/h' }));
    assert.deepEqual([host.values.cert, host.values.key, host.values['client-ca']], ['s.pem', 's-key.pem', 'ca.pem']);
    const join = parse(joinArgs(s, { url: 'wss://127.0.0.1:7777/' }));
    assert.deepEqual([join.values.ca, join.values['client-cert'], join.values['client-key']], ['server-ca.pem', 'c.pem', 'c-key.pem']);
  });

  test('identity settings parse as fedex host --clients and fedex join --identity (nothing when empty); fedex clients and keygen arguments parse', () => {
    assert.equal(parse(hostArgs(DEFAULT_SETTINGS, { out: '/runs/h' })).values.clients, undefined);
    assert.equal(parse(joinArgs(DEFAULT_SETTINGS, { url: 'ws://127.0.0.1:7777/' })).values.identity, undefined);
    const s = { ...DEFAULT_SETTINGS, hostClients: 'clients.json', joinIdentity: 'me.key' };
    assert.equal(parse(hostArgs(s, { out: '/runs/h' })).values.clients, 'clients.json');
    assert.equal(parse(joinArgs(s, { url: 'ws://127.0.0.1:7777/' })).values.identity, 'me.key');
    const add = parse(clientsArgs('/r/clients.json', { add: '/k/alice.pub' }));
    assert.deepEqual([add.positionals, add.values.clients], [['add', '/k/alice.pub'], '/r/clients.json']);
    const revoke = parse(clientsArgs('/r/clients.json', { revoke: 'alice' }));
    assert.deepEqual(revoke.positionals, ['revoke', 'alice']);
    const list = parse(clientsArgs('/r/clients.json', 'list'));
    assert.deepEqual([list.positionals, list.values.json], [['list'], true]);
    const keygen = parse(keygenArgs('alice', '/k/alice.key'));
    assert.deepEqual([keygen.values['client-id'], keygen.values.out], ['alice', '/k/alice.key']);
  });
});

describe('fedex.basePrecision', () => {
  test('--base-precision for simulate and join, parsed by the CLI; nothing at fp32; a bad value is named', () => {
    const s = { ...DEFAULT_SETTINGS, basePrecision: 'int4' as const };
    for (const [command, args] of [[simulateCommand, simulateArgs(s, { out: '/o' })], [joinCommand, joinArgs(s, { url: 'ws://127.0.0.1:8765' })]] as const) {
      assert.equal(command.parse!(args.slice(1)).values['base-precision'], 'int4');
    }
    assert.ok(!simulateArgs(DEFAULT_SETTINGS, { out: '/o' }).includes('--base-precision'));
    const { settings, problems } = readSettings(getter({ basePrecision: 'fp8' }));
    assert.equal(settings.basePrecision, 'fp32');
    assert.match(problems.join(' | '), /fedex\.basePrecision must be one of fp32, fp16, bf16, int4, got 'fp8'/);
  });
});

describe('fedex.recompute', () => {
  test('--recompute for simulate and join, parsed by the CLI; nothing at auto; a bad value is named', () => {
    const s = { ...DEFAULT_SETTINGS, recompute: 'on' as const };
    for (const [command, args] of [[simulateCommand, simulateArgs(s, { out: '/o' })], [joinCommand, joinArgs(s, { url: 'ws://127.0.0.1:8765' })]] as const) {
      assert.equal(command.parse!(args.slice(1)).values.recompute, 'on');
    }
    assert.ok(!joinArgs(DEFAULT_SETTINGS, { url: 'ws://127.0.0.1:8765' }).includes('--recompute'));
    const { settings, problems } = readSettings(getter({ recompute: 'sometimes' }));
    assert.equal(settings.recompute, 'auto');
    assert.match(problems.join(' | '), /fedex\.recompute must be one of auto, on, off, got 'sometimes'/);
  });
});

describe('fedex.hostRanks and fedex.joinRank', () => {
  test('fedex host --ranks and fedex join --rank, parsed by the CLI; nothing by default; bad values named', () => {
    const s = { ...DEFAULT_SETTINGS, rank: 16, hostRanks: [4, 8], joinRank: 4 };
    const host = hostCommand.parse!(hostArgs(s, { out: '/runs/h' }).slice(1));
    const join = joinCommand.parse!(joinArgs(s, { url: 'ws://127.0.0.1:8765' }).slice(1));
    const { settings, problems } = readSettings(getter({ hostRanks: [8, 4, 8], joinRank: 2 }));
    const bad = readSettings(getter({ hostRanks: [4, 0], joinRank: -1 }));

    assert.deepEqual([host.values.ranks, host.values.rank], ['4,8', '16']);
    assert.equal(join.values.rank, '4');
    assert.ok(!hostArgs(DEFAULT_SETTINGS, { out: '/runs/h' }).includes('--ranks'));
    assert.ok(!joinArgs(DEFAULT_SETTINGS, { url: 'ws://127.0.0.1:8765' }).includes('--rank'));
    assert.deepEqual([settings.hostRanks, settings.joinRank, problems], [[4, 8], 2, []]);
    assert.deepEqual([bad.settings.hostRanks, bad.settings.joinRank], [[], 0]);
    assert.match(bad.problems.join(' | '), /fedex\.hostRanks must be a list of integers in 1\.\.4096 \(e\.g\. \[4, 8\]\), got \[4,0\]/);
    assert.match(bad.problems.join(' | '), /fedex\.joinRank/);
  });
});
