/**
 * `fedex host`: runs a coordinator. Listens on 127.0.0.1 by default (wss with --cert/--key; with
 * --client-ca also, mutual TLS: only clients with a certificate that CA signed get through), prints
 * the URL, the join token and the `fedex join` line to give to participants, runs the rounds,
 * persists after each one (resumable with --resume), and at the end writes the final global adapter
 * as a PEFT folder (and, for FedEx-LoRA, the updated base model). With --manual-rounds each round
 * waits for the operator: Enter (or a line `start`) on standard input runs it (ui/roundPrompt.ts).
 * A model folder is offered to clients that lack it (they fetch it over the protocol and verify its
 * content hash); --no-model-transfer turns that off.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { STRATEGY_NAMES } from '../../core/strategies/types.js';
import { createOrtProductBackend } from '../../runtime/kernels/factoredUpdate.js';
import { Coordinator } from '../../federation/coordinator/coordinator.js';
import { DEFAULT_MAX_UPDATE_RATIO, type CoordinatorConfig, type FederationPlan, type Quorum } from '../../federation/coordinator/config.js';
import type { ModelOffer } from '../../federation/coordinator/modelServer.js';
import type { ModuleRoundRecord } from '../../federation/coordinator/events.js';
import { adaptableModules, modelManifest } from '../../federation/shared/modelBase.js';
import { modelFolderWriter } from '../../federation/shared/modelFolder.js';
import { readModelSource, recordModelSource } from '../../federation/shared/modelSource.js';
import { writeFileAtomic } from '../../formats/atomicFile.js';
import { eventsFlagSink } from '../../federation/events/eventSink.js';
import { COORDINATOR_EVENT_TYPES } from '../../federation/events/events.js';
import { meanOf } from '../../core/stats.js';
import { AdapterSaver, adapterFields, checkAdapterConfig, writeFederationAdapter, writeBaseFolder } from '../../federation/shared/adapterFolders.js';
import type { ServerTlsOptions } from '../../federation/transport/types.js';
import { defineCommand, type CliCommand } from '../command.js';
import { booleanFlag, choiceFlag, numberFlag, optionalString, type FlagSpecs, type ParsedArgs } from '../args.js';
import { CliError, usageError } from '../errors.js';
import { readToken, TOKEN_ENV, TOKEN_FLAGS } from '../secrets.js';
import { AGGREGATION_FLAGS, aggregationFlags } from '../aggregationFlags.js';
import { deltaText, DP_FLAGS, epsilonText, hasPrivacyFlags, privacyBanner, privacyFlags, privacyNote } from '../privacyFlags.js';
import { ruleLabel } from '../../core/robust.js';
import { CLIENT_CA_FLAG, readClientCa } from '../mutualTls.js';
import { DEFAULT_MODEL, resolveModelDir } from '../modelArg.js';
import { readRoundCommands, readyText } from '../ui/roundPrompt.js';
import { formatBytes, formatNumber } from '../ui/table.js';
import { EVENTS_FLAG, federationModel, humanOut, listFlag, rankListFlag, type FederationModel } from './federationCommon.js';

const FLAGS: FlagSpecs = {
  port: { type: 'string', value: 'n', help: 'TCP port (0 = any free port)', default: '7777' },
  host: { type: 'string', value: 'addr', help: 'interface to bind (0.0.0.0 exposes it to the network)', default: '127.0.0.1' },
  ...TOKEN_FLAGS,
  clients: { type: 'string', value: 'file.json', help: 'admit only the clients enrolled in this registry, each by its own key (fedex keygen, fedex clients add); the shared token then admits no one. Recorded in the run: --resume keeps it' },
  cert: { type: 'string', value: 'file.pem', help: 'TLS certificate: serve wss:// (with --key)' },
  key: { type: 'string', value: 'file.pem', help: 'TLS private key' },
  ...CLIENT_CA_FLAG,
  method: { type: 'string', value: STRATEGY_NAMES.join('|'), help: 'aggregation', default: 'fedex' },
  rounds: { type: 'string', value: 'n', help: 'federated rounds', default: '5' },
  'local-steps': { type: 'string', value: 'n', help: 'optimizer steps per client per round', default: '10' },
  'local-epochs': { type: 'string', value: 'x', help: 'passes over local data per round (instead of --local-steps)' },
  'batch-size': { type: 'string', value: 'n', help: 'examples per step', default: '8' },
  lr: { type: 'string', value: 'x', help: 'learning rate', default: '0.003' },
  rank: { type: 'string', value: 'r', help: 'LoRA rank (the global rank; default 8, or the largest of --ranks)' },
  ranks: { type: 'string', value: 'r1,r2,…', help: 'ranks clients may train at (fedex join --rank r), each ≤ the global rank: heterogeneous clients, exact with fedex and flora (docs/math.md §1.4)' },
  alpha: { type: 'string', value: 'a', help: 'LoRA alpha', default: '16' },
  'target-modules': { type: 'string', value: 'a,b', help: "modules to adapt (default: the architecture's)" },
  weighting: { type: 'string', value: 'uniform|examples', help: 'client weights', default: 'uniform' },
  'max-update-ratio': { type: 'string', value: 'k', help: "refuse an update farther than k × the global adapter's norm from it (poisoned or diverged; 0: off)", default: String(DEFAULT_MAX_UPDATE_RATIO) },
  'max-update-norm': { type: 'string', value: 'x', help: 'also refuse an update farther than x (L2, all its tensors) from the global adapter' },
  'max-examples': { type: 'string', value: 'n', help: 'count no update with more examples than n (examples weighting; default --local-steps × --batch-size)' },
  ...DP_FLAGS,
  'residual-rank': { type: 'string', value: 'k',
    help: "FedEx only: fold the best rank-k approximation of each round's residual (the paper's best inexact variant: downlink k·(out + in) per module; the share dropped is reported per round)" },
  ...AGGREGATION_FLAGS,
  'uplink-dtype': { type: 'string', value: 'float32|float16|bfloat16', help: 'dtype clients upload adapters in (half the bytes with float16/bfloat16; clients that cannot send it use float32; FFA-LoRA needs float32)', default: 'float32' },
  'min-clients': { type: 'string', value: 'n', help: 'clients needed before a round starts', default: '2' },
  quorum: { type: 'string', value: 'x', help: 'updates needed to aggregate: a fraction (0.5) or a count (3)', default: '0.5' },
  'round-timeout': { type: 'string', value: 'seconds', help: 'deadline of a round', default: '600' },
  'sample-fraction': { type: 'string', value: 'x', help: 'share of joined clients sampled per round', default: '1' },
  seed: { type: 'string', value: 's', help: 'seed of sampling and adapter init', default: '0' },
  model: { type: 'string', value: 'dir|synthetic', help: "base model folder (offered to clients that lack it; with --resume: offered when it is the run's model)", default: DEFAULT_MODEL },
  'no-model-transfer': { type: 'boolean', help: 'do not send the base model to clients that lack it (each client then needs --model with its own copy)' },
  out: { type: 'string', value: 'dir', help: 'run directory (state, events.jsonl, final/)', default: 'runs/host' },
  resume: { type: 'string', value: 'dir', help: 'continue the federation persisted in this run directory' },
  'save-adapters': { type: 'boolean', help: "keep every round's accepted client adapters and global adapter (PEFT folders) and the base after it under <run>/adapters/, to check exactness offline (fedex aggregate)" },
  'manual-rounds': { type: 'boolean', help: 'each round waits for the operator: Enter (or a line "start") on standard input runs the next one (not persisted: choose again with --resume)' },
  ...EVENTS_FLAG,
};

const USAGE = 'fedex host [--port 7777] [--method fedex] [--rounds 5] [--min-clients 2] [--model dir] [--out runs/host] [--resume dir] [--manual-rounds] [--no-model-transfer]';
const SUMMARY = [
  'Runs a federation coordinator: clients join with `fedex join <url> --token <token> --data …`, train',
  'locally and upload their adapters; the coordinator aggregates each round (FedEx-LoRA folds the',
  'residual into the base, so the global model is exactly the mean of the client models) and persists',
  'its state; `--resume <dir>` continues after a crash with no completed round lost.',
].join('\n');

/** `--quorum`: `0.5` or `50%` is a fraction, an integer ≥ 1 a count (`1` means one client). */
export function parseQuorum(raw: string): Quorum {
  const text = raw.trim();
  const percent = text.endsWith('%');
  const v = Number(percent ? text.slice(0, -1) : text);
  if (!Number.isFinite(v) || text === '') throw usageError(`fedex host: --quorum must be a fraction (0.5, 50%) or a count (3), got '${raw}'.`);
  if (percent) {
    if (!(v > 0 && v <= 100)) throw usageError(`fedex host: --quorum percentage must be in (0, 100], got '${raw}'.`);
    return { fraction: v / 100 };
  }
  if (Number.isInteger(v) && v >= 1) return { count: v };
  if (v > 0 && v < 1) return { fraction: v };
  throw usageError(`fedex host: --quorum must be a fraction in (0, 1) or a count ≥ 1, got '${raw}'.`);
}

