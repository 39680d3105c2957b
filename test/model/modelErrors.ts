// A check of the ModelErrors the model tests expect, for assert.throws and assert.rejects.
import assert from 'node:assert/strict';
import { ModelError, type ModelErrorCode } from '../../src/model/errors.js';

/** Asserts the error is a ModelError with `code` whose message matches every one of `parts`. */
export function isModelError(code: ModelErrorCode, ...parts: RegExp[]): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof ModelError, `expected a ModelError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    for (const p of parts) assert.match(e.message, p);
    return true;
  };
}
