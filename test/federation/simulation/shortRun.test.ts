// A simulated federation that ends short says why: the round's failures (here a client whose training
// throws) are named in the error, not only "0 of 2 rounds completed".
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { createTypeScriptBackend } from '../../../src/core/product.js';
import { FederationClient } from '../../../src/federation/client/client.js';
import type { LocalTrainer } from '../../../src/federation/client/trainer.js';
import { NULL_SINK } from '../../../src/federation/events/eventSink.js';
import { runFederated } from '../../../src/federation/simulation/runFederated.js';
import { createSyntheticWorkload } from '../../../src/federation/simulation/syntheticWorkload.js';
import type { SimulationWorkload } from '../../../src/federation/simulation/workload.js';
import { suiteTempDir } from '../../helpers/tempDir.js';

describe('runFederated: a run that ends short names its failures', { timeout: 60_000 }, () => {
  const tmp = suiteTempDir('short-run');

  test('a client whose training throws: the error names the round, the client and the reason', async () => {
    const synthetic = createSyntheticWorkload({ rank: 2, alpha: 4, layers: 1, hidden: 8, seed: 3 });
    // The second client's trainer fails every round (fault injection around the real synthetic trainer).
    const workload: SimulationWorkload = {
      ...synthetic,
      createClient(part, connection, onProgress) {
        if (part?.index !== 1) return synthetic.createClient(part, connection, onProgress);
        const trainer: LocalTrainer = {
          train: async (): Promise<never> => {
            throw new Error('injected: out of memory');
          },
        };
        return { client: new FederationClient({ ...connection, base: synthetic.base, trainer }), trainer };
      },
    };

    await assert.rejects(runFederated({
      method: 'fedex',
      workload,
      runDir: join(tmp.path, 'run'),
      sink: NULL_SINK,
      backend: createTypeScriptBackend(),
      clients: 2,
      rounds: 2,
      localSteps: 1,
      batchSize: 2,
      lr: 0.01,
      rank: 2,
      alpha: 4,
      seed: 1,
      roundTimeoutMs: 20_000,
      initial: { loss: NaN, accuracy: null, exactMatch: null, examples: 0 },
    }), (err: Error) => /fedex: only 0 of 2 rounds completed \(.*round 1: client-2: training failed: injected: out of memory/.test(err.message) || assert.fail(err.message));
  });
});