/** `--ranks 4,8,16`: distinct integers in 1..4096, ascending; undefined when the flag is absent. */
export function parseRanks(raw: string | undefined): number[] | undefined {
  if (raw === undefined) return undefined;
  return [...new Set(rankListFlag(raw, 'host', 'ranks', 4096))].sort((a, b) => a - b);
}

/** The model of a resumed run: its folder (or null for the synthetic model), manifest and final-model writer. */
interface ResumedModel {
  readonly dir: string | null;
  readonly offer?: ModelOffer;
  readonly writeModel?: FederationModel['writeModel'];
}

/**
 * The model folder of a run being resumed: --model, else the folder the run recorded; it must have
 * the run's content hash (checked once: the hash is the model's identity). It is offered to
 * clients (unless --no-model-transfer) and final/model is written from it, complete, as an
 * uninterrupted run writes it. Without it the resume is refused, naming the folder it looked for.
 */
async function resumedModel(args: ParsedArgs, runDir: string, plan: FederationPlan): Promise<ResumedModel> {
  const recorded = await readModelSource(runDir);
  const given = optionalString(args, 'model');
  if (given === 'synthetic' || (given === undefined && recorded === null)) return { dir: null };
  const dir = resolveModelDir(given ?? recorded ?? undefined, 'host');
  const manifest = await modelManifest(dir);
  if (manifest.hash !== plan.baseModelHash) {
    throw usageError(`fedex host: --resume ${runDir}: the model folder ${dir} has content hash ${manifest.hash.slice(0, 12)}…, the run uses ${plan.baseModelHash.slice(0, 12)}…; give the run's model folder with --model.`);
  }
  const adaptable = new Map((await adaptableModules(dir)).map((m) => [m.path, m]));
  const modules = plan.layout.map((m) => {
    const found = adaptable.get(m.module);
    if (found === undefined) throw usageError(`fedex host: --resume ${runDir}: the run adapts module ${m.module}, which the model in ${dir} does not have.`);
    return found;
  });
  return {
    dir,
    ...(booleanFlag(args, 'no-model-transfer') ? {} : { offer: { dir, hash: manifest.hash, files: manifest.files } }),
    writeModel: modelFolderWriter(dir, modules),
  };
}

