/**
 * `fedex join <url> --token T --data …`: a federation client. With --model, checks that its local
 * base model has the coordinator's content hash; without, fetches the coordinator's base model into
 * the model cache (or finds it there, verified) and uses that. Trains each round it is sampled for
 * on its own data (onnxruntime, in a worker thread), uploads its adapter, and reconnects with
 * backoff when the connection drops. At the end it can write the final global adapter as a PEFT folder.
 */
import { readFile } from 'node:fs/promises';
import { availableParallelism, hostname } from 'node:os';
import { resolve } from 'node:path';
import { defaultModelCacheDir, ModelCache } from '../../federation/client/modelCache.js';
import { fetchBaseModel, type ModelFetchProgress } from '../../federation/client/modelFetch.js';
import { randomBytes } from 'node:crypto';
import { DEVICES } from '../../runtime/session.js';
import { FederationClient, type ClientOutcome } from '../../federation/client/client.js';
import { ClientError } from '../../federation/client/errors.js';
import { createModelClient } from '../../federation/client/modelClient.js';
import { createSyntheticTrainer } from '../../federation/client/syntheticTrainer.js';
import type { FederationSettings, LocalTrainer } from '../../federation/client/trainer.js';
import type { ConnectOptions } from '../../federation/transport/types.js';
import { eventsFlagSink } from '../../federation/events/eventSink.js';
import { meanOf } from '../../core/stats.js';
import { adapterFields, checkAdapterConfig, writeFederationAdapter } from '../../federation/shared/adapterFolders.js';
import { defineCommand, type CliCommand, type CliIO } from '../command.js';
import { booleanFlag, choiceFlag, numberFlag, optionalString, type FlagSpecs } from '../args.js';
import { CliError, usageError } from '../errors.js';
import { readToken, TOKEN_ENV, TOKEN_FLAGS } from '../secrets.js';
import { IdentityFileError, isClientId, readIdentityFile, type ClientIdentity } from '../../federation/shared/identityFiles.js';
import { certificateRefusal, CLIENT_CERTIFICATE_FLAGS, readClientCertificate } from '../mutualTls.js';
import { ProgressBar } from '../ui/progress.js';
import { describeTruncation, type DataReport } from '../../trainer/data/report.js';
import { resolveSplit } from '../../trainer/data/pipeline.js';
import { formatBytes, formatNumber } from '../ui/table.js';
import { CLIENT_TRAINER_FLAGS, EVENTS_FLAG, federationModel, humanOut, type FederationModel } from './federationCommon.js';
import { loadTrainerFactory } from './trainerFactory.js';
import { basePrecisionFlag } from './eval.js';
import { recomputeFlag } from '../recomputeFlag.js';

const FLAGS: FlagSpecs = {
  ...TOKEN_FLAGS,
  identity: { type: 'string', value: 'file.key', help: "join with your own key (fedex keygen) at a coordinator that admits clients by key (fedex host --clients); your client id is the key's" },
  data: { type: 'string', value: 'file.jsonl|task:NAME', help: 'your training data (docs/data.md)' },
  'eval-data': { type: 'string', value: 'file.jsonl|task:NAME', help: 'eval data for local metrics (default: held out from --data)' },
  shard: { type: 'string', value: 'i/k', help: 'train on part i of k of --data (e.g. 2/3; for demos on one machine)' },
  split: { type: 'string', value: 'non-iid|iid', help: 'how --shard cuts the data (non-iid groups records by "group" or "label"; data with neither is split iid, with a note)', default: 'non-iid' },
  model: { type: 'string', value: 'dir|synthetic', help: "your copy of the base model (its content hash must be the federation's); without it the coordinator's model is fetched into --model-cache, or found there" },
  'model-cache': { type: 'string', value: 'dir', help: 'where base models fetched without --model are kept, one folder per content hash (default ~/.cache/fedex/models)' },
  device: { type: 'string', value: DEVICES.join('|'), help: 'onnxruntime device', default: 'cpu' },
  ...CLIENT_TRAINER_FLAGS,
  threads: { type: 'string', value: 'n', help: 'onnxruntime threads (default: all cores)' },
  'seq-len': { type: 'string', value: 'n', help: 'longest sequence in tokens (longer records are cut, and how many is reported)', default: '64' },
  pack: { type: 'boolean', help: 'pack language-modelling examples into full --seq-len rows instead of padding each (no example is cut; attention crosses example boundaries)' },
  name: { type: 'string', value: 'text', help: 'display name shown to the coordinator (default: host name)' },
  'client-id': { type: 'string', value: 'id', help: 'stable client id kept across restarts (default: random)' },
  seed: { type: 'string', value: 's', help: 'seed of data order (and of the synthetic model)', default: '0' },
  rank: { type: 'string', value: 'r',
    help: "train at this LoRA rank, one the coordinator allows (fedex host --ranks); default: the federation's global rank. Each round starts from the global adapter truncated to it, exactly (docs/math.md §1.4)" },
  'reconnect-for': { type: 'string', value: 'seconds', help: 'keep reconnecting (capped exponential backoff, 0.5 s doubling to 30 s) this long after the coordinator becomes unreachable, e.g. while it restarts with --resume',
    default: '600' },
  retries: { type: 'string', value: 'n', help: 'also give up after this many consecutive failed connection attempts (default: only --reconnect-for limits them)' },
  ca: { type: 'string', value: 'file.pem', help: 'extra CA certificate to trust for wss://' },
  ...CLIENT_CERTIFICATE_FLAGS,
  out: { type: 'string', value: 'dir', help: 'write the final global adapter here as a PEFT folder' },
  ...EVENTS_FLAG,
};

