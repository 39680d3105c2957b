// `fedex train` and `fedex eval` with the real trainer (in a worker thread) on the shipped tiny
// GPT-2, run in-process through runCli with captured output: train writes a PEFT adapter folder and
// metrics.jsonl; eval prints one line or JSON, with and without --adapter, and the trained adapter
// lowers the loss to exactly what train measured; usage errors are exit 2 naming the flag; Ctrl-C
// (a child process) stops training with exit 130 and writes no adapter.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { suiteTempDir } from '../helpers/tempDir.js';
import { cli } from '../helpers/cliRun.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SHIPPED_MODEL = join(ROOT, 'models', 'tiny-gpt2');
/** The eval split is fixed by the spec's own seed, so train's and eval's evaluations see the same 64 examples. */
const DATA = 'task:sentiment?count=256&evalCount=64&seed=1';

function trainFlags(steps: number): string[] {
  return ['--data', DATA, '--steps', String(steps), '--lr', '0.01', '--schedule', 'constant', '--batch-size', '16', '--seq-len', '32', '--rank', '4', '--alpha', '8', '--threads', '1', '--seed', '1', '--eval-examples', '64'];
}

interface EvalJson {
  model: string;
  adapter: string | null;
  data: string;
  loss: number;
  perplexity: number;
  accuracy?: number;
  examples: number;
}

