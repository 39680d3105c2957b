// The client registry (`fedex clients`, `fedex host --clients`) and the identity key files
// (`fedex keygen`, `fedex join --identity`): enrolment rules, clear errors for every malformed
// entry, private key files written 0600, and a running coordinator's view following the file.
import assert from 'node:assert/strict';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ClientKeys, enrollClient, ENROLLMENT_FORMAT, ENROLLMENT_VERSION, parseEnrollment, revokeClient, writeEnrollment, type EnrollmentFile } from '../../../src/federation/coordinator/enrollment.js';
import { parsePublicKeyLine, readIdentityFile, writeIdentityFiles } from '../../../src/federation/shared/identityFiles.js';
import { publicKeyText } from '../../../src/federation/protocol/identity.js';
import { makeTempDir } from '../../helpers/tempDir.js';

const EMPTY: EnrollmentFile = { format: ENROLLMENT_FORMAT, version: ENROLLMENT_VERSION, clients: [] };

describe('client registry', () => {
  test('enrol, refuse a second key for an id or a key under two ids, revoke (kept as a record), refuse re-enrolling a revoked id', async () => {
    const dir = await makeTempDir('enroll');
    try {
      const a = await writeIdentityFiles(join(dir.path, 'a.key'), 'a');
      const b = await writeIdentityFiles(join(dir.path, 'b.key'), 'b');
      let f = enrollClient(EMPTY, 'a', a.line.publicKey);
      assert.equal(enrollClient(f, 'a', a.line.publicKey), f, 'enrolling the same key again changes nothing');
      assert.throws(() => enrollClient(f, 'a', b.line.publicKey), /already enrolled with another key/);
      assert.throws(() => enrollClient(f, 'a2', a.line.publicKey), /already enrolled as client 'a'/);
      f = revokeClient(enrollClient(f, 'b', b.line.publicKey), 'a');
      assert.equal(f.clients.length, 2);
      assert.match(f.clients[0].revokedAt ?? '', /^\d{4}-\d\d-\d\dT/);
      assert.throws(() => enrollClient(f, 'a', a.line.publicKey), /was revoked on/);
      assert.throws(() => revokeClient(f, 'zed'), /'zed' is not enrolled \(enrolled: a, b\)/);
    } finally {
      await dir.remove();
    }
  });

  test('malformed registries name the file, the entry and what is wrong', () => {
    assert.throws(() => parseEnrollment('{', 'r.json'), /r\.json is not JSON/);
    assert.throws(() => parseEnrollment('{"format":"x"}', 'r.json'), /not a FedEx client registry/);
    assert.throws(() => parseEnrollment(JSON.stringify({ ...EMPTY, version: 9 }), 'r.json'), /version 9 is not supported/);
    const bad = (c: object): string => JSON.stringify({ ...EMPTY, clients: [c] });
    assert.throws(() => parseEnrollment(bad({ clientId: 'a b', publicKey: 'x', enrolledAt: 't' }), 'r.json'), /clients\[0\]\.clientId/);
    assert.throws(() => parseEnrollment(bad({ clientId: 'a', publicKey: 'x', enrolledAt: 't' }), 'r.json'), /clients\[0\] \('a'\)\.publicKey: an Ed25519 public key is 43/);
  });

  test('key files: private 0600 and readable back; public lines parsed with clear errors', async () => {
    const dir = await makeTempDir('keys');
    try {
      const written = await writeIdentityFiles(join(dir.path, 'x.key'), 'x');
      assert.equal((await stat(join(dir.path, 'x.key'))).mode & 0o777, 0o600);
      const id = await readIdentityFile(join(dir.path, 'x.key'));
      assert.equal(id.clientId, 'x');
      assert.equal(publicKeyText(id.privateKey), written.line.publicKey);
      await assert.rejects(writeIdentityFiles(join(dir.path, 'x.key'), 'x'), /exists; pass --force/);
      assert.deepEqual(parsePublicKeyLine(`ed25519 ${written.line.publicKey} x\n`, 'x.pub'), written.line);
      assert.throws(() => parsePublicKeyLine('ssh-ed25519 AAAA x', 'x.pub'), /x\.pub: a public key line is 'ed25519 <key> <client id>'/);
      await writeFile(join(dir.path, 'bad.key'), 'not json');
      await assert.rejects(readIdentityFile(join(dir.path, 'bad.key')), /is not a FedEx identity key/);
    } finally {
      await dir.remove();
    }
  });

  test('a running view follows the file, and keeps the last good registry when the file turns malformed', async () => {
    const dir = await makeTempDir('keys-view');
    try {
      const path = join(dir.path, 'clients.json');
      const a = await writeIdentityFiles(join(dir.path, 'a.key'), 'a');
      const f = enrollClient(EMPTY, 'a', a.line.publicKey);
      await writeEnrollment(path, f);
      const keys = await ClientKeys.open(path);
      const errors: string[] = [];
      keys.onError = (m) => errors.push(m);
      assert.equal(keys.lookup('a').status, 'enrolled');
      await writeEnrollment(path, revokeClient(f, 'a'));
      assert.equal(await keys.refresh(), true);
      assert.equal(keys.lookup('a').status, 'revoked');
      await writeFile(path, '{ broken');
      assert.equal(await keys.refresh(), false);
      assert.equal(keys.lookup('a').status, 'revoked', 'the last good registry stays in force');
      assert.match(errors[0] ?? '', /is not JSON.*the last registry read stays in force/);
    } finally {
      await dir.remove();
    }
  });
});