const USAGE = 'FEDEX_TOKEN=<T> fedex join <ws://host:port/> [--token-file file] --data <file.jsonl|task:NAME> [--model dir | --model-cache dir] [--device cpu] [--name text]';
const SUMMARY = 'Joins a federation run by `fedex host`: trains on your data locally, sends only the LoRA adapter.';

/** `--shard 2/3` → index 1 of 3. */
export function parseShard(raw: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(raw.trim());
  const i = m === null ? NaN : Number(m[1]);
  const k = m === null ? NaN : Number(m[2]);
  if (!(k >= 1 && i >= 1 && i <= k)) throw usageError(`fedex join: --shard must be i/k with 1 ≤ i ≤ k (e.g. 2/3), got '${raw}'.`);
  return { index: i - 1, count: k };
}

/** 32-bit FNV-1a of a string (distinct synthetic updates per client id). */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** How long and how often the client retries an unreachable coordinator, and how it went. */
interface Reconnect {
  readonly options: { readonly maxDurationMs: number; readonly maxAttempts?: number };
  readonly seconds: number;
  readonly label: string;
  /** Consecutive failed attempts so far. */
  attempts: number;
}

function explain(err: ClientError, url: string, reconnect: Reconnect, fetching: boolean, clientCertPath: string | undefined): CliError {
  const refused = certificateRefusal(err, url, clientCertPath);
  if (refused !== null) return refused;
  if (fetching && err.code === 'E_BASE_MISMATCH') {
    return new CliError(`fedex join: ${err.message}. Pass --model with your copy of the coordinator's model folder (or --model synthetic if it runs the synthetic model).`);
  }
  if (err.code === 'E_MODEL_TRANSFER') return new CliError(`fedex join: fetching the base model from ${url} failed (${err.code}): ${err.message}`);
  switch (err.code) {
    case 'C_CONNECT':
      return new CliError(`fedex join: cannot reach ${url} after ${Math.max(1, reconnect.attempts + 1)} attempt${reconnect.attempts === 0 ? '' : 's'}`
        + `${reconnect.options.maxAttempts === undefined ? ` over ${reconnect.seconds} s (--reconnect-for)` : ''}: ${
          err.cause instanceof Error ? err.cause.message : err.message
        }. Is \`fedex host\` running there, and are the scheme (ws:// or wss://), host and port right?`);
    case 'E_AUTH':
      return new CliError(/token/.test(err.message) && !/key/.test(err.message)
        ? `fedex join: ${url} refused the token (E_AUTH). Use the token \`fedex host\` printed.`
        : `fedex join: ${url} refused this client (E_AUTH): ${err.message}.`);
    case 'E_VERSION':
      return new CliError(`fedex join: protocol version mismatch with ${url} (E_VERSION): ${err.message}. Use the same fedex version as the coordinator.`);
    case 'E_RANK':
      return new CliError(`fedex join: ${url} does not let this client train at that rank (E_RANK): ${err.message}. Use a rank the host allows (fedex host --ranks), or leave --rank out.`);
    case 'E_BASE_MISMATCH':
    case 'C_BASE_LAYOUT':
      return new CliError(`fedex join: your base model does not match the federation's (${err.code}): ${err.message}. Pass --model with the same model folder as the coordinator.`);
    default:
      return new CliError(`fedex join: [${err.code}] ${err.message}`);
  }
}

