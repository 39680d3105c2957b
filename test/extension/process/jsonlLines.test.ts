import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { JsonlEventParser, LineSplitter, parseLine } from '../../../src/extension/process/jsonlLines.js';
import type { ParsedLine } from '../../../src/extension/process/jsonlLines.js';

const eventsOf = (parsed: readonly ParsedLine[]): unknown[] => parsed.filter((p) => p.kind === 'event').map((p) => (p.kind === 'event' ? p.event : null));

describe('LineSplitter', () => {
  test('joins a line split across chunks, also inside a multi-byte character', () => {
    // prepare: "ü" is two bytes in UTF-8; cut between them
    const bytes = Buffer.from('{"a":"grün"}\nnext\r\n', 'utf8');
    const cut = bytes.indexOf(0xbc); // second byte of ü
    const splitter = new LineSplitter();
    // act
    const first = splitter.push(bytes.subarray(0, cut));
    const second = splitter.push(bytes.subarray(cut));
    // assert
    assert.deepEqual(first, []);
    assert.deepEqual(second, ['{"a":"grün"}', 'next']);
    assert.deepEqual(splitter.flush(), []);
  });

  test('flush returns an unterminated last line', () => {
    const splitter = new LineSplitter();
    assert.deepEqual(splitter.push('a\nb'), ['a']);
    assert.deepEqual(splitter.flush(), ['b']);
  });

  test('a line longer than the limit is reported once as an overflow marker, and the next line is intact', () => {
    const splitter = new LineSplitter(10);
    const out = [...splitter.push('x'.repeat(8)), ...splitter.push('y'.repeat(8)), ...splitter.push('zz\n{"ok":1}\n')];
    assert.equal(out.length, 2);
    assert.ok(out[0].startsWith('\u0000overflow:'));
    assert.equal(out[1], '{"ok":1}');
  });
});

describe('JsonlEventParser', () => {
  test('parses events byte by byte and flags malformed lines without stopping', () => {
    // prepare
    const text = [
      '{"type":"round_started","time":1,"round":1,"sampled":["a"],"quorum":1,"deadline":9,"baseRevision":0}',
      '',
      'not json at all',
      '{"time":2}',
      '[1,2]',
      '{"type":"listening","time":"soon"}',
      '{"type":"future_event","time":3,"x":1}',
      '{"type":"round_closed","time":4,"round":1}',
    ].join('\n');
    const parser = new JsonlEventParser();
    // act: one byte at a time, the worst case of chunking
    const parsed: ParsedLine[] = [];
    for (const b of Buffer.from(text, 'utf8')) parsed.push(...parser.push(Buffer.from([b])));
    parsed.push(...parser.end());
    // assert
    assert.deepEqual(eventsOf(parsed).map((e) => (e as { type: string }).type), ['round_started', 'future_event', 'round_closed']);
    const malformed = parsed.filter((p) => p.kind === 'malformed');
    assert.equal(malformed.length, 4);
    assert.deepEqual(malformed.map((m) => (m.kind === 'malformed' ? m.line : '')), ['not json at all', '{"time":2}', '[1,2]', '{"type":"listening","time":"soon"}']);
    assert.match(malformed[1].kind === 'malformed' ? malformed[1].reason : '', /type/);
    assert.match(malformed[3].kind === 'malformed' ? malformed[3].reason : '', /time/);
  });

  test('parseLine: blank is null, an oversized marker is malformed with the limit named', () => {
    assert.equal(parseLine('   '), null);
    const r = parseLine('\u0000overflow:abc', 10);
    assert.equal(r?.kind, 'malformed');
    assert.match(r?.kind === 'malformed' ? r.reason : '', /longer than 10/);
  });
});
