// Usage errors of the client-rank flags, through runCli in-process: `fedex host --ranks`, `fedex join
// --rank` and `fedex simulate --client-ranks` name the flag and the bad value and exit 2 before
// anything starts; --help lists them.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { CliIO } from '../../src/cli/command.js';
import { runCli } from '../../src/cli/main.js';

async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CliIO = { stdout: { write: (c: string) => ((stdout += c), true) }, stderr: { write: (c: string) => ((stderr += c), true) } };
  const code = await runCli(argv, io);
  return { code, stdout, stderr };
}

describe('client-rank flags', () => {
  test('--help lists them', async () => {
    assert.match((await cli('host', '--help')).stdout, /--ranks <r1,r2,…>/);
    assert.match((await cli('join', '--help')).stdout, /--rank <r>/);
    assert.match((await cli('simulate', '--help')).stdout, /--client-ranks <r1,r2,…>/);
    assert.match((await cli('simulate', '--help')).stdout, /fedex,fedit,ffa,flora,fedsb,centralized/);
  });

  test('bad values exit 2 naming the flag', async () => {
    const cases: [string[], RegExp][] = [
      [['host', '--model', 'synthetic', '--ranks', '4,x'], /--ranks must list integers in 1\.\.4096 separated by commas \(4,8,16\), got 'x'/],
      [['host', '--model', 'synthetic', '--ranks', '16', '--rank', '8'], /--ranks 16 is above the global rank 8 \(--rank\)/],
      [['simulate', '--model', 'synthetic', '--client-ranks', '4,0'], /--client-ranks must list integers in 1\.\.1024 separated by commas \(4,8,16\), got '0'/],
      [['simulate', '--model', 'synthetic', '--client-ranks', '4,16', '--rank', '8'], /--client-ranks 16 is above the global rank 8 \(--rank\)/],
      [['simulate', '--model', 'synthetic', '--client-ranks', '2,4'], /--client-ranks needs methods that fold a truncated start into the base \(fedex, flora; centralized runs at --rank\), not fedit, ffa/],
      [['simulate', '--model', 'synthetic', '--client-ranks', '2,4', '--methods', 'fedex', '--aggregation', 'median'], /--client-ranks cannot be combined with --aggregation or the DP flags/],
      [['join', 'ws://127.0.0.1:9/', '--token', 't', '--model', 'synthetic', '--rank', '0'], /--rank/],
    ];
    for (const [argv, message] of cases) {
      const r = await cli(...argv);
      assert.equal(r.code, 2, `${argv.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
  });
});
