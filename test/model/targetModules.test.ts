import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ModelError } from '../../src/model/errors.js';
import { isPlainModuleName, moduleNames, peftTargetModules, selectTargetModules, targetMatcher } from '../../src/model/targetModules.js';

const GPT2 = [0, 1].flatMap((l) => [
  `transformer.h.${l}.attn.c_attn`,
  `transformer.h.${l}.attn.c_proj`,
  `transformer.h.${l}.mlp.c_fc`,
  `transformer.h.${l}.mlp.c_proj`,
]);

describe('target_modules matching (PEFT rules)', () => {
  test('a name matches paths that end with .name, not paths that merely contain it', () => {
    assert.deepEqual(selectTargetModules(GPT2, ['c_attn']), ['transformer.h.0.attn.c_attn', 'transformer.h.1.attn.c_attn']);
    assert.equal(targetMatcher(['attn'])('transformer.h.0.attn.c_attn'), false);
    assert.equal(targetMatcher(['c_attn'])('transformer.h.0.attn.xc_attn'), false);
  });

  test('c_proj matches both the attention and the MLP projection; a dotted suffix picks one', () => {
    assert.equal(selectTargetModules(GPT2, ['c_proj']).length, 4);
    assert.deepEqual(selectTargetModules(GPT2, ['mlp.c_proj']), ['transformer.h.0.mlp.c_proj', 'transformer.h.1.mlp.c_proj']);
    assert.deepEqual(selectTargetModules(GPT2, ['c_attn', 'c_fc']).length, 4);
  });

  test('an exact full path matches only itself', () => {
    assert.deepEqual(selectTargetModules(GPT2, ['transformer.h.1.attn.c_attn']), ['transformer.h.1.attn.c_attn']);
  });

  test('a single non-plain entry is a regex matched against the whole path (re.fullmatch)', () => {
    assert.equal(isPlainModuleName('.*h\\.0\\..*c_attn'), false);
    assert.deepEqual(selectTargetModules(GPT2, ['.*h\\.0\\..*c_attn']), ['transformer.h.0.attn.c_attn']);
    assert.deepEqual(selectTargetModules(GPT2, ['.*\\.(c_fc|c_attn)']), GPT2.filter((p) => /c_fc|c_attn/.test(p)));
    // Full match: a pattern matching only a prefix of the path selects nothing.
    assert.throws(() => selectTargetModules(GPT2, ['transformer\\.h\\.0']), (e: unknown) => e instanceof ModelError && e.code === 'TARGET_NOT_FOUND');
  });

  test('all-linear selects every candidate', () => {
    assert.deepEqual(selectTargetModules(GPT2, ['all-linear']), GPT2);
  });

  test('nothing matched: TARGET_NOT_FOUND names the targets and lists the candidate module names', () => {
    assert.throws(() => selectTargetModules(GPT2, ['q_proj', 'v_proj']), (e: unknown) => {
      assert.ok(e instanceof ModelError);
      assert.equal(e.code, 'TARGET_NOT_FOUND');
      assert.match(e.message, /\['q_proj', 'v_proj'\]/);
      assert.match(e.message, /module names: c_attn, c_proj, c_fc/);
      assert.match(e.message, /transformer\.h\.0\.attn\.c_attn/);
      return true;
    });
  });

  test('an invalid regular expression is INVALID_TARGET_PATTERN', () => {
    assert.throws(() => selectTargetModules(GPT2, ['(c_attn']), (e: unknown) => e instanceof ModelError && e.code === 'INVALID_TARGET_PATTERN' && /\(c_attn/.test(e.message));
  });

  test('moduleNames lists distinct last components in order', () => {
    assert.deepEqual(moduleNames(GPT2), ['c_attn', 'c_proj', 'c_fc']);
  });
});

describe('peftTargetModules: what an adapter_config.json names', () => {
  test('plain names are kept; all-linear and a regex become the resolved paths, which PEFT matches exactly', () => {
    assert.deepEqual(peftTargetModules(['c_attn', 'mlp.c_proj'], ['transformer.h.0.attn.c_attn', 'transformer.h.0.mlp.c_proj']), ['c_attn', 'mlp.c_proj']);
    const all = selectTargetModules(GPT2, ['all-linear']);
    assert.deepEqual(peftTargetModules(['all-linear'], all), GPT2);
    const only0 = selectTargetModules(GPT2, ['.*\\.0\\.attn\\.c_attn']);
    assert.deepEqual(only0, ['transformer.h.0.attn.c_attn']);
    const written = peftTargetModules(['.*\\.0\\.attn\\.c_attn'], only0);
    assert.deepEqual(written, ['transformer.h.0.attn.c_attn']);
    // PEFT's list rule on what was written selects exactly the adapted modules again.
    assert.deepEqual(selectTargetModules(GPT2, written), only0);
  });
});
