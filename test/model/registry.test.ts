import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ModelError } from '../../src/model/errors.js';
import { architectureFor, supportedModelTypes } from '../../src/model/registry.js';

describe('architecture registry', () => {
  test('gpt2 is registered with its tasks and PEFT default targets', () => {
    const arch = architectureFor({ model_type: 'gpt2' });
    assert.ok(arch.modelTypes.includes('gpt2'));
    assert.deepEqual(arch.defaultTargetModules, ['c_attn']);
    assert.deepEqual([...arch.tasks].sort(), ['causal-lm', 'sequence-classification']);
    assert.ok(supportedModelTypes().includes('gpt2'));
  });

  test('an unknown or missing model_type is UNSUPPORTED_MODEL listing the supported types', () => {
    assert.throws(() => architectureFor({ model_type: 't5' }), (e: unknown) => e instanceof ModelError && e.code === 'UNSUPPORTED_MODEL' && /'t5'/.test(e.message) && /supported: .*gpt2/.test(e.message));
    assert.throws(() => architectureFor({}), (e: unknown) => e instanceof ModelError && e.code === 'UNSUPPORTED_MODEL' && /model_type/.test(e.message));
  });
});