/** `, residual truncated to rank k: up to x of ‖ΔR‖ dropped` when --residual-rank cut this round's residual. */
function truncationNote(modules: readonly ModuleRoundRecord[]): string {
  const cut = modules.flatMap((m) => (m.residualTruncation !== undefined ? [m.residualTruncation] : []));
  if (cut.length === 0) return '';
  return `, residual truncated to rank ${cut[0].rank}: up to ${formatNumber(Math.max(...cut.map((t) => t.relativeError)))} of ‖ΔR‖ dropped (${cut.length} module${cut.length === 1 ? '' : 's'})`;
}

/** Whether `host` is a loopback address (what binding to keeps a coordinator off the network). */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/**
 * The URL clients should use: with a certificate whose names do not include the URL's host (a
 * certificate issued to `localhost`, say, served on 127.0.0.1 or 0.0.0.0), the same URL with the
 * certificate's first DNS name, so the printed join command passes the hostname check.
 */
function certificateUrl(url: string, listen: { tls?: ServerTlsOptions }): string {
  if (listen.tls === undefined) return url;
  let names: string[];
  try {
    const san = new X509Certificate(listen.tls.cert).subjectAltName ?? '';
    names = san.split(',').map((s) => s.trim());
  } catch {
    return url;
  }
  const u = new URL(url);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  if (names.includes(`DNS:${host}`) || names.includes(`IP Address:${host}`)) return url;
  const dns = names.find((n) => n.startsWith('DNS:'));
  if (dns === undefined) return url;
  u.hostname = dns.slice(4);
  return u.toString();
}