/** The coordinator's base model from the model cache, fetched first when it is not there (Ctrl-C stops the fetch). */
async function fetchedModel(o: {
  url: string;
  token?: string;
  identity?: ClientIdentity;
  name: string;
  clientId: string;
  device: string;
  reconnect: Reconnect;
  tls: ConnectOptions['tls'];
  clientCertPath: string | undefined;
  cacheDir: string | undefined;
  out: CliIO['stdout'];
  stderr: CliIO['stderr'];
  sink: ReturnType<typeof eventsFlagSink>;
  lora: Parameters<typeof federationModel>[2];
}): Promise<FederationModel> {
  const cache = new ModelCache(resolve(o.cacheDir ?? defaultModelCacheDir()));
  const stop = new AbortController();
  const onSigint = (): void => stop.abort();
  process.once('SIGINT', onSigint);
  let bar: ProgressBar | undefined;
  let shown = 0;
  const onProgress = (p: ModelFetchProgress): void => {
    o.sink.emit('join_model', p);
    const what = `base model ${p.hash.slice(0, 12)}… (${p.files} files, ${formatBytes(p.totalBytes)})`;
    if (p.status === 'offered') o.out.write(`fetching ${what} from the coordinator into ${cache.root}\n`);
    if (p.status === 'waiting') o.out.write(`another fedex process is fetching ${what} into ${cache.root}; waiting for it\n`);
    if (p.status === 'progress') {
      bar ??= new ProgressBar('base model', p.totalBytes, o.stderr);
      bar.tick(p.bytes - shown, `${formatBytes(p.bytes)} / ${formatBytes(p.totalBytes)}`);
      shown = p.bytes;
    }
  };
  try {
    const fetched = await fetchBaseModel({
      url: o.url,
      ...(o.identity !== undefined ? { identity: o.identity } : { token: o.token }),
      name: o.name,
      clientId: o.clientId,
      device: o.device,
      cache,
      signal: stop.signal,
      onProgress,
      reconnect: o.reconnect.options,
      ...(o.tls !== undefined ? { tls: o.tls } : {}),
      onRetry: (attempt, delayMs, message) => {
        o.reconnect.attempts = attempt + 1;
        o.out.write(`cannot connect (${message}); retrying in ${(delayMs / 1000).toFixed(1)} s (attempt ${attempt + 1}${o.reconnect.label})\n`);
      },
    });
    bar?.done();
    const m = fetched.manifest;
    o.out.write(fetched.downloaded
      ? `base model ${m.hash.slice(0, 12)}… fetched (${formatBytes(fetched.bytesFetched)} in ${fetched.requests} requests), SHA-256 verified, cached in ${m.dir}\n`
      : `base model ${m.hash.slice(0, 12)}… found in the cache, verified: ${m.dir}\n`);
    return await federationModel(m.dir, 'join', o.lora, m);
  } catch (err) {
    bar?.done();
    const e = err instanceof ClientError ? explain(err, o.url, o.reconnect, true, o.clientCertPath) : err as Error;
    o.sink.emit('error', { message: e.message });
    throw e;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

export const joinCommand: CliCommand = defineCommand({
  name: 'join',
  summary: 'join a federation as a client: train on local data, upload the adapter',
  usage: USAGE,
  help: SUMMARY,
  flags: FLAGS,
  positionals: { max: 1 },
  async run(args, io) {
    const [url] = args.positionals;
    if (url === undefined) throw usageError(`fedex join: give the coordinator's URL, e.g. ${TOKEN_ENV}=… fedex join ws://127.0.0.1:7777/ --data …`);
    if (!/^wss?:\/\/[^\s/]+/.test(url)) throw usageError(`fedex join: '${url}' is not a ws:// or wss:// URL.`);
    const identityPath = optionalString(args, 'identity');
    const identity = identityPath === undefined ? undefined : await readIdentityFile(identityPath, (line) => io.stderr.write(`${line}\n`)).catch((err: unknown) => {
      throw err instanceof IdentityFileError ? usageError(`fedex join: --identity: ${err.message}`) : err;
    });
    const token = (await readToken(args, 'join', (line) => io.stderr.write(`${line}\n`), identity !== undefined ? {} : process.env))?.token;
    if (identity !== undefined && token !== undefined) throw usageError('fedex join: give --identity or a join token, not both (a coordinator admits clients either by key or by its shared token).');
    if (identity === undefined && token === undefined)
      throw usageError(`fedex join: the join token is required (the coordinator prints it): set ${TOKEN_ENV}, or give --token-file; at a coordinator that admits clients by key, give --identity <file.key>. See 'fedex join --help'.`);
    const credential = identity !== undefined ? { identity } : { token: token! };
    const data = optionalString(args, 'data');
    const modelArg = optionalString(args, 'model');
    const synthetic = modelArg === 'synthetic';
    if (data === undefined && !synthetic) throw usageError("fedex join: --data is required (a JSONL file or task:NAME). See 'fedex join --help'.");
    const int = (name: string, fallback: number, min: number, max: number): number => numberFlag(args, name, 'join', fallback, { min, max, integer: true });
    const seed = int('seed', 0, 0, 0xffffffff);
    const rank = args.values.rank === undefined ? undefined : int('rank', 8, 1, 4096);
    const reconnectFor = numberFlag(args, 'reconnect-for', 'join', 600, { min: 0, max: 86_400 * 30 });
    const maxAttempts = args.values.retries === undefined ? undefined : int('retries', 8, 1, 1_000_000);
    const reconnect: Reconnect = {
      options: { maxDurationMs: Math.round(reconnectFor * 1000), ...(maxAttempts !== undefined ? { maxAttempts } : {}) },
      attempts: 0,
      seconds: reconnectFor,
      label: maxAttempts !== undefined ? `/${maxAttempts}` : `, giving up ${reconnectFor} s after the connection was lost`,
    };
    const device = choiceFlag(args, 'device', 'join', DEVICES, 'cpu');
    const shardRaw = optionalString(args, 'shard');
    let split = choiceFlag(args, 'split', 'join', ['non-iid', 'iid'] as const, 'non-iid');
    if (shardRaw !== undefined && data !== undefined) {
      // A non-IID split needs groups or labels: the default falls back to IID for data without them, and says so.
      const chosen = await resolveSplit(data, seed, args.values.split === undefined ? undefined : split).catch((err: unknown) => {
        throw err instanceof RangeError ? usageError(`fedex join: ${err.message}`) : err;
      });
      split = chosen.split;
      if (chosen.note !== undefined) io.stderr.write(`note: ${chosen.note}\n`);
    }
    const shard = shardRaw === undefined ? undefined : { ...parseShard(shardRaw), split, seed };
    const name = optionalString(args, 'name') ?? hostname().slice(0, 64);
    const clientIdArg = optionalString(args, 'client-id');
    if (identity !== undefined && clientIdArg !== undefined && clientIdArg !== identity.clientId)
      throw usageError(`fedex join: --client-id ${clientIdArg} differs from the client id of --identity ${identityPath} ('${identity.clientId}'); leave --client-id out.`);
    const clientId = identity?.clientId ?? clientIdArg ?? `client-${randomBytes(6).toString('hex')}`;
    if (!isClientId(clientId)) throw usageError(`fedex join: --client-id must be 1–64 letters, digits, _ or -, got '${clientId}'.`);
    const caPath = optionalString(args, 'ca');
    const ca = caPath === undefined ? undefined : await readFile(caPath, 'utf8').catch((err: Error) => {
      throw usageError(`fedex join: cannot read --ca ${caPath}: ${err.message}`);
    });
    const clientCertPath = optionalString(args, 'client-cert');
    const clientCertificate = await readClientCertificate(clientCertPath, optionalString(args, 'client-key'), url);
    const tls = ca === undefined && clientCertificate === undefined ? undefined : { ...(ca !== undefined ? { ca } : {}), ...clientCertificate };
    const eventsTarget = optionalString(args, 'events');
    const out = humanOut(io, eventsTarget);
    const sink = eventsFlagSink(eventsTarget, io.stdout);

    // Every module some target could adapt: the coordinator's layout picks among them.
    const lora = { rank: 8, alpha: 16, seed, targetModules: ['all-linear'] };
    const model = modelArg !== undefined
      ? await federationModel(modelArg, 'join', lora)
      : await fetchedModel({ url, ...credential, name, clientId, device, reconnect, tls, clientCertPath, cacheDir: optionalString(args, 'model-cache'), out, stderr: io.stderr, sink, lora });
    let bar: ProgressBar | undefined;
    const onProgress = (p: { round: number; step: number; totalSteps: number; loss: number }): void => {
      sink.emit('client_progress', { clientId, ...p });
      bar ??= new ProgressBar(`round ${p.round}`, p.totalSteps, io.stderr);
      bar.tick(1, `loss ${formatNumber(p.loss)}`);
    };
    // Every uplink dtype: the coordinator picks the federation's (fedex host --uplink-dtype).
    const connection = {
      url,
      ...credential,
      name,
      clientId,
      device,
      uplinkDtypes: ['float32', 'float16', 'bfloat16'] as const,
      reconnect: reconnect.options,
      ...(tls !== undefined ? { tls } : {}),
      ...(rank !== undefined ? { rank } : {}),
    };
    // A real model: the client `fedex simulate` builds too (federation/client/modelClient.ts).
    const built: { client: FederationClient; trainer: LocalTrainer } = synthetic
      ? (() => {
        const trainer = createSyntheticTrainer({ seed: (seed ^ fnv1a(clientId)) >>> 0, numExamples: 64 });
        return { client: new FederationClient({ ...connection, base: model.base, trainer }), trainer };
      })()
      : createModelClient({
        ...connection,
        modelDir: model.modelDir!,
        hash: model.base.hash,
        base: model.base,
        training: {
          createTrainer: await loadTrainerFactory(),
          data: data!,
          device,
          seqLen: int('seq-len', 64, 2, 65_536),
          seed,
          onProgress,
          ...(optionalString(args, 'eval-data') !== undefined ? { evalData: optionalString(args, 'eval-data')! } : {}),
          ...(booleanFlag(args, 'pack') ? { packing: true } : {}),
          ...basePrecisionFlag(args, 'join'),
          ...recomputeFlag(args, 'join'),
          onData: (report: DataReport) => {
            const cut = describeTruncation(report);
            if (cut !== null) io.stderr.write(`warning: ${cut}\n`);
            sink.emit('join_data', { clientId, ...report });
          },
          ...(shard !== undefined ? { shard } : {}),
          threads: args.values.threads === undefined ? availableParallelism() : int('threads', 1, 1, 256),
        },
      });
    const { client, trainer } = built;
    // The federation's settings (from welcome) for --out.
    let settings: FederationSettings | undefined;
    const target = optionalString(args, 'out');
    let configError: Error | undefined;
    client.on('joined', (e) => {
      settings = e.config;
      if (target === undefined || configError !== undefined) return;
      try {
        // --out's adapter config is checked when the federation's settings arrive, not after the last round.
        checkAdapterConfig(resolve(target), e.config.layout, adapterFields(e.config.layout, e.config, model.modelDir));
      } catch (err) {
        configError = err as Error;
        out.write(`fedex join: the final adapter could not be written to --out ${target}: ${configError.message}; leaving\n`);
        void client.leave('cannot write the final adapter');
      }
    });
    const started = new Map<number, number>();
    client.on('connected', (e) => sink.emit('join_connected', e));
    client.on('joined', (e) => {
      sink.emit('join_welcomed', { clientId, sessionId: e.sessionId, currentRound: e.currentRound });
      out.write(`joined ${url} as ${name} (${clientId}), federation at round ${e.currentRound}${rank !== undefined && rank !== e.config.rank ? `, training at rank ${rank} (global rank ${e.config.rank})` : ''}\n`);
    });
    client.on('reconnecting', (e) => {
      sink.emit('join_reconnecting', e);
      reconnect.attempts = e.attempt + 1;
      out.write(`cannot connect (${e.message}); retrying in ${(e.delayMs / 1000).toFixed(1)} s (attempt ${e.attempt + 1}${reconnect.label})\n`);
    });
    client.on('disconnected', (e) => {
      sink.emit('join_disconnected', e);
      out.write(`disconnected (${e.code} ${e.reason}); reconnecting…\n`);
    });
    client.on('round_started', (e) => {
      started.set(e.round, performance.now());
      sink.emit('join_round_started', { round: e.round, baseRevision: e.baseRevision, updatedModules: e.updatedModules.length });
      out.write(`round ${e.round}: training${e.updatedModules.length > 0 ? ` (base updated: ${e.updatedModules.length} modules, revision ${e.baseRevision})` : ''}\n`);
    });
    client.on('trained', ({ round, result, durationMs }) => {
      bar?.done();
      bar = undefined;
      sink.emit('client_round_done', { clientId, round, trainLoss: result.trainLoss, examples: result.numExamples, steps: result.steps ?? 0, seconds: durationMs / 1000 });
      out.write(`round ${round}: trained ${result.steps ?? '?'} steps on ${result.numExamples} examples in ${(durationMs / 1000).toFixed(1)} s, train loss ${formatNumber(result.trainLoss)}\n`);
    });
    const failedRounds = new Set<number>();
    const notAggregated: number[] = [];
    client.on('training_failed', (e) => {
      failedRounds.add(e.round);
      sink.emit('join_training_failed', { clientId, round: e.round, message: e.message });
      out.write(`round ${e.round}: training failed: ${e.message} (the coordinator is told; this client sends no update for round ${e.round})\n`);
    });
    client.on('uploaded', (e) => {
      sink.emit('join_uploaded', e);
      out.write(`round ${e.round}: uploaded ${formatBytes(e.bytes)}\n`);
    });
    client.on('update_acked', (e) => sink.emit('join_update_acked', e));
    client.on('update_rejected', (e) => {
      sink.emit('join_update_rejected', e);
      out.write(`round ${e.round}: update refused: ${e.code} ${e.reason}\n`);
    });
    client.on('round_closed', (p) => {
      const dev = meanOf(p.modules.map((m) => m.relativeDeviation));
      const aggregated = p.aggregated ?? p.participants > 0;
      sink.emit('join_round_closed', { round: p.round, participants: p.participants, aggregated, meanLoss: p.loss?.mean ?? null, meanRelativeDeviation: dev });
      if (!aggregated) notAggregated.push(p.round);
      out.write(
        `round ${p.round} closed: ${aggregated ? `${p.participants} updates aggregated` : 'NOT aggregated (the global model is unchanged)'}${p.loss !== undefined ? `, mean train loss ${formatNumber(p.loss.mean)}` : ''}${
          dev !== null ? `, mean rel. deviation ${formatNumber(dev)}` : ''
        }\n`,
      );
    });
    const onSigint = (): void => {
      out.write('\nleaving the federation…\n');
      void client.leave('interrupted');
    };
    process.once('SIGINT', onSigint);
    let outcome: ClientOutcome;
    try {
      out.write(`fedex join: connecting to ${url} with model ${model.label}${data !== undefined ? `, data ${data}` : ''}${shard !== undefined ? ` (part ${shard.index + 1}/${shard.count}, ${shard.split})` : ''}\n`);
      outcome = await client.run();
    } catch (err) {
      bar?.done();
      const e = err instanceof ClientError ? explain(err, url, reconnect, false, clientCertPath) : err as Error;
      sink.emit('error', { message: e.message });
      throw e;
    } finally {
      process.removeListener('SIGINT', onSigint);
      await trainer.dispose?.();
    }
    try {
      sink.emit('join_done', { reason: outcome.reason, roundsCompleted: outcome.roundsCompleted, roundsParticipated: outcome.roundsParticipated, baseRevision: outcome.baseRevision });
      out.write(`federation ${outcome.reason}: ${outcome.roundsCompleted} rounds aggregated, this client took part in ${outcome.roundsParticipated}\n`);
      if (configError !== undefined) throw new CliError(`fedex join: --out ${target}: ${configError.message}`);
      if (target !== undefined && outcome.global !== null) {
        if (settings === undefined) {
          out.write('no final adapter written: this client never received the federation settings (it trained no round)\n');
        } else {
          await writeFederationAdapter(resolve(target), outcome.global, settings.layout, adapterFields(settings.layout, settings, model.modelDir));
          out.write(`final global adapter (PEFT): ${resolve(target)}\n`);
        }
      }
      if (outcome.reason !== 'completed' && outcome.reason !== 'left') return 1;
      // Silent is wrong: a federation that lost rounds, or in which this client failed, is not a success.
      const problems: string[] = [];
      if (failedRounds.size > 0) problems.push(`this client's training failed in round${failedRounds.size === 1 ? '' : 's'} ${[...failedRounds].join(', ')}`);
      if (notAggregated.length > 0) problems.push(`round${notAggregated.length === 1 ? '' : 's'} ${notAggregated.join(', ')} aggregated nothing`);
      if (problems.length > 0) {
        io.stderr.write(`fedex join: the federation ended, but ${problems.join('; ')}.\n`);
        return 1;
      }
      return 0;
    } finally {
      await sink.close();
    }
  },
});
