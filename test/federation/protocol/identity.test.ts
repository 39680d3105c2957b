// The signed challenge of protocol 1.2 (docs/protocol.md §7.2): the exact bytes signed, a signature
// verifies only for its own nonce, client id, key, base model and time, and malformed input is
// refused without throwing.
import assert from 'node:assert/strict';
import { generateKeyPairSync, verify } from 'node:crypto';
import { describe, test } from 'node:test';
import { challengeBytes, newNonce, parsePublicKey, publicKeyText, signChallenge, verifyChallenge, type ChallengeContext } from '../../../src/federation/protocol/identity.js';

const { privateKey } = generateKeyPairSync('ed25519');
const publicKey = publicKeyText(privateKey);
const context: ChallengeContext = { nonce: newNonce(), clientId: 'alice', publicKey, baseModelHash: 'ab'.repeat(32), signedAt: 1_765_000_000_000 };

describe('signed challenges (Ed25519)', () => {
  test('the signed bytes are the six lines of §7.2, and the signature is plain Ed25519 over them', () => {
    assert.equal(challengeBytes(context).toString('utf8'), `fedex-challenge-v1\n${context.nonce}\nalice\n${publicKey}\n${'ab'.repeat(32)}\n1765000000000`);
    const signature = signChallenge(privateKey, context);
    assert.equal(Buffer.from(signature, 'base64url').length, 64);
    assert.ok(verify(null, challengeBytes(context), parsePublicKey(publicKey), Buffer.from(signature, 'base64url')));
  });

  test('a signature verifies for its own context only', () => {
    const key = parsePublicKey(publicKey);
    const signature = signChallenge(privateKey, context);
    assert.ok(verifyChallenge(key, context, signature));
    for (const change of [{ nonce: newNonce() }, { clientId: 'bob' }, { baseModelHash: 'cd'.repeat(32) }, { signedAt: context.signedAt + 1 }, { publicKey: publicKeyText(generateKeyPairSync('ed25519').privateKey) }]) {
      assert.equal(verifyChallenge(key, { ...context, ...change }, signature), false, JSON.stringify(change));
    }
    const other = parsePublicKey(publicKeyText(generateKeyPairSync('ed25519').privateKey));
    assert.equal(verifyChallenge(other, context, signature), false);
  });

  test('malformed signatures and keys are refused with a reason, never a crash', () => {
    const key = parsePublicKey(publicKey);
    assert.equal(verifyChallenge(key, context, ''), false);
    assert.equal(verifyChallenge(key, context, 'A'.repeat(86)), false);
    assert.equal(verifyChallenge(key, context, '!'.repeat(86)), false);
    assert.throws(() => parsePublicKey('short'), /43 base64url characters/);
    assert.throws(() => publicKeyText(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey), /Ed25519, this one is ec/);
  });
});
