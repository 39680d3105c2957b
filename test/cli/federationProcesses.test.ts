// A real federation as users run it: `fedex host` and `fedex join` as separate processes, the
// shipped tiny GPT-2 (the default model, fetched by the clients from the host), the real trainer,
// the README's options and nothing else beyond a port, the client count and --save-adapters (which
// only keeps copies to check against). For each method: 3 rounds, every round aggregates every
// client, every process exits 0, and the FedEx model is exact against a float64 recomputation from
// the saved client adapters. Then: --target-modules all-linear, a coordinator killed mid-round
// and resumed (the clients outlast it), and a client whose training fails (the round closes at once).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { readPeftAdapter } from '../../src/formats/peft.js';
import { withSafetensors } from '../../src/formats/safetensors.js';
import type { AdapterLayout } from '../../src/federation/protocol/adapterTensors.js';
import { roundDir } from '../../src/federation/shared/adapterFolders.js';
import { suiteFedex, waitForHostUrl, waitForOutput, type FedexRun } from '../helpers/fedexProcess.js';
import { suiteTempDir } from '../helpers/tempDir.js';
import { checkSavedRound } from '../federation/simulation/savedRounds.js';

const SHIPPED = 'models/tiny-gpt2';
/** Float32 round-off relative to the size of the update (docs: exactness to float32 round-off). */
const EXACT = 1e-5;

const start = suiteFedex();
const tmp = suiteTempDir('federation-processes');
const fedex = (...args: string[]): FedexRun => fedexWith({}, ...args);
const fedexWith = (env: Record<string, string>, ...args: string[]): FedexRun => start(args, { env });

