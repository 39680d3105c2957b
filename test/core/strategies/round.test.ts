import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { aggregateModules } from '../../../src/core/strategies/round.js';
import { summarizeDeviations } from '../../../src/core/deviation.js';
import type { ClientAdapterResult } from '../../../src/core/strategies/round.js';
import { createStrategy } from '../../../src/core/strategies/registry.js';
import type { AggregationStrategy, ClientFailure, ModuleAggregate, ModuleGlobalState } from '../../../src/core/strategies/types.js';
import type { LoraFactors } from '../../../src/core/lora.js';
import { createRng } from '../../../src/core/random.js';
import { randomClients, spec } from '../reference.js';

function fixture() {
  const specs = [
    spec('transformer.h.0.attn.c_attn', 12, 4, 2, 'conv1d'),
    spec('transformer.h.0.attn.c_proj', 4, 4, 2, 'conv1d'),
    spec('transformer.h.1.attn.c_attn', 12, 4, 2, 'conv1d'),
  ];
  const rng = createRng(17);
  const perModule = specs.map((s) => randomClients(s, 3, rng));
  const results: ClientAdapterResult[] = [0, 1, 2].map((client) => ({
    client,
    numExamples: 10 * (client + 1),
    modules: new Map<string, LoraFactors>(specs.map((s, m) => [s.name, perModule[m][client]])),
  }));
  const globals: ModuleGlobalState[] = specs.map((s) => ({ spec: s, factors: null }));
  return { specs, results, globals };
}

/** Every module the round streams, in order; null when the round has nothing usable. */
async function collect(strategy: AggregationStrategy, round: number, globals: readonly ModuleGlobalState[], results: readonly ClientAdapterResult[], failures: readonly ClientFailure[]): Promise<ModuleAggregate[] | null> {
  const stream = await aggregateModules(strategy, round, globals, results, failures);
  if (stream === null) return null;
  const modules: ModuleAggregate[] = [];
  for await (const m of stream) modules.push(m);
  return modules;
}

describe('whole-model rounds', () => {
  test('streams module by module, in order, each with its base update', async () => {
    const { results, globals } = fixture();
    const stream = await aggregateModules(createStrategy('fedex', { weighting: 'examples' }), 2, globals, results, []);
    assert.ok(stream !== null);
    const names: string[] = [];
    for await (const m of stream) {
      names.push(m.global.spec.name);
      assert.ok(m.baseUpdate !== null && m.baseUpdate.layout === 'conv1d');
      assert.deepEqual(m.metrics.weights, [1 / 6, 2 / 6, 3 / 6]);
    }
    assert.deepEqual(names, globals.map((g) => g.spec.name));
  });

  test('every module carries its base update and the failures; the metrics summarise deviation by type and layer', async () => {
    const { results, globals } = fixture();
    const modules = await collect(createStrategy('fedex'), 1, globals, results, [{ client: 3, reason: 'timeout' }]);
    assert.ok(modules !== null);
    const metrics = modules.map((m) => m.metrics);
    const summary = summarizeDeviations(metrics);

    assert.equal(modules.filter((m) => m.baseUpdate !== null).length, 3);
    assert.deepEqual(summary.byLayer.map((l) => [l.layer, l.modules]), [[0, 2], [1, 1]]);
    assert.deepEqual(summary.byType.map((t) => [t.moduleType, t.modules]), [['qkv', 2], ['o', 1]]);
    assert.ok(metrics.every((m) => m.failures === 1 && m.clients === 3));
  });

  test('an empty round is nothing usable; missing or unknown modules are named', async () => {
    const { results, globals } = fixture();
    const missing = results.map((r, i) => (i === 1 ? { ...r, modules: new Map([...r.modules].slice(1)) } : r));
    const extra = results.map((r, i) => (i === 2 ? { ...r, clientId: 'zed', modules: new Map([...r.modules, ['lm_head', r.modules.values().next().value!]]) } : r));

    assert.equal(await aggregateModules(createStrategy('fedit'), 1, globals, [], [{ client: 0, reason: 'crashed' }]), null);
    await assert.rejects(collect(createStrategy('fedit'), 1, globals, missing, []), /client 1 sent no factors for module 'transformer\.h\.0\.attn\.c_attn'/);
    await assert.rejects(collect(createStrategy('fedit'), 1, globals, extra, []), /client 2 \('zed'\) sent module 'lm_head', which the global adapter does not have/);
  });

  test('strategies by name', () => {
    assert.equal(createStrategy('ffa').name, 'ffa');
    assert.equal(createStrategy('fedex').updatesBase, true);
    assert.equal(createStrategy('fedit').exact, false);
    assert.throws(() => createStrategy('fedprox'), /unknown strategy 'fedprox' \(expected one of fedex, fedit, ffa, flora, fedsb\)/);
  });
});