async function tlsOptions(args: ParsedArgs): Promise<ServerTlsOptions | undefined> {
  const cert = optionalString(args, 'cert');
  const key = optionalString(args, 'key');
  const clientCa = optionalString(args, 'client-ca');
  if (cert === undefined && key === undefined) {
    if (clientCa !== undefined) throw usageError('fedex host: --client-ca needs --cert and --key (client certificates are checked in the TLS handshake of wss://).');
    return undefined;
  }
  if (cert === undefined || key === undefined) throw usageError('fedex host: --cert and --key go together.');
  const read = async (path: string, flag: string): Promise<string> => {
    try {
      return await readFile(path, 'utf8');
    } catch (err) {
      throw usageError(`fedex host: cannot read --${flag} ${path}: ${(err as Error).message}`);
    }
  };
  return { cert: await read(cert, 'cert'), key: await read(key, 'key'), ...(clientCa !== undefined ? { clientCa: await readClientCa(clientCa) } : {}) };
}

export const hostCommand: CliCommand = defineCommand({
  name: 'host',
  summary: 'run a federation coordinator that clients join over WebSocket',
  usage: USAGE,
  help: SUMMARY,
  flags: FLAGS,
  async run(args, io) {
    const int = (name: string, fallback: number, min: number, max: number): number => numberFlag(args, name, 'host', fallback, { min, max, integer: true });
    const port = int('port', 7777, 0, 65535);
    const listen = { host: optionalString(args, 'host') ?? '127.0.0.1', port, ...(await tlsOptions(args).then((tls) => (tls !== undefined ? { tls } : {}))) };
    const eventsTarget = optionalString(args, 'events');
    const out = humanOut(io, eventsTarget);
    // The join token: --token-file, FEDEX_TOKEN, --token (warned), else generated and printed.
    const token = (await readToken(args, 'host', (line) => io.stderr.write(`${line}\n`)))?.token;
    const resumeDir = optionalString(args, 'resume');
    const clientsArg = optionalString(args, 'clients');
    const clients = clientsArg !== undefined ? resolve(clientsArg) : undefined;
    const manualRounds = booleanFlag(args, 'manual-rounds');
    const backend = createOrtProductBackend();
    let coordinator: Coordinator;
    let model: Awaited<ReturnType<typeof federationModel>> | undefined;
    let writeModel: FederationModel['writeModel'];
    // The base model folder (base_model_name_or_path of the adapters written; null for the synthetic model).
    let modelDir: string | null;
    try {
      if (resumeDir !== undefined) {
        if (hasPrivacyFlags(args)) throw usageError('fedex host: --dp-clip, --dp-noise and --dp-delta cannot be given with --resume: a run keeps the DP settings it started with (its accountant continues from the rounds already released).');
        const runDir = resolve(resumeDir);
        let resumed: ResumedModel | undefined;
        coordinator = await Coordinator.resume(runDir, {
          listen,
          backend,
          manualRounds,
          ...(token !== undefined ? { token } : {}),
          ...(clients !== undefined ? { clients } : {}),
          modelOffer: async (_hash, plan) => (resumed = await resumedModel(args, runDir, plan)).offer,
        });
        writeModel = resumed?.writeModel;
        modelDir = resumed?.dir ?? null;
      } else {
        if (args.values['local-epochs'] !== undefined && args.values['local-steps'] !== undefined) throw usageError('fedex host: give --local-steps or --local-epochs, not both.');
        const clientRanks = parseRanks(optionalString(args, 'ranks'));
        const rank = args.values.rank !== undefined || clientRanks === undefined ? int('rank', 8, 1, 4096) : Math.max(...clientRanks);
        const above = clientRanks?.find((r) => r > rank);
        if (above !== undefined) throw usageError(`fedex host: --ranks ${above} is above the global rank ${rank} (--rank): clients train at most at the global rank.`);
        const alpha = numberFlag(args, 'alpha', 'host', 16, { min: Number.MIN_VALUE });
        const seed = int('seed', 0, 0, 0xffffffff);
        model = await federationModel(optionalString(args, 'model'), 'host', { rank, alpha, seed, targetModules: listFlag(optionalString(args, 'target-modules')) });
        const epochs = args.values['local-epochs'] === undefined ? undefined : numberFlag(args, 'local-epochs', 'host', 1, { min: Number.MIN_VALUE, max: 10_000 });
        // The coordinator checks the rule against the rounds the plan allows (minClients, quorum).
        const weightedBy = (optionalString(args, 'weighting') ?? 'uniform') === 'uniform' ? undefined : `--weighting ${optionalString(args, 'weighting')}`;
        const aggregation = aggregationFlags(args, 'host', weightedBy !== undefined ? { weightedBy } : {});
        const privacy = privacyFlags(args, 'host', [
          ...(weightedBy !== undefined ? [weightedBy] : []),
          ...(args.values['residual-rank'] !== undefined ? ['--residual-rank'] : []),
          ...(aggregation !== undefined ? [`--aggregation ${optionalString(args, 'aggregation')}`] : []),
        ]);
        const config: CoordinatorConfig = {
          runDir: resolve(optionalString(args, 'out') ?? 'runs/host'),
          method: choiceFlag(args, 'method', 'host', STRATEGY_NAMES, 'fedex'),
          rounds: int('rounds', 5, 1, 1_000_000),
          layout: model.layout,
          lora: { rank, alpha, targetModules: model.targetModules },
          training: {
            ...(epochs !== undefined ? { localEpochs: epochs } : { localSteps: int('local-steps', 10, 1, 100_000_000) }),
            batchSize: int('batch-size', 8, 1, 65_536),
            lr: numberFlag(args, 'lr', 'host', 0.003, { min: Number.MIN_VALUE, max: 10 }),
          },
          base: model.base,
          weighting: choiceFlag(args, 'weighting', 'host', ['uniform', 'examples'] as const, 'uniform'),
          ...(aggregation !== undefined ? { aggregation } : {}),
          ...(privacy !== undefined ? { privacy } : {}),
          ...(clientRanks !== undefined ? { clientRanks } : {}),
          uplinkDtype: choiceFlag(args, 'uplink-dtype', 'host', ['float32', 'float16', 'bfloat16'] as const, 'float32'),
          ...(args.values['residual-rank'] !== undefined ? { residualRank: numberFlag(args, 'residual-rank', 'host', 0, { min: 1, integer: true }) } : {}),
          maxUpdateRatio: numberFlag(args, 'max-update-ratio', 'host', DEFAULT_MAX_UPDATE_RATIO, { min: 0, max: 1e12 }),
          ...(args.values['max-update-norm'] !== undefined ? { maxUpdateNorm: numberFlag(args, 'max-update-norm', 'host', 1, { min: Number.MIN_VALUE }) } : {}),
          ...(args.values['max-examples'] !== undefined ? { maxExamples: int('max-examples', 1, 1, Number.MAX_SAFE_INTEGER) } : {}),
          minClients: int('min-clients', 2, 1, 1_000_000),
          quorum: parseQuorum(optionalString(args, 'quorum') ?? '0.5'),
          roundTimeoutMs: Math.round(1000 * numberFlag(args, 'round-timeout', 'host', 600, { min: 0.1, max: 86_400 * 7 })),
          sampleFraction: numberFlag(args, 'sample-fraction', 'host', 1, { min: Number.MIN_VALUE, max: 1 }),
          seed,
          backend,
          listen,
          ...(token !== undefined ? { token } : {}),
        };
        // The final adapter's config is checked now, not after the last round.
        checkAdapterConfig(join(config.runDir, 'final', 'adapter'), config.layout, adapterFields(config.layout, config.lora));
        const offer = booleanFlag(args, 'no-model-transfer') || model.modelDir === null || model.manifest === undefined
          ? undefined :
          { dir: model.modelDir, hash: model.manifest.hash, files: model.manifest.files };
        coordinator = await Coordinator.create({ ...config, manualRounds, ...(offer !== undefined ? { modelOffer: offer } : {}), ...(clients !== undefined ? { clients } : {}) });
        await recordModelSource(config.runDir, model.modelDir);
        writeModel = model.writeModel;
        modelDir = model.modelDir;
      }
    } catch (err) {
      await backend.dispose();
      const e = err as Error & { code?: string };
      if (e.code === 'RUN_DIR_IN_USE') throw new CliError(`fedex host: ${e.message} (--resume <dir> continues it, --out <dir> starts a new one elsewhere).`);
      if (e.code === 'RUN_DIR_LOCKED') throw new CliError(`fedex host: ${e.message}; stop it first, or use another --out.`);
      if (e.code === 'CONFIG_INVALID' && clients !== undefined && e.message.includes(clients)) throw new CliError(`fedex host: --clients: ${e.message}`);
      throw err;
    }

    const sink = eventsFlagSink(eventsTarget, io.stdout);
    for (const type of COORDINATOR_EVENT_TYPES) {
      (coordinator.on as (t: string, l: (p: never) => void) => unknown)(type, (payload: never) => sink.emit(type, payload));
    }
    const plan = coordinator.plan;
    // --save-adapters: what simulate --save-adapters writes, from the uploads this coordinator accepts.
    // Folder names are this process's (client-1, client-2, … in order of first upload), listed in clients.json.
    let saver: AdapterSaver | undefined;
    let saveNames: (() => Promise<void>) | undefined;
    if (booleanFlag(args, 'save-adapters')) {
      const dir = join(coordinator.runDir, 'adapters');
      const fields = adapterFields(plan.layout, plan.lora, modelDir);
      checkAdapterConfig(dir, plan.layout, fields);
      const names = new Map<string, string>();
      const s = new AdapterSaver(dir, { layout: plan.layout, ...(writeModel !== undefined ? { writeModel } : {}) }, fields);
      saver = s;
      saveNames = async () => writeFileAtomic(join(dir, 'clients.json'), `${JSON.stringify(Object.fromEntries([...names].map(([id, folder]) => [folder, id])), null, 2)}\n`);
      if (coordinator.state.round === 0) {
        const snap = coordinator.snapshot();
        s.global(0, snap.global, snap.base);
      }
      coordinator.uploadObserver = (round, clientId, adapter) => {
        if (!names.has(clientId)) names.set(clientId, `client-${names.size + 1}`);
        s.client(round, names.get(clientId)!, adapter);
      };
      coordinator.on('round_closed', (r) => {
        if (!r.aggregated) return;
        const snap = coordinator.snapshot();
        s.global(r.round, snap.global, snap.base);
      });
    }
    coordinator.on('client_joined',
      (e) => out.write(`+ ${e.name}${coordinator.keys !== undefined ? ` (client ${e.clientId}, by key)` : ''} joined${e.certificate !== undefined ? ` with certificate ${e.certificate}` : ''} (${e.clients} connected)\n`));
    coordinator.on('client_left', (e) => out.write(`- ${e.name}${coordinator.keys !== undefined ? ` (client ${e.clientId})` : ''} left: ${e.reason} (${e.clients} connected)\n`));
    coordinator.on('client_rejected', (e) =>
      out.write(/^\d+ more rejected/.test(e.message)
        ? `! ${e.message}\n` // a per-minute summary of rejections no longer logged one by one
        : `! refused a connection from ${e.remote}: ${e.code} ${e.message}\n`));
    coordinator.on('round_ready', (e) => out.write(`${readyText(e.round, plan.rounds)}\n`));
    coordinator.on('round_started', (e) => out.write(`round ${e.round}/${plan.rounds}: ${e.sampled.length} clients sampled, quorum ${e.quorum}\n`));
    coordinator.on('update_accepted', (e) => out.write(`  ${e.clientId}: update for round ${e.round} (${e.examples} examples, train loss ${formatNumber(e.trainLoss)})\n`));
    coordinator.on('update_rejected', (e) => out.write(`  ${e.clientId}: update for round ${e.round} refused: ${e.code} ${e.reason}\n`));
    coordinator.on('client_failed', (e) => out.write(`  ${e.clientId} failed round ${e.round}: ${e.reason}\n`));
    const notAggregated: { round: number; why: string }[] = [];
    coordinator.on('round_closed', (r) => {
      const dev = meanOf(r.modules.map((m) => m.relativeDeviation));
      if (!r.aggregated) {
        const why = r.participants.length < r.quorum
          ? `${r.participants.length} of ${r.sampled.length} sampled clients delivered, quorum ${r.quorum}${r.failures.length > 0 ? ` (${r.failures.map((f) => `${f.clientId}: ${f.reason}`).join('; ')})` : ''}`
          : 'the aggregation failed (see the warning above)';
        notAggregated.push({ round: r.round, why });
      }
      out.write(`round ${r.round} closed (${r.closedBy}): ${r.aggregated ? `${r.participants.length} updates aggregated` : `NOT aggregated, the global model is unchanged: ${notAggregated.at(-1)!.why}`}`
        + `${r.loss !== null ? `, mean train loss ${formatNumber(r.loss.mean)}` : ''}${dev !== null ? `, mean rel. deviation ${formatNumber(dev)}` : ''}`
        + `${truncationNote(r.modules)}${r.privacy !== undefined ? privacyNote(r.privacy) : ''}, ${formatBytes(r.traffic.sent)} sent, ${formatBytes(r.traffic.received)} received\n`);
    });
    coordinator.on('warning', (e) => out.write(`warning: ${e.message}\n`));
    const offered = coordinator.models?.offer;
    const offeredBytes = offered?.files.reduce((n, f) => n + f.bytes, 0) ?? 0;
    coordinator.on('model_transfer', (e) => {
      if (e.status === 'started') out.write(`↓ ${e.name} is fetching the base model (${formatBytes(offeredBytes)})\n`);
      else out.write(`↓ ${e.name} ${e.status === 'finished' ? 'has fetched the base model' : 'stopped fetching the base model'}: ${formatBytes(e.bytesServed)} in ${e.requests} requests\n`);
    });

    const onSigint = (): void => {
      out.write('\ninterrupted: stopping (the run directory stays resumable with --resume)\n');
      void coordinator.close();
    };
    process.once('SIGINT', onSigint);
    let prompt: { close(): void } | undefined;
    try {
      const url = await coordinator.start();
      out.write(
        `fedex host: ${plan.method} federation${plan.aggregation !== undefined ? ` (aggregation ${ruleLabel(plan.aggregation)})` : ''}, ${plan.rounds} rounds, ${plan.layout.length} adapted modules, run directory ${coordinator.runDir}\n`,
      );
      if (plan.privacy !== undefined) out.write(`${privacyBanner(plan.privacy)}\n`);
      if (plan.clientRanks !== undefined)
        out.write(
          `global rank ${plan.lora.rank}; clients may also train at rank ${
            plan.clientRanks.join(', ')
          } (fedex join --rank r): each starts from the global adapter truncated to its rank, and what that drops is folded into the base, exactly\n`,
        );
      const joinUrl = certificateUrl(url, listen);
      if (joinUrl !== url) out.write(`listening on ${url} (certificate names ${new URL(joinUrl).hostname}: clients use ${joinUrl})\n`);
      else out.write(`listening on ${url}\n`);
      const keys = coordinator.keys;
      if (keys === undefined) out.write(`join token: ${coordinator.token} (shared by every client, for trials among trusted parties: any holder can join under any client id; --clients admits each client by its own key)\n`);
      else out.write(`clients admitted by key: ${keys.enrolled.length} enrolled in ${keys.path} (fedex clients add|revoke|list --clients ${keys.path}; changes apply within a second)\n`);
      if (!isLoopback(listen.host) && listen.tls === undefined) {
        out.write(`warning: listening on ${listen.host} without TLS: ${keys === undefined ? 'the join token' : 'client ids'} and every adapter cross the network in clear; give --cert and --key\n`);
      }
      const modelHint = offered !== undefined || model === undefined ? '' : model.modelDir === null ? ' --model synthetic' : ' --model <their copy of the model folder>';
      if (listen.tls?.clientCa !== undefined) out.write(`mutual TLS: only clients presenting a certificate signed by --client-ca ${optionalString(args, 'client-ca')} get through the TLS handshake\n`);
      const clientCertHint = listen.tls?.clientCa !== undefined ? ' --client-cert <their certificate> --client-key <its key>' : '';
      const tlsHint = `${listen.tls !== undefined ? ' --ca <the CA certificate, if not a public one>' : ''}${clientCertHint}`;
      if (keys === undefined) out.write(`clients join with (the token in the environment keeps it out of the process list):\n  ${TOKEN_ENV}=${coordinator.token} fedex join ${joinUrl} --data task:arith${modelHint}${tlsHint}\n`);
      else out.write(`clients join with their key:\n  fedex join ${joinUrl} --identity <their .key file> --data task:arith${modelHint}${tlsHint}\n`);
      if (offered !== undefined) out.write(`base model offered to clients that lack it: ${offered.files.length} files, ${formatBytes(offeredBytes)} (--no-model-transfer turns this off)\n`);
      out.write(`waiting for ${plan.minClients} client${plan.minClients === 1 ? '' : 's'}…\n`);
      if (manualRounds) {
        out.write('manual rounds: once they have joined, press Enter (or type start) to run each round\n');
        prompt = readRoundCommands(io.stdin ?? process.stdin, () => coordinator.startNextRound(), out);
      }
      const finishedBefore = coordinator.state.done;
      const summary = await coordinator.run();
      await saver?.flush();
      await saveNames?.();
      const snap = coordinator.snapshot();
      const finalDir = join(coordinator.runDir, 'final');
      if (finishedBefore !== null && existsSync(join(finalDir, 'adapter'))) {
        // Resuming a finished run changes nothing: final/ stays as the run wrote it.
        out.write(`fedex host: the federation in ${coordinator.runDir} had already finished (${finishedBefore.reason}, ${summary.roundsCompleted}/${summary.rounds} rounds aggregated); nothing to do, ${finalDir} is unchanged\n`);
        return summary.roundsCompleted < summary.rounds ? 1 : 0;
      }
      await writeFederationAdapter(join(finalDir, 'adapter'), snap.global, plan.layout, adapterFields(plan.layout, plan.lora, modelDir));
      if (snap.revision > 0) {
        await writeBaseFolder(join(finalDir, 'model'), snap.base, { layout: plan.layout, ...(writeModel !== undefined ? { writeModel } : {}) });
      }
      out.write(`federation done: ${summary.roundsCompleted}/${summary.rounds} rounds aggregated. Global adapter (PEFT): ${join(finalDir, 'adapter')}`
        + `${snap.revision > 0 ? `; updated base model: ${join(finalDir, 'model')} (the adapter applies to this model, not to the original base; one adapter on the original base: fedex export ${coordinator.runDir} --out <dir>)` : ''}\n`);
      const spent = coordinator.state.history.at(-1)?.privacy;
      if (spent !== undefined) out.write(`privacy spent: ε = ${epsilonText(spent.epsilon)} at δ = ${deltaText(spent.delta)} over ${spent.releases} released round${spent.releases === 1 ? '' : 's'} (client-level, sampling rate 1)\n`);
      if (summary.roundsCompleted < summary.rounds) {
        // Silent is wrong: rounds that aggregated nothing make the run a failure, whatever was written.
        const lost = notAggregated.length > 0 ? notAggregated : [{ round: 0, why: 'see events.jsonl' }];
        io.stderr.write(summary.roundsCompleted === 0
          ? `fedex host: no round aggregated: ${lost.map((l) => `round ${l.round}: ${l.why}`).join('; ')}\n`
          : `fedex host: ${summary.rounds - summary.roundsCompleted} of ${summary.rounds} rounds aggregated nothing (${lost.map((l) => `round ${l.round}: ${l.why}`).join('; ')})\n`);
        return 1;
      }
      return 0;
    } catch (err) {
      const e = err as Error & { code?: string };
      if (e.code === 'STOPPED') return 130;
      sink.emit('error', { message: e.message });
      if (e.code === 'T_LISTEN') throw new CliError(`fedex host: ${e.message}; choose another --port (0 = any free port) or --host.`);
      throw err;
    } finally {
      process.removeListener('SIGINT', onSigint);
      prompt?.close();
      await coordinator.close();
      await backend.dispose();
      await sink.close();
    }
  },
});
