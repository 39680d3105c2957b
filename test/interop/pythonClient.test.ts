// Interoperability: an independent client written in Python from docs/protocol.md alone
// (test/interop/python/fedex_client.py: its own frame codec, schema checks, state machine, §8 model
// hash and safetensors reader) runs K = 2 clients against a real `fedex host` process for a 3-round
// FedEx federation, and checks in float64 that every global adapter is the mean of the uploads and
// that every residual makes base + s·B̄Ā exactly the mean of the client models. Afterwards the host's
// final model and adapter are compared with the Python client's float64 base and adapter.
//
// Needs Debian's /usr/bin/python3 with python3-numpy and python3-websockets (.ci/run installs them).
// Without them the test skips locally and fails in CI (CI set).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, describe, test } from 'node:test';
import { suiteFedex, waitForHostUrl } from '../helpers/fedexProcess.js';
import { suiteTempDir } from '../helpers/tempDir.js';
import { writeTinyGpt2 } from '../federation/simulation/tinyModel.js';

const PYTHON = '/usr/bin/python3';
const CLIENT = fileURLToPath(new URL('./python/fedex_client.py', import.meta.url));

function pythonMissing(): string | null {
  const probe = spawnSync(PYTHON, ['-c', 'import websockets, numpy'], { encoding: 'utf8' });
  if (probe.error) return `${PYTHON} not runnable: ${probe.error.message}`;
  if (probe.status !== 0) return `${PYTHON} lacks websockets/numpy: ${probe.stderr.trim().split('\n').pop()}`;
  return null;
}

const missing = pythonMissing();
const inCi = !['', '0', 'false'].includes((process.env.CI ?? '').toLowerCase());
const skip = missing !== null && !inCi
  ? `Python interop client skipped: ${missing} (apt-get install python3-websockets python3-numpy; in CI this fails instead)`
  : false;

/** Runs a command; resolves with its exit code and output (never rejects). */
function run(cmd: string, args: readonly string[], ms: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('error', (e) => (stderr += String(e)));
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Minimal safetensors reader (8-byte LE header length, JSON header, data): float32 tensors by key. */
async function readSafetensors(path: string): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  const buf = await readFile(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [key, info] of Object.entries(header)) {
    if (key === '__metadata__') continue;
    assert.equal(info.dtype, 'F32', `${path}: ${key} is ${info.dtype}`);
    const [s, e] = info.data_offsets;
    const bytes = buf.subarray(8 + n + s, 8 + n + e);
    out.set(key, { shape: info.shape, data: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)) });
  }
  return out;
}

async function readF64(path: string): Promise<Float64Array> {
  const b = await readFile(path);
  return new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

/** ‖x − y‖_F / ‖y‖_F in float64. */
function relErr(x: ArrayLike<number>, y: ArrayLike<number>): number {
  assert.equal(x.length, y.length);
  let d = 0;
  let n = 0;
  for (let i = 0; i < x.length; i++) {
    d += (x[i] - y[i]) ** 2;
    n += y[i] ** 2;
  }
  return Math.sqrt(d) / Math.sqrt(n);
}

interface PyIndex {
  modules: { module: string; key: string; fanInFanOut: boolean; base: { file: string; shape: number[] }; lora_A: { file: string; shape: number[] }; lora_B: { file: string; shape: number[] }; changeNorm: number }[];
}

describe('independent Python client (docs/protocol.md only) against fedex host', { skip, timeout: 120_000 }, () => {
  const fedex = suiteFedex();
  const tmp = suiteTempDir('py-interop');
  let model: string;
  before(async () => {
    if (missing !== null) assert.fail(`CI is set but ${missing}: .ci/run must install python3-websockets and python3-numpy`);
    model = join(tmp.path, 'model');
    await writeTinyGpt2(model);
  });

  test('3 FedEx rounds with K = 2 Python clients: means, residuals and final weights check out in float64', async () => {
    const token = 'py-interop-token';
    const runDir = join(tmp.path, 'run');
    const pyOut = join(tmp.path, 'py-final');
    const host = fedex(['host', '--model', model, '--port', '0', '--rounds', '3', '--min-clients', '2', '--quorum', '2', '--local-steps', '1',
      // c_attn (96 × 32) gets factored residuals, attn.c_proj (32 × 32) dense ones (§5.3: factored only when smaller)
      '--target-modules', 'c_attn,c_proj', '--token', token, '--out', runDir]);
    const url = await waitForHostUrl(host);
    const py = await run(PYTHON, [CLIENT, url, '--token', token, '--model', model, '--clients', '2', '--rounds', '3', '--out', pyOut, '--timeout', '60'], 90_000);
    if (py.code !== 0 && host.child.exitCode === null) host.child.kill('SIGINT');
    const h = await host.done;
    const context = `python (exit ${py.code}):\n${py.stdout}${py.stderr}\nhost (exit ${h.code}):\n${h.stdout}${h.stderr}`;
    assert.equal(py.code, 0, context);
    assert.equal(h.code, 0, context);
    for (const r of [1, 2, 3]) {
      assert.match(py.stdout, new RegExp(`^round ${r}: participants=2 aggregated=True .*residuals dense\\+factored`, 'm'), context);
    }
    assert.match(h.stdout, /round 3 closed \([^)]*\): 2 updates aggregated/, context);

    // The host's final base and adapter are the Python client's, to float32 precision.
    const index = JSON.parse(await readFile(join(pyOut, 'index.json'), 'utf8')) as PyIndex;
    const finalModel = await readSafetensors(join(runDir, 'final', 'model', 'model.safetensors'));
    const finalAdapter = await readSafetensors(join(runDir, 'final', 'adapter', 'adapter_model.safetensors'));
    assert.ok(index.modules.length > 0);
    for (const m of index.modules) {
      const w = finalModel.get(m.key);
      assert.ok(w !== undefined, `final/model lacks ${m.key}`);
      assert.deepEqual(w.shape, m.base.shape, m.key);
      assert.ok(m.changeNorm > 0, `${m.module}: FedEx changed the base`);
      const e = relErr(w.data, await readF64(join(pyOut, m.base.file)));
      assert.ok(e <= 1e-6, `${m.module}: host's final base differs from the Python float64 base by ${e.toExponential(2)} (relative)`);
      for (const role of ['lora_A', 'lora_B'] as const) {
        const key = `base_model.model.${m.module}.${role}.weight`;
        const t = finalAdapter.get(key);
        assert.ok(t !== undefined, `final/adapter lacks ${key}`);
        assert.deepEqual(t.shape, m[role].shape, key);
        const ea = relErr(t.data, await readF64(join(pyOut, m[role].file)));
        assert.ok(ea <= 1e-7, `${key}: host's final adapter differs from federation_done's by ${ea.toExponential(2)}`);
      }
    }
  });
});
