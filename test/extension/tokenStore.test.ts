import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type * as vscode from 'vscode';
import { normalizeUrl, TokenStore } from '../../src/extension/tokenStore.js';

describe('TokenStore', () => {
  test('tokens are kept per federation URL, the same URL in other spellings finds them', async () => {
    // prepare: an in-memory SecretStorage
    const secrets = new Map<string, string>();
    const storage = {
      get: async (k: string) => secrets.get(k),
      store: async (k: string, v: string) => void secrets.set(k, v),
      delete: async (k: string) => void secrets.delete(k),
    } as unknown as vscode.SecretStorage;
    const tokens = new TokenStore(storage);
    // act
    await tokens.set('WS://Lab.example:8765/', 'secret-1');
    await tokens.set('ws://other:1', 'secret-2');
    // assert
    assert.equal(await tokens.get('ws://lab.example:8765'), 'secret-1');
    assert.equal(await tokens.get('ws://lab.example:8766'), undefined);
    await tokens.delete('ws://lab.example:8765/');
    assert.equal(await tokens.get('ws://lab.example:8765'), undefined);
    assert.equal(await tokens.get('ws://other:1'), 'secret-2');
    assert.deepEqual([...secrets.keys()], ['fedex.token:ws://other:1']);
  });

  test('normalizeUrl keeps paths and leaves non-URLs alone', () => {
    assert.equal(normalizeUrl('wss://h:443/fed/'), 'wss://h/fed/');
    assert.equal(normalizeUrl(' not a url '), 'not a url');
  });
});
