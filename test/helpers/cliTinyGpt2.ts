// The tiny GPT-2 the CLI tests run `fedex` on (host, join, simulate), written into the suite's temp folder.
import { join } from 'node:path';
import { before } from 'node:test';
import { writeTinyGpt2 } from '../federation/simulation/tinyModel.js';
import type { TempDir } from './tempDir.js';

/** A tiny GPT-2 model folder at `<tmp>/model` for the enclosing `describe` (or file), written before its first test. */
export function suiteTinyGpt2(tmp: TempDir): { readonly path: string } {
  const path = join(tmp.path, 'model');
  before(() => writeTinyGpt2(path));
  return { path };
}
