import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findAdapterFolders, runStamp, summarizeAggregateReport } from '../../src/extension/adapterFiles.js';

function adapter(dir: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'adapter_config.json'), '{}');
  writeFileSync(join(dir, 'adapter_model.safetensors'), '');
}

describe('adapter files', () => {
  test('finds PEFT folders, global ones first and the latest round first; half folders are not adapters', async () => {
    // prepare
    const root = mkdtempSync(join(tmpdir(), 'fedex-adapters-'));
    adapter(join(root, 'adapters', 'fedex', 'round-001', 'global'));
    adapter(join(root, 'adapters', 'fedex', 'round-002', 'global'));
    adapter(join(root, 'adapters', 'fedex', 'round-002', 'clients', 'client-1'));
    mkdirSync(join(root, 'half'));
    writeFileSync(join(root, 'half', 'adapter_config.json'), '{}');
    adapter(join(root, 'a', 'b', 'c', 'd', 'e', 'too-deep'));
    // act
    const found = await findAdapterFolders(root, 5);
    // assert
    assert.deepEqual(found.map((p) => p.slice(root.length + 1)), [
      'adapters/fedex/round-002/global',
      'adapters/fedex/round-001/global',
      'adapters/fedex/round-002/clients/client-1',
    ]);
  });

  test('runStamp and the aggregate summary', () => {
    assert.equal(runStamp(new Date(2025, 0, 2, 3, 4, 5)), '20250102-030405');
    const report = { method: 'fedex', exactMethod: true, modules: [{}, {}], summary: { total: { relativeDeviation: 0.1234 }, maxExactnessRelativeError: 2e-7, allWithinTolerance: true } };
    assert.equal(summarizeAggregateReport(JSON.stringify(report)), 'fedex: 2 modules aggregated. Plain averaging would lose 12.3% of the ideal update. Exact to float32 round-off (max relative error 2.0e-7).');
    assert.match(summarizeAggregateReport('not json'), /could not be read/);
  });
});
