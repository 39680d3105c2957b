// docs/protocol.md against the code: the document's marked tables must match the catalogue, the
// error codes, the string formats, the tensor roles and the constants, and its example frame must
// be exactly what the encoder writes. On a field-table mismatch the expected table is printed.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { TENSOR_ROLES } from '../../../src/federation/protocol/adapterTensors.js';
import { decodeMessage, encodeMessage } from '../../../src/federation/protocol/codec.js';
import { DEFAULT_LIMITS, MAGIC, MAX_DIM, MAX_DIMS, PREFIX_BYTES, PROTOCOL_MAJOR, PROTOCOL_MINOR, TENSOR_ALIGN } from '../../../src/federation/protocol/constants.js';
import { ERROR_CODES, isKnownErrorCode } from '../../../src/federation/protocol/errors.js';
import { MAX_TENSOR_NAME } from '../../../src/federation/protocol/frame.js';
import { MESSAGES, type AnyDescriptor } from '../../../src/federation/protocol/messages.js';
import { flattenFields, STRING_FORMATS } from '../../../src/federation/protocol/schema.js';

const doc = readFileSync(new URL('../../../docs/protocol.md', import.meta.url), 'utf8');
const lines = doc.split('\n');

/** Cells of a markdown table row; `\|` is a literal pipe; surrounding backticks are dropped. */
function cells(row: string): string[] {
  const parts = row.trim().replace(/^\||\|$/g, '').split(/(?<!\\)\|/);
  return parts.map((c) => c.trim().replace(/\\\|/g, '|').replace(/^`(.*)`$/, '$1'));
}

/** Body rows of the first table after line `start` (header and separator skipped). */
function tableAfter(start: number): string[][] {
  let i = start + 1;
  while (i < lines.length && !lines[i].startsWith('|')) {
    assert.ok(!lines[i].startsWith('#') && !lines[i].startsWith('<!--'), `no table after line ${start + 1} of docs/protocol.md`);
    i++;
  }
  const rows: string[][] = [];
  for (i += 2; i < lines.length && lines[i].startsWith('|'); i++) rows.push(cells(lines[i]));
  return rows;
}

function markerLine(marker: string): number {
  const at = lines.findIndex((l) => l.trim() === `<!-- ${marker} -->`);
  assert.ok(at >= 0, `docs/protocol.md has no <!-- ${marker} --> block`);
  return at;
}

function expectedTable(d: AnyDescriptor): string {
  const rows = flattenFields(d.params.fields).map((r) => `| \`${r.path}\` | ${r.type} | ${r.required ? 'yes' : 'no'} | ${r.doc} |`);
  return [`<!-- message: ${d.method} | sender: ${d.sender} | tensors: ${d.tensors} -->`, '', '| field | type | required | description |', '|---|---|---|---|', ...rows].join('\n');
}

const MESSAGE_MARKER = /^<!-- message: ([a-z_]+) \| sender: ([a-z]+) \| tensors: ([a-z]+) -->$/;
const documented = lines.flatMap((l, i) => {
  const m = MESSAGE_MARKER.exec(l.trim());
  return m ? [{ line: i, method: m[1], sender: m[2], tensors: m[3] }] : [];
});

describe('docs/protocol.md matches the message catalogue', () => {
  test('the same messages, in the same order, with the same sender and tensor policy', () => {
    assert.deepEqual(
      documented.map(({ method, sender, tensors }) => ({ method, sender, tensors })),
      MESSAGES.map((d) => ({ method: d.method, sender: d.sender, tensors: d.tensors })),
    );
  });

  for (const d of MESSAGES) {
    test(`${d.method}: every field with its type and required flag`, () => {
      const entry = documented.find((e) => e.method === d.method);
      assert.ok(entry, `docs/protocol.md lacks a section for ${d.method}; add:\n${expectedTable(d)}`);
      const actual = tableAfter(entry.line).map(([path, type, required]) => ({ path, type, required: required === 'yes' }));
      const expected = flattenFields(d.params.fields).map(({ path, type, required }) => ({ path, type, required }));
      assert.deepEqual(actual, expected, `the ${d.method} table in docs/protocol.md is out of date; expected:\n${expectedTable(d)}`);
    });
  }
});

describe('docs/protocol.md matches the other tables of the code', () => {
  test('error codes: the same list in the same order; every E_ code the text mentions exists', () => {
    assert.deepEqual(tableAfter(markerLine('error-codes')).map((r) => r[0]), Object.keys(ERROR_CODES));
    const mentioned = new Set(doc.match(/\bE_[A-Z_]{2,}\b/g));
    for (const code of mentioned) assert.ok(isKnownErrorCode(code), `docs/protocol.md mentions unknown code ${code}`);
  });

  test('string formats: the same names and patterns', () => {
    const rows = tableAfter(markerLine('string-formats'));
    assert.deepEqual(Object.fromEntries(rows.map(([name, pattern]) => [name, pattern])), Object.fromEntries(Object.entries(STRING_FORMATS).map(([k, v]) => [k, v.source])));
  });

  test('tensor roles', () => {
    assert.deepEqual(tableAfter(markerLine('tensor-roles')).map((r) => r[0]), TENSOR_ROLES);
  });

  test('constants and default limits', () => {
    const values = Object.fromEntries(tableAfter(markerLine('constants')).map(([name, value]) => [name, value]));
    assert.deepEqual(values, {
      MAGIC: [...MAGIC].map((b) => b.toString(16)).join(' '),
      PROTOCOL_MAJOR: String(PROTOCOL_MAJOR),
      PROTOCOL_MINOR: String(PROTOCOL_MINOR),
      PREFIX_BYTES: String(PREFIX_BYTES),
      TENSOR_ALIGN: String(TENSOR_ALIGN),
      MAX_DIMS: String(MAX_DIMS),
      MAX_DIM: String(MAX_DIM),
      MAX_TENSOR_NAME: String(MAX_TENSOR_NAME),
      maxFrameBytes: String(DEFAULT_LIMITS.maxFrameBytes),
      maxHeaderBytes: String(DEFAULT_LIMITS.maxHeaderBytes),
      maxTensors: String(DEFAULT_LIMITS.maxTensors),
    });
  });

  test('the example frame is byte for byte what encodeMessage writes for the example message', () => {
    const at = markerLine('example-frame');
    const rest = lines.slice(at);
    const hexStart = rest.indexOf('```hex');
    const hexEnd = rest.indexOf('```', hexStart + 1);
    const bytes = Uint8Array.from(rest.slice(hexStart + 1, hexEnd).flatMap((row) => {
      const m = /^([0-9a-f]{4}) {2}((?:[0-9a-f]{2} ?)+)/.exec(row);
      assert.ok(m, `bad hex dump row: ${row}`);
      return m[2].trim().split(/ +/).map((h) => parseInt(h, 16));
    }));
    const jsonStart = rest.indexOf('```json', hexEnd);
    const example = JSON.parse(rest[jsonStart + 1]) as { method: 'client_update'; params: { round: number; examples: number; trainLoss: number }; tensors: { name: string; shape: number[]; data: number[] }[] };

    const encoded = encodeMessage({ ...example, tensors: example.tensors.map((t) => ({ ...t, data: Float32Array.from(t.data) })) });

    assert.deepEqual(bytes, encoded);
    const decoded = decodeMessage(bytes, { receiver: 'coordinator' });
    assert.deepEqual(decoded.tensors.map((t) => [...t.data]), example.tensors.map((t) => t.data));
  });
});
