/** Reading a small JSON file (config.json, adapter_config.json) with FormatError's codes. */
import { readFile } from 'node:fs/promises';
import { FormatError, isNotFound, type FormatErrorCode } from './errors.js';

/**
 * Parses the JSON file `file`: a missing file is FILE_NOT_FOUND with `missing` as the message, text
 * that is not JSON is `invalidCode` naming the parser's complaint; other read errors pass through.
 */
export async function readJsonFile(file: string, missing: string, invalidCode: FormatErrorCode): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (isNotFound(err)) throw new FormatError('FILE_NOT_FOUND', missing, { file }, { cause: err });
    throw err;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    throw new FormatError(invalidCode, `invalid JSON (${(cause as Error).message})`, { file }, { cause });
  }
}
