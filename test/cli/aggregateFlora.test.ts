// `fedex aggregate --method flora` through runCli on a GPT-2 fixture (Conv1D, non-square c_attn and
// square c_proj): the written model is the mean of the client models W0 + s·B_i A_i, checked here in
// float64 from the files, and the written adapter is a fresh start (B = 0) that changes nothing.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { readPeftAdapter } from '../../src/formats/peft.js';
import type { AggregateReport } from '../../src/federation/offline/aggregateFolders.js';
import { readBase } from '../federation/simulation/savedRounds.js';
import { GPT2_SPEC, makeFixture, type Fixture } from '../helpers/offlineFixtures.js';
import { suiteTempDir } from '../helpers/tempDir.js';
import { cli as fedexCli } from '../helpers/cliRun.js';

/** `fedex aggregate <argv>` in process, its output collected. */
const cli = (...argv: string[]): ReturnType<typeof fedexCli> => fedexCli('aggregate', ...argv);

describe('fedex aggregate --method flora', () => {
  const tmp = suiteTempDir('cli-aggregate-flora');
  let fx: Fixture;
  before(async () => {
    fx = await makeFixture(join(tmp.path, 'fx'), GPT2_SPEC, ['c_attn', 'c_proj']);
  });

  test('writes the mean of the client models (float64 reference from the files) and a B = 0 adapter', async () => {
    const out = join(tmp.path, 'out');
    const r = await cli('--method', 'flora', '--base', fx.base, '--adapters', ...fx.adapters, '--out', out, '--dtype', 'float32');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /flora: 6 modules from 3 adapters/);
    assert.match(r.stdout, /exact to float32 round-off/);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as AggregateReport;
    assert.equal(report.exactMethod, true);
    assert.equal(report.modelWritten, true);

    const clients = await Promise.all(fx.adapters.map((d) => readPeftAdapter(d)));
    const layout = clients[0].modules.map((m) => ({ module: m.modulePath, in: m.A.shape[1], out: m.B.shape[0], rank: m.A.shape[0], fanInFanOut: true }));
    assert.ok(layout.some((m) => m.in === m.out) && layout.some((m) => m.in !== m.out), 'square and non-square modules');
    const before = await readBase(fx.base, layout);
    const after = await readBase(out, layout);
    const written = await readPeftAdapter(join(out, 'adapter'));
    for (const m of layout) {
      const w0 = before.get(m.module)!;
      const mean = Float64Array.from(w0);
      for (const c of clients) {
        const f = c.modules.find((x) => x.modulePath === m.module)!;
        const r0 = f.A.shape[0];
        for (let o = 0; o < m.out; o++) {
          for (let x = 0; x < m.in; x++) {
            let s = 0;
            for (let j = 0; j < r0; j++) s += f.B.data[o * r0 + j] * f.A.data[j * m.in + x];
            mean[x * m.out + o] += (f.scaling * s) / clients.length;
          }
        }
      }
      const w = after.get(m.module)!;
      let err = 0;
      let size = 0;
      for (let i = 0; i < w.length; i++) {
        err = Math.max(err, Math.abs(w[i] - mean[i]));
        size = Math.max(size, Math.abs(mean[i] - w0[i]));
      }
      assert.ok(size > 1e-4, `${m.module}: a visible update (${size})`);
      assert.ok(err <= 1e-5 * size + 1e-6 * Math.max(...w0.map(Math.abs)), `${m.module}: error ${err} vs update ${size}`);
      const g = written.modules.find((x) => x.modulePath === m.module)!;
      assert.ok(g.B.data.every((v) => v === 0), `${m.module}: the adapter written starts from B = 0`);
    }
  });
});