/** Waits for every run to exit; after `ms`, fails with what each printed (a hang is diagnosed, not just cancelled). */
async function settle(runs: readonly FedexRun[], ms = 150_000): Promise<{ code: number | null; stdout: string; stderr: string }[]> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still running after ${ms} ms:\n${runs.map((r) => `--- ${r.child.spawnargs.slice(3, 5).join(' ')} (exit ${r.child.exitCode})\n${r.output()}`).join('\n')}`)), ms);
  });
  try {
    return await Promise.race([Promise.all(runs.map((r) => r.done)), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Starts `fedex host` and returns it with its URL and the token it printed. */
async function host(name: string, ...args: string[]): Promise<{ run: FedexRun; url: string; token: string; dir: string }> {
  const dir = join(tmp.path, name);
  const run = fedex('host', '--port', '0', '--out', dir, ...args);
  const url = await waitForHostUrl(run, 60_000);
  const token = (await waitForOutput(run, /join token: (\S+)/))[1];
  return { run, url, token, dir };
}

/** `fedex join` as the README shows it, the token in FEDEX_TOKEN (its own model cache in the test folder). */
function joinAs(url: string, token: string, shard: string, ...extra: string[]): FedexRun {
  return fedexWith({ FEDEX_TOKEN: token }, 'join', url, '--data', 'task:arith', '--shard', shard, '--model-cache', join(tmp.path, 'model-cache'), ...extra);
}

/** The command line of a running process as the process list shows it (Linux /proc). */
async function commandLine(pid: number): Promise<string> {
  return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').join(' ');
}

async function layoutOf(runDir: string): Promise<AdapterLayout> {
  return (JSON.parse(await readFile(join(runDir, 'state.json'), 'utf8')) as { plan: { layout: AdapterLayout } }).plan.layout;
}

/** Every round of the host's output closed with `clients` updates aggregated. */
function assertEveryRound(output: string, rounds: number, clients: number): void {
  for (let r = 1; r <= rounds; r++) assert.match(output, new RegExp(`round ${r} closed \\(all_reported\\): ${clients} updates aggregated`), `round ${r}:\n${output}`);
  assert.doesNotMatch(output, /NOT aggregated/);
  assert.match(output, new RegExp(`federation done: ${rounds}/${rounds} rounds aggregated`));
}

/** FedEx: every saved round's global model equals the mean of its clients' models (float64). */
async function assertExact(runDir: string, rounds: readonly number[]): Promise<void> {
  const layout = await layoutOf(runDir);
  for (const r of rounds) {
    for (const c of await checkSavedRound(join(runDir, 'adapters'), r, layout)) {
      assert.ok(c.size > 0, `round ${r} ${c.module}: the clients changed the model`);
      assert.ok(c.err <= EXACT * c.size, `round ${r} ${c.module}: |global − mean of clients| = ${c.err} > ${EXACT} × ${c.size}`);
    }
  }
}

/** final/model is a complete model folder: the shipped model's files and every one of its tensors. */
async function assertCompleteModel(runDir: string): Promise<void> {
  const dir = join(runDir, 'final', 'model');
  const files = await readdir(dir);
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']) assert.ok(files.includes(f), `final/model has ${f}: ${files.join(', ')}`);
  const names = async (path: string): Promise<string[]> => withSafetensors(path, async (r) => [...r.tensors.keys()].sort());
  assert.deepEqual(await names(join(dir, 'model.safetensors')), await names(join(SHIPPED, 'model.safetensors')), 'every tensor of the base model');
}

describe('fedex host + fedex join processes, defaults, every method', { timeout: 300_000 }, () => {
  for (const method of ['fedex', 'fedit', 'ffa'] as const) {
    test(`${method}: 3 rounds, every round aggregates both clients, every process exits 0`, async () => {
      const h = await host(method, '--rounds', '3', '--min-clients', '2', '--save-adapters', ...(method === 'fedex' ? [] : ['--method', method]));
      const joins = [joinAs(h.url, h.token, '1/2', '--out', join(h.dir, 'join-1-adapter')), joinAs(h.url, h.token, '2/2')];
      // The join token is in no process's command line (ps shows it to every user).
      for (const r of [h.run, ...joins]) assert.ok(!(await commandLine(r.child.pid!)).includes(h.token), 'the token is not in the process list');
      const [hr, ...jr] = await settle([h.run, ...joins]);
      for (const j of jr) assert.equal(j.code, 0, `join: ${j.stdout}\n${j.stderr}`);
      assert.equal(hr.code, 0, hr.stderr);
      assertEveryRound(hr.stdout, 3, 2);
      for (const j of jr) {
        assert.match(j.stdout, /federation completed: 3 rounds aggregated, this client took part in 3/);
        assert.doesNotMatch(j.stderr, /warning: --token/);
      }
      const layout = await layoutOf(h.dir);
      if (method === 'fedex') {
        await assertExact(h.dir, [1, 2, 3]);
        await assertCompleteModel(h.dir);
      } else {
        assert.ok(!existsSync(join(h.dir, 'final', 'model')), `${method} leaves the base unchanged: no final/model`);
        // Plain averaging: the global adapter is the mean of the clients' (float64), A frozen for FFA.
        const initialA = new Map<string, Float32Array>();
        for (const r of [1, 2, 3]) {
          const clients = await Promise.all((await readdir(join(roundDir(join(h.dir, 'adapters'), r), 'clients'))).map((c) => readPeftAdapter(join(roundDir(join(h.dir, 'adapters'), r), 'clients', c))));
          const global = await readPeftAdapter(join(roundDir(join(h.dir, 'adapters'), r), 'global'));
          for (const m of layout) {
            const g = global.modules.find((x) => x.modulePath === m.module)!;
            for (const role of ['A', 'B'] as const) {
              const mine = g[role].data;
              let err = 0;
              let size = 0;
              for (let i = 0; i < mine.length; i++) {
                let mean = 0;
                for (const c of clients) mean += c.modules.find((x) => x.modulePath === m.module)![role].data[i] / clients.length;
                err = Math.max(err, Math.abs(mine[i] - mean));
                size = Math.max(size, Math.abs(mean));
              }
              assert.ok(err <= 1e-6 * size, `round ${r} ${m.module} ${role}: global differs from the clients' mean by ${err}`);
            }
            if (method === 'ffa') {
              const a = initialA.get(m.module) ?? g.A.data;
              initialA.set(m.module, a);
              assert.deepEqual(g.A.data, a, `FFA: ${m.module} lora_A stays frozen`);
            }
          }
        }
      }
      // Both the host's final adapter and join --out are PEFT folders naming the adapted modules.
      for (const dir of [join(h.dir, 'final', 'adapter'), join(h.dir, 'join-1-adapter')]) {
        const peft = await readPeftAdapter(dir);
        assert.deepEqual(peft.modules.map((m) => m.modulePath).sort(), layout.map((m) => m.module).sort());
      }
    });
  }
});

