import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateToken, tokensEqual } from '../../../src/federation/protocol/tokens.js';
import { STRING_FORMATS } from '../../../src/federation/protocol/schema.js';

test('generateToken: 256 bits, URL-safe, valid as a hello token, never repeated', () => {
  const tokens = Array.from({ length: 200 }, () => generateToken());

  for (const t of tokens) {
    assert.match(t, /^[A-Za-z0-9_-]{43}$/);
    assert.ok(STRING_FORMATS.token.test(t));
  }
  assert.equal(new Set(tokens).size, tokens.length);
  assert.equal(generateToken(16).length, 22);
  assert.throws(() => generateToken(8), /16\.\.256/);
});

test('tokensEqual: equal, unequal, different lengths, prefixes, non-strings', () => {
  const token = generateToken();

  assert.equal(tokensEqual(token, token), true);
  assert.equal(tokensEqual(String(token), `${token}`), true);
  assert.equal(tokensEqual(`${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`, token), false);
  assert.equal(tokensEqual(token.slice(0, -1), token), false);
  assert.equal(tokensEqual(`${token}x`, token), false);
  assert.equal(tokensEqual('', token), false);
  assert.equal(tokensEqual('', ''), true);
  assert.equal(tokensEqual('é', 'e\u0301'), false);
  assert.equal(tokensEqual(undefined, token), false);
  assert.equal(tokensEqual(42, '42'), false);
});