describe('fedex train + fedex eval', { timeout: 120_000 }, () => {
  const tmp = suiteTempDir('cli-train-eval');
  let out: string;
  let trained: { code: number; stdout: string; stderr: string };
  before(async () => {
    out = join(tmp.path, 'adapter');
    // No --model: the shipped default model.
    trained = await cli('train', ...trainFlags(80), '--out', out);
  });

  test('train prints steps, throughput, train loss, the evaluation and where the adapter went', () => {
    const { code, stdout, stderr } = trained;

    assert.equal(code, 0, stderr);
    assert.match(stdout, /^trained 80 steps \(1280 examples, 3 LoRA modules\) in \d+\.\d s, \d+ tokens\/s; train loss \d+\.\d{4}$/m);
    assert.match(stdout, /^eval: loss \d+\.\d{4}, perplexity \S+, accuracy \d+\.\d% \(64 examples\)$/m);
    assert.ok(stdout.includes(`adapter written to ${out} (adapter_config.json, adapter_model.safetensors); metrics in ${join(out, 'metrics.jsonl')}`), stdout);
  });

  test('train writes a PEFT folder for sequence classification on GPT-2: c_attn LoRA (fan_in_fan_out) plus the score head', async () => {
    const config = JSON.parse(await readFile(join(out, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;

    assert.equal(config.r, 4);
    assert.equal(config.lora_alpha, 8);
    assert.deepEqual(config.target_modules, ['c_attn']);
    assert.equal(config.task_type, 'SEQ_CLS');
    assert.deepEqual(config.modules_to_save, ['classifier', 'score'], 'as PEFT writes it for SEQ_CLS');
    assert.equal(config.fan_in_fan_out, true);
    assert.equal(config.base_model_name_or_path, SHIPPED_MODEL);
    assert.ok(existsSync(join(out, 'adapter_model.safetensors')));
  });

  test('metrics.jsonl holds one line per step (1…80, finite loss), then the evaluation, then the summary', async () => {
    const lines = (await readFile(join(out, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

    const steps = lines.filter((l) => l.type === 'step');
    assert.deepEqual(steps.map((l) => l.step), Array.from({ length: 80 }, (_, i) => i + 1));
    for (const s of steps) {
      assert.equal(s.totalSteps, 80);
      assert.ok(Number.isFinite(s.loss) && Number.isFinite(s.tokensPerSecond) && Number.isFinite(s.etaSeconds), JSON.stringify(s));
    }
    assert.deepEqual(lines.slice(80).map((l) => l.type), ['eval', 'summary']);
    assert.equal(lines[80].examples, 64);
    const summary = lines[81];
    assert.equal(summary.steps, 80);
    assert.equal(summary.examples, 1280);
    assert.equal(summary.out, out);
    assert.deepEqual(summary.eval, Object.fromEntries(Object.entries(lines[80]).filter(([k]) => k !== 'type')));
  });

  test('eval prints one line; --json prints the same figures; the trained adapter lowers the loss to what train measured', async () => {
    const metrics = (await readFile(join(out, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const trainEval = metrics.find((l) => l.type === 'eval') as unknown as EvalJson;
    const common = ['--data', DATA, '--max-examples', '64', '--seq-len', '32', '--threads', '1'];

    const line = await cli('eval', ...common);
    const base = await cli('eval', ...common, '--json');
    const adapted = await cli('eval', ...common, '--adapter', out, '--json');

    assert.equal(line.code, 0, line.stderr);
    assert.match(line.stdout, /^loss \d+\.\d{4}, perplexity \S+, accuracy \d+\.\d% \(64 examples\)\n$/);
    assert.equal(base.code, 0, base.stderr);
    assert.equal(adapted.code, 0, adapted.stderr);
    const without = JSON.parse(base.stdout) as EvalJson;
    const withAdapter = JSON.parse(adapted.stdout) as EvalJson;
    assert.deepEqual([without.model, without.adapter, without.data, without.examples], [SHIPPED_MODEL, null, DATA, 64]);
    assert.ok(line.stdout.startsWith(`loss ${without.loss.toFixed(4)}, `), 'the line and the JSON agree');
    assert.equal(without.perplexity, Math.exp(without.loss));
    assert.equal(withAdapter.adapter, out);
    assert.ok(withAdapter.loss < 0.8 * without.loss, `loss without ${without.loss}, with the adapter ${withAdapter.loss}`);
    assert.ok(withAdapter.accuracy! > without.accuracy!, `accuracy ${without.accuracy} → ${withAdapter.accuracy}`);
    assert.ok(Math.abs(withAdapter.loss - trainEval.loss) < 1e-5, `eval --adapter ${withAdapter.loss} vs train's own evaluation ${trainEval.loss}`);
    assert.equal(withAdapter.accuracy, trainEval.accuracy);
  });

  test('train refuses to overwrite an adapter without --force (exit 1, before any training)', async () => {
    const { code, stderr } = await cli('train', ...trainFlags(80), '--out', out);

    assert.equal(code, 1);
    assert.match(stderr, /fedex train: .* already holds an adapter; pass --force to overwrite it or choose another --out/);
  });

  test('usage errors are exit 2 with a message naming the flag, and leave no output folder', async () => {
    const fresh = join(tmp.path, 'never-written');
    const cases: [string[], RegExp][] = [
      [['train', '--out', fresh], /fedex train: --data is required/],
      [['train', '--data', DATA], /fedex train: --out is required/],
      [['train', '--data', DATA, '--out', fresh, '--steps', '5', '--epochs', '1'], /fedex train: give --steps or --epochs, not both/],
      [['train', '--data', DATA, '--out', fresh, '--lr', 'fast'], /fedex train: --lr must be .*got 'fast'/],
      [['train', '--data', DATA, '--out', fresh, '--rank', '0'], /fedex train: --rank must be .*got '0'/],
      [['train', '--data', DATA, '--out', fresh, '--schedule', 'step'], /fedex train: --schedule must be one of constant, linear, cosine, got 'step'/],
      [['train', '--data', DATA, '--out', fresh, '--optimizer', 'adam'], /fedex train: --optimizer must be one of adamw, sgd, got 'adam'/],
      [['train', '--data', DATA, '--out', fresh, '--target-modules', 'c_attn,'], /fedex train: --target-modules must be a comma-separated list of names/],
      [['train', '--data', DATA, '--out', fresh, 'extra'], /fedex train: unexpected argument 'extra'/],
      [['eval'], /fedex eval: --data is required/],
      [['eval', '--data', DATA, '--max-examples', '0'], /fedex eval: --max-examples must be .*got '0'/],
    ];

    for (const [argv, message] of cases) {
      const { code, stderr } = await cli(...argv);

      assert.equal(code, 2, `${argv.join(' ')}: ${stderr}`);
      assert.match(stderr, message);
    }
    assert.ok(!existsSync(fresh));
  });

  test('a bad dataset or adapter folder is exit 1 with the reason from the trainer', async () => {
    const badTask = await cli('train', '--data', 'task:nope', '--out', join(tmp.path, 'bad-task'), '--threads', '1');
    const noAdapter = await cli('eval', '--data', DATA, '--adapter', join(tmp.path, 'no-adapter'));

    assert.equal(badTask.code, 1);
    assert.match(badTask.stderr, /^fedex train: unknown task "task:nope"; built-in tasks: task:arith/);
    assert.ok(!existsSync(join(tmp.path, 'bad-task')), 'nothing written');
    assert.equal(noAdapter.code, 1);
    assert.match(noAdapter.stderr, /^fedex eval: .*no-adapter/);
  });
});

describe('fedex train, interrupted', { timeout: 60_000 }, () => {
  const tmp = suiteTempDir('cli-train-sigint');

  test('Ctrl-C (SIGINT) mid-run: exit 130, "interrupted; no adapter was written", no adapter files', async () => {
    const out = join(tmp.path, 'out');
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/bin.ts', 'train', ...trainFlags(100_000), '--out', out], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));

    // Steps are being logged once metrics.jsonl has lines.
    const until = Date.now() + 45_000;
    while (Date.now() < until && !(existsSync(join(out, 'metrics.jsonl')) && (await readFile(join(out, 'metrics.jsonl'), 'utf8')).includes('"step":2,'))) {
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill('SIGINT');
    const code = await exited;

    assert.equal(code, 130, stderr);
    assert.match(stderr, /fedex train: interrupted; no adapter was written/);
    assert.ok(!existsSync(join(out, 'adapter_config.json')) && !existsSync(join(out, 'adapter_model.safetensors')));
  });
});