describe('fedex host + fedex join processes: the harder paths', { timeout: 300_000 }, () => {
  test('--target-modules all-linear: the adapters name the resolved modules, FedEx is exact', async () => {
    const h = await host('all-linear', '--rounds', '3', '--min-clients', '2', '--target-modules', 'all-linear', '--save-adapters');
    const joins = [joinAs(h.url, h.token, '1/2', '--out', join(h.dir, 'join-1-adapter')), joinAs(h.url, h.token, '2/2')];
    const [hr, ...jr] = await settle([h.run, ...joins]);
    for (const j of jr) assert.equal(j.code, 0, `join: ${j.stdout}\n${j.stderr}`);
    assert.equal(hr.code, 0, hr.stderr);
    assertEveryRound(hr.stdout, 3, 2);
    const layout = await layoutOf(h.dir);
    assert.ok(layout.some((m) => m.module.endsWith('.mlp.c_fc')) && layout.some((m) => m.module.endsWith('.attn.c_proj')), 'all-linear adapts the MLP and attention projections');
    await assertExact(h.dir, [1, 2, 3]);
    for (const dir of [join(h.dir, 'final', 'adapter'), join(h.dir, 'join-1-adapter')]) {
      const config = JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8')) as { target_modules: string[] };
      assert.deepEqual([...config.target_modules].sort(), layout.map((m) => m.module).sort(), `${dir}: target_modules are the resolved modules, not 'all-linear'`);
      assert.equal((await readPeftAdapter(dir)).modules.length, layout.length);
    }
  });

  test('a coordinator killed mid-round and resumed: the clients come back by themselves, final/model is complete', async () => {
    const h = await host('killed', '--rounds', '3', '--min-clients', '2', '--local-steps', '30', '--save-adapters');
    const port = new URL(h.url).port;
    const joins = [joinAs(h.url, h.token, '1/2'), joinAs(h.url, h.token, '2/2')];
    await waitForOutput(h.run, /round 2\/3: 2 clients sampled/, 120_000);
    // Round 1's saved folders are written after its close; wait for them, then crash the coordinator mid round 2.
    for (const t0 = Date.now(); !existsSync(join(roundDir(join(h.dir, 'adapters'), 1), 'base', 'model.safetensors')) && Date.now() - t0 < 30_000;) await new Promise((r) => setTimeout(r, 50));
    h.run.child.kill('SIGKILL');
    await h.run.done;
    assert.ok(existsSync(join(h.dir, 'host.lock')), 'a crash leaves the lock behind…');
    const resumed = fedex('host', '--resume', h.dir, '--port', port, '--save-adapters');
    const [rr, ...jr] = await settle([resumed, ...joins]);
    assert.equal(rr.code, 0, `…which the resumed host takes over: ${rr.stderr}`);
    for (const j of jr) {
      assert.equal(j.code, 0, `join: ${j.stdout}\n${j.stderr}`);
      assert.match(j.stdout, /cannot connect .*retrying in/, 'the client retried while the coordinator was down');
      assert.match(j.stdout, /federation completed: 3 rounds aggregated/);
    }
    assert.match(rr.stdout, /round 2 closed \(all_reported\): 2 updates aggregated/);
    assert.match(rr.stdout, /round 3 closed \(all_reported\): 2 updates aggregated/);
    await assertExact(h.dir, [1, 2, 3]);
    await assertCompleteModel(h.dir);
    // Resuming a finished run changes nothing and says so.
    const before = await readFile(join(h.dir, 'final', 'model', 'model.safetensors'));
    const again = await fedex('host', '--resume', h.dir, '--port', '0').done;
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /had already finished \(completed, 3\/3 rounds aggregated\); nothing to do/);
    assert.deepEqual(await readFile(join(h.dir, 'final', 'model', 'model.safetensors')), before);
  });

  test('a run directory is locked: a second host on it is refused, naming the pid', async () => {
    const h = await host('locked', '--rounds', '1', '--min-clients', '2');
    const second = await fedex('host', '--resume', h.dir, '--port', '0').done;
    assert.equal(second.code, 1);
    assert.match(second.stderr, new RegExp(`in use by another coordinator \\(pid ${h.run.child.pid}`));
    h.run.child.kill('SIGINT');
    await h.run.done;
  });

  test('a client whose training fails tells the coordinator: the round closes at once, the host reports it and fails when nothing aggregated', async () => {
    const bad = join(tmp.path, 'bad.jsonl');
    await writeFile(bad, '{"prompt": "1+1=", "completion": "2"}\n{"prompt": "2+2=", "completion": "4"}\nnot json at all\n');
    // Quorum 1 of 2: the good client's update aggregates, the failed client is reported.
    const h = await host('failing', '--rounds', '2', '--min-clients', '2', '--round-timeout', '300');
    const good = joinAs(h.url, h.token, '1/2');
    const failing = fedexWith({ FEDEX_TOKEN: h.token }, 'join', h.url, '--data', bad, '--model-cache', join(tmp.path, 'model-cache'));
    const [hr, gr, fr] = await settle([h.run, good, failing]);
    assert.equal(hr.code, 0, hr.stderr);
    assert.equal(gr.code, 0, gr.stderr);
    assert.equal(fr.code, 1, 'the client whose training failed exits 1');
    assert.match(fr.stdout, /round 1: training failed: .*bad\.jsonl/);
    assert.match(fr.stderr, /this client's training failed in rounds 1, 2/);
    assert.match(hr.stdout, /failed round 1: training failed: /);
    for (const r of [1, 2]) assert.match(hr.stdout, new RegExp(`round ${r} closed \\(all_reported\\): 1 updates aggregated`));
    const events = (await readFile(join(h.dir, 'events.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { type: string; durationMs?: number; closedBy?: string });
    for (const e of events.filter((x) => x.type === 'round_closed')) assert.ok(e.durationMs! < 120_000, `closed by the failure, not the 300 s deadline (${e.durationMs} ms)`);

    // Quorum 2: nothing aggregates; the host exits 1 with a one-line reason.
    const q = await host('failing-quorum', '--rounds', '1', '--min-clients', '2', '--quorum', '2');
    const runs = [joinAs(q.url, q.token, '1/2'), fedexWith({ FEDEX_TOKEN: q.token }, 'join', q.url, '--data', bad, '--model-cache', join(tmp.path, 'model-cache'))];
    const [qr, g2] = await settle([q.run, ...runs]);
    assert.equal(qr.code, 1);
    assert.match(qr.stdout, /round 1 closed \(all_reported\): NOT aggregated/);
    assert.match(qr.stderr, /^fedex host: no round aggregated: round 1: 1 of 2 sampled clients delivered, quorum 2 \(.*training failed/m);
    assert.equal(g2.code, 1, 'a client of a federation that aggregated nothing exits 1');
    assert.match(g2.stderr, /round 1 aggregated nothing/);
  });
});
