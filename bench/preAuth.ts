/**
 * Limits before authentication (issue 12, docs/protocol.md §13): how long an honest client takes to
 * join (connect, hello, welcome) with and without a flood of idle, unauthenticated connections held
 * by a child process (bench/preAuthFlood.ts) — spread over many loopback source addresses (all
 * admitted: the coordinator carries them), and from one address (32 admitted, the rest refused with
 * 503 and retried every second). Coordinator defaults: 1024 connections, 32 pending per address,
 * hello timeout 10 s. The full run spaces the joins over 12 s, so they also meet the moment the
 * coordinator closes the whole flood at its hello timeout and the flood comes back. Also counts what
 * the coordinator logged about the flood. Each scenario runs twice: clients admitted by the shared
 * token, and by enrolled Ed25519 keys (protocol 1.2: hello, challenge, signed response, welcome —
 * one more round trip and a signature each side). A last row times the signature check alone.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTypeScriptBackend } from '../src/core/product.js';
import { createSyntheticBase } from '../src/federation/client/syntheticTrainer.js';
import { Coordinator } from '../src/federation/coordinator/coordinator.js';
import type { AdapterLayout } from '../src/federation/protocol/adapterTensors.js';
import { encodeMessage, tryDecodeMessage } from '../src/federation/protocol/codec.js';
import { connectTransport } from '../src/federation/transport/client.js';
import { generateKeyPairSync } from 'node:crypto';
import { answerChallenge } from '../src/federation/client/credentials.js';
import { enrollClient, ENROLLMENT_FORMAT, ENROLLMENT_VERSION, writeEnrollment, type EnrollmentFile } from '../src/federation/coordinator/enrollment.js';
import type { ParamsOf } from '../src/federation/protocol/messages.js';
import { IDENTITY_SCHEME, newNonce, publicKeyText, signChallenge, verifyChallenge } from '../src/federation/protocol/identity.js';
import type { ClientIdentity } from '../src/federation/shared/identityFiles.js';
import type { BenchRow } from './aggregation.js';
import type { FloodArgs, FloodStatus } from './preAuthFlood.js';

export interface PreAuthBenchOptions {
  readonly smoke: boolean;
  readonly log: (line: string) => void;
}

const here = fileURLToPath(new URL('.', import.meta.url));
const TOKEN = 'preauth-bench-token';
const LAYOUT: AdapterLayout = [{ module: 'layers.0.proj', in: 64, out: 64, rank: 4, fanInFanOut: false }];

/** One honest join: connect, hello (token, or key and challenge response), welcome, close; retried (and counted) when the upgrade is refused. */
async function honestJoin(url: string, i: number, baseHash: string, identity?: ClientIdentity): Promise<{ ms: number; refusals: number }> {
  const t0 = performance.now();
  for (let refusals = 0;; refusals++) {
    try {
      const conn = await connectTransport(url, { maxFrameBytes: 1 << 20, heartbeatMs: 30_000 });
      const hello: ParamsOf<'hello'> = {
        protocolMajor: 1,
        protocolMinor: 2,
        clientName: `honest ${i}`,
        clientId: identity?.clientId ?? `honest-${i}`,
        device: 'cpu',
        baseModelHash: baseHash,
        ...(identity !== undefined ? { identity: { scheme: IDENTITY_SCHEME, publicKey: identity.publicKey } } : { token: TOKEN }),
        capabilities: { uplinkDtypes: ['float32'], factoredResidual: true, modelTransfer: false, maxFrameBytes: 1 << 20 },
      };
      const welcome = new Promise<void>((resolve, reject) => {
        conn.on('frame', (bytes) => {
          const r = tryDecodeMessage(bytes, { receiver: 'client' });
          if (r.ok && r.message.method === 'welcome') resolve();
          else if (r.ok && r.message.method === 'challenge' && identity !== undefined) {
            void conn.send(encodeMessage({ method: 'challenge_response', params: answerChallenge(identity, hello, r.message.params) })).catch(reject);
          } else if (r.ok && r.message.method === 'reject') reject(new Error(`honest client rejected: ${r.message.params.code} ${r.message.params.message}`));
        });
        conn.once('close', (info) => reject(new Error(`honest client closed before welcome: ${info.reason}`)));
      });
      await conn.send(encodeMessage({ method: 'hello', params: hello }));
      await welcome;
      const ms = performance.now() - t0;
      conn.close(1000, 'bench done');
      return { ms, refusals };
    } catch (err) {
      if (!(err instanceof Error && /HTTP 503/.test(err.message)) || refusals >= 100) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** The Ed25519 signature and its check alone, per handshake (µs), over `n` challenges. */
function signatureCost(n: number): { signUs: number; verifyUs: number } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const contexts = Array.from({ length: n }, (_, i) => ({ nonce: newNonce(), clientId: `c${i}`, publicKey: publicKeyText(privateKey), baseModelHash: 'ab'.repeat(32), signedAt: Date.now() }));
  let t0 = performance.now();
  const signatures = contexts.map((c) => signChallenge(privateKey, c));
  const signUs = ((performance.now() - t0) * 1000) / n;
  t0 = performance.now();
  for (let i = 0; i < n; i++) if (!verifyChallenge(publicKey, contexts[i], signatures[i])) throw new Error('bench: a signature did not verify');
  return { signUs, verifyUs: ((performance.now() - t0) * 1000) / n };
}

function startFlood(args: FloodArgs): { ready: Promise<FloodStatus>; latest: () => FloodStatus | undefined; stop: () => void } {
  const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'preAuthFlood.ts'), JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let last: FloodStatus | undefined;
  let err = '';
  let buffered = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const ready = new Promise<FloodStatus>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        last = JSON.parse(line) as FloodStatus;
        resolve(last);
      }
    });
    child.on('close', (code) => reject(new Error(`flood process exited with ${code}: ${err.slice(-2000)}`)));
  });
  return { ready, latest: () => last, stop: () => child.kill() };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const quantile = (xs: number[], q: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];

/** Runs the suite; returns rows for the table (the first row is the baseline of the ratios). */
export async function preAuthBench(o: PreAuthBenchOptions): Promise<BenchRow[]> {
  const joins = o.smoke ? 5 : 30;
  const gapMs = o.smoke ? 0 : 400;
  const flood = o.smoke ? 100 : 1_000;
  // 25 per address: under the 32 pending a single address may hold.
  const spread = Array.from({ length: Math.ceil(flood / 25) }, (_, i) => `127.0.${1 + (i >> 8)}.${1 + (i & 255)}`);
  const scenarios: { impl: string; addresses: readonly string[] | null }[] = [
    { impl: 'no flood', addresses: null },
    { impl: `${flood} idle unauthenticated connections from ${spread.length} addresses`, addresses: spread },
    { impl: `${flood} idle unauthenticated connections from 1 address (refused ones retried every second)`, addresses: ['127.0.0.2'] },
    // The baseline again: how much of a difference is this machine's noise.
    { impl: 'no flood (again, after the floods)', addresses: null },
  ];
  const rows: BenchRow[] = [];
  const identities: ClientIdentity[] = Array.from({ length: joins + 5 }, (_, i) => {
    const { privateKey } = generateKeyPairSync('ed25519');
    return { clientId: `honest-${i}`, privateKey, publicKey: publicKeyText(privateKey) };
  });
  for (const s of scenarios.flatMap((x) => (['token', 'key'] as const).map((auth) => ({ ...x, auth })))) {
    const dir = await mkdtemp(join(tmpdir(), 'fedex-bench-preauth-'));
    const base = createSyntheticBase(LAYOUT, 1);
    let clients: string | undefined;
    if (s.auth === 'key') {
      clients = join(dir, 'clients.json');
      let file: EnrollmentFile = { format: ENROLLMENT_FORMAT, version: ENROLLMENT_VERSION, clients: [] };
      for (const id of identities) file = enrollClient(file, id.clientId, id.publicKey);
      await writeEnrollment(clients, file);
    }
    const coordinator = await Coordinator.create({
      runDir: join(dir, 'run'),
      method: 'fedit',
      rounds: 1,
      layout: LAYOUT,
      base,
      lora: { rank: 4, alpha: 8, targetModules: ['proj'] },
      training: { localSteps: 1, batchSize: 1, lr: 1e-3 },
      token: TOKEN,
      minClients: 1_000,
      deviationMetrics: false,
      updateHeatmap: false,
      backend: createTypeScriptBackend(),
      ...(clients !== undefined ? { clients } : {}),
    });
    const idFor = (i: number): ClientIdentity | undefined => (s.auth === 'key' ? identities[(i + identities.length) % identities.length] : undefined);
    let logged = 0;
    coordinator.on('client_rejected', () => logged++);
    coordinator.on('protocol_error', () => logged++);
    const url = await coordinator.start();
    const flooder = s.addresses === null ? undefined : startFlood({ url, connections: flood, addresses: s.addresses, retryMs: 1_000 });
    try {
      let status: FloodStatus | undefined;
      if (flooder !== undefined) {
        o.log(`preauth: ${s.impl}: opening`);
        status = await flooder.ready;
        o.log(`preauth: ${status.open} open, ${status.refused} refused, ${status.dropped} dropped after ${status.settleMs.toFixed(0)} ms`);
      }
      o.log(`preauth: ${s.impl}: ${joins} honest joins`);
      for (let i = 1; i <= 5; i++) await honestJoin(url, -i, base.hash, idFor(-i)); // warm-up, not counted
      const times: number[] = [];
      let refusals = 0;
      for (let i = 0; i < joins; i++) {
        if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
        const r = await honestJoin(url, i, base.hash, idFor(i));
        times.push(r.ms);
        refusals += r.refusals;
      }
      const end = flooder?.latest();
      rows.push({
        suite: 'preauth',
        case: `honest join by ${s.auth === 'key' ? 'key (connect, hello → challenge → signed response → welcome)' : 'token (connect, hello → welcome)'}, ${joins} one after another${gapMs > 0 ? `, ${gapMs} ms apart` : ''}`,
        impl: s.impl,
        medianMs: median(times),
        minMs: Math.min(...times),
        peakRssMiB: null,
        note: `p90 ${quantile(times, 0.9).toFixed(1)} ms; ${refusals} honest attempts refused`
          + (status === undefined || end === undefined
            ? ''
            : `; flood: ${status.open} held after ${(status.settleMs / 1000).toFixed(1)} s, ${end.open} at the end, ${end.refused} upgrades refused (503) and ${end.dropped} dropped, ${end.closedByServer} closed by the coordinator`)
          + `; ${logged} rejection lines logged`,
      });
    } finally {
      flooder?.stop();
      await coordinator.close();
      await rm(dir, { recursive: true, force: true });
    }
  }
  const n = o.smoke ? 200 : 5_000;
  const cost = signatureCost(n);
  rows.push({
    suite: 'preauth',
    case: `Ed25519 challenge signature alone, ${n} challenges`,
    impl: 'node:crypto sign (client) / verify (coordinator)',
    medianMs: cost.verifyUs / 1000,
    minMs: cost.verifyUs / 1000,
    peakRssMiB: null,
    note: `verify ${cost.verifyUs.toFixed(1)} µs, sign ${cost.signUs.toFixed(1)} µs per handshake (mean)`,
  });
  return rows;
}
