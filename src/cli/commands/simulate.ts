/**
 * `fedex simulate`: the main job. The same federated fine-tuning run with FedEx-LoRA, FedIT,
 * FFA-LoRA (a coordinator and k clients in this process, over real WebSocket connections on
 * 127.0.0.1) and centralized LoRA on the pooled data, on the shipped tiny model and a synthetic task
 * split non-IID across clients. Prints a live round table and a comparison, writes report.json and
 * report.html. Needs no arguments and nothing from the network.
 */
import { join, resolve } from 'node:path';
import { availableParallelism } from 'node:os';
import { createOrtProductBackend } from '../../runtime/kernels/factoredUpdate.js';
import { DEVICES } from '../../runtime/session.js';
import { eventsFlagSink, teeSink, type EventSink } from '../../federation/events/eventSink.js';
import { SIMULATION_METHODS, type SimulationMethod } from '../../federation/events/events.js';
import { createOnnxWorkload } from '../../federation/simulation/onnxWorkload.js';
import type { SimulationResult } from '../../federation/simulation/simulate.js';
import { runComparison, type RunPlan } from '../../federation/simulation/comparison.js';
import { SWEEP_AXES } from '../../federation/simulation/comparisonReport.js';
import { comparisonText, parseSweep } from './simulateRuns.js';
import { createSyntheticWorkload } from '../../federation/simulation/syntheticWorkload.js';
import type { SimulationWorkload } from '../../federation/simulation/workload.js';
import { defineCommand, type CliCommand } from '../command.js';
import { booleanFlag, choiceFlag, numberFlag, optionalString, type FlagSpecs, type ParsedArgs } from '../args.js';
import { usageError } from '../errors.js';
import { DEFAULT_MODEL, resolveModelDir } from '../modelArg.js';
import { ProgressBar } from '../ui/progress.js';
import { LiveTable } from '../ui/liveTable.js';
import { formatBytes, formatNumber, renderTable } from '../ui/table.js';
import { CLIENT_TRAINER_FLAGS, EVENTS_FLAG, formatSeconds, humanOut, listFlag, modelLayout, rankListFlag } from './federationCommon.js';
import { AGGREGATION_FLAGS, aggregationFlags } from '../aggregationFlags.js';
import { deltaText, DP_FLAGS, epsilonText, privacyBanner, privacyFlags } from '../privacyFlags.js';
import { DEFAULT_DP_DELTA } from '../../federation/coordinator/privacyPlan.js';
import { ruleLabel } from '../../core/robust.js';
import type { SimulationHyperparameters } from '../../federation/simulation/workload.js';
import { describeTruncation } from '../../trainer/data/report.js';
import { resolveSplit } from '../../trainer/data/pipeline.js';
import { loadTrainerFactory } from './trainerFactory.js';
import { basePrecisionFlag } from './eval.js';
import { recomputeFlag } from '../recomputeFlag.js';

/** Defaults of the main job (sized to finish in a few minutes on 2 cores; see docs/cli.md). */
export const SIMULATE_DEFAULTS = {
  clients: 3,
  rounds: 5,
  localSteps: 10,
  rank: 8,
  alpha: 16,
  batchSize: 8,
  lr: 3e-3,
  seed: 0,
  seqLen: 64,
  evalExamples: 120,
  data: 'task:arith',
  split: 'non-iid',
  dirichletAlpha: 0.1,
  seeds: 3,
  out: 'runs/simulate',
  methods: 'fedex,fedit,ffa,centralized',
} as const;

const D = SIMULATE_DEFAULTS;
const FLAGS: FlagSpecs = {
  clients: { type: 'string', value: 'k', help: 'number of clients', default: String(D.clients) },
  rounds: { type: 'string', value: 'n', help: 'federated rounds', default: String(D.rounds) },
  'local-steps': { type: 'string', value: 'n', help: 'optimizer steps per client per round', default: String(D.localSteps) },
  rank: { type: 'string', value: 'r', help: 'LoRA rank', default: String(D.rank) },
  alpha: { type: 'string', value: 'a', help: 'LoRA alpha (scaling alpha/r)', default: String(D.alpha) },
  'target-modules': { type: 'string', value: 'a,b', help: "modules to adapt (default: the architecture's, c_attn for GPT-2)" },
  model: { type: 'string', value: 'dir|synthetic', help: "model folder, or 'synthetic' (no model: protocol and aggregation only)", default: DEFAULT_MODEL },
  data: { type: 'string', value: 'task:NAME|file.jsonl', help: 'training data (eval: its held-out split)', default: D.data },
  'eval-data': { type: 'string', value: 'task:NAME|file.jsonl', help: 'eval data (default: held out from --data)' },
  split: { type: 'string', value: 'non-iid|dirichlet|iid',
    help:
      'how the data is shared among clients (non-iid groups records by "group" or "label"; data with neither is split iid, with a note; dirichlet: each group\'s records shared in Dirichlet(--dirichlet-alpha) proportions, no client left empty)',
    default: D.split },
  'dirichlet-alpha': { type: 'string', value: 'a', help: 'concentration of --split dirichlet (> 0; 0.1: each group on one or two clients, 100: near IID)', default: String(D.dirichletAlpha) },
  seeds: { type: 'string', value: 'n', help: "run every method on seeds --seed … --seed+n−1 and report mean ± sd and the FedEx − FedIT gap against the seeds' spread (each run in <out>/seed-s/); 1: one run, written straight into --out",
    default: String(D.seeds) },
  sweep: { type: 'string', value: 'axis=v1,v2,…', help: `run the comparison at each value of one axis (${SWEEP_AXES.join(' or ')}), e.g. local-steps=5,20,50; reports how the deviation of plain averaging and the FedEx − FedIT gap change` },
  methods: { type: 'string', value: 'list', help: `methods to compare, from ${SIMULATION_METHODS.join(',')}`, default: D.methods },
  out: { type: 'string', value: 'dir', help: 'output folder (report.json, report.html, runs/, adapters/)', default: D.out },
  seed: { type: 'string', value: 's', help: 'seed of data split, order and adapter init', default: String(D.seed) },
  device: { type: 'string', value: DEVICES.join('|'), help: 'onnxruntime device for training', default: 'cpu' },
  ...CLIENT_TRAINER_FLAGS,
  'batch-size': { type: 'string', value: 'n', help: 'examples per step', default: String(D.batchSize) },
  lr: { type: 'string', value: 'x', help: 'learning rate (AdamW)', default: String(D.lr) },
  'seq-len': { type: 'string', value: 'n', help: 'longest sequence in tokens (longer records are cut, and how many is reported)', default: String(D.seqLen) },
  pack: { type: 'boolean', help: 'pack language-modelling examples into full --seq-len rows instead of padding each (no example is cut; attention crosses example boundaries)' },
  'eval-examples': { type: 'string', value: 'n', help: 'eval examples per evaluation (0 = all)', default: String(D.evalExamples) },
  threads: { type: 'string', value: 'n', help: 'onnxruntime threads per trainer (default: cores / (clients + 1), at least 1)' },
  'residual-rank': { type: 'string', value: 'k', help: "FedEx only: fold the best rank-k approximation of each round's residual (smaller downlink, inexact; the share dropped is reported per round)" },
  'client-ranks': { type: 'string', value: 'r1,r2,…',
    help: 'heterogeneous clients: client i trains at rank r(i mod n), each ≤ --rank (default --rank: the largest); fedex and flora stay exact (docs/math.md §1.4); centralized trains at --rank' },
  ...AGGREGATION_FLAGS,
  ...DP_FLAGS,
  'save-adapters': { type: 'boolean', help: "keep every round's client/global adapters (PEFT) and global base (safetensors) under <out>/adapters" },
  ...EVENTS_FLAG,
};

const USAGE = 'fedex simulate [--clients 3] [--rounds 5] [--local-steps 10] [--methods fedex,fedit,ffa,centralized] [--model dir] [--data task:arith] [--seeds 3] [--sweep local-steps=5,20,50] [--split dirichlet] [--out dir]';
const SUMMARY = [
  'Runs the same federated LoRA fine-tuning with FedEx-LoRA, FedIT and FFA-LoRA — a coordinator and',
  'k clients in this process over real WebSocket connections on 127.0.0.1, each client training on its',
  'non-IID share of the data — and centralized LoRA on the pooled data with the same number of steps.',
  'Prints a round table and a comparison (eval loss, accuracy, deviation, bytes); writes report.json',
  'and report.html (opens offline). With no arguments: the shipped tiny GPT-2 on task:arith.',
  'Every method runs on 3 seeds by default (--seeds N: seeds --seed … --seed+N−1; the data, its split,',
  'the LoRA init and the data order change with the seed) and the comparison is mean ± sd, with the',
  "FedEx − FedIT gap against the seeds' spread; --seeds 1 is one quick run written straight into --out.",
  '--sweep local-steps=5,20,50 or clients=2,4,8 repeats that at each value (one axis per run). Each run',
  'gets its own folder under --out and the top-level report.json/report.html summarize them; see',
  'docs/simulate.md.',
].join('\n');

function parseMethods(raw: string): SimulationMethod[] {
  const list = listFlag(raw);
  const bad = list.find((m) => !(SIMULATION_METHODS as readonly string[]).includes(m));
  if (bad !== undefined || list.length === 0) throw usageError(`fedex simulate: --methods must list some of ${SIMULATION_METHODS.join(', ')}, got '${bad ?? raw}'.`);
  return [...new Set(list)] as SimulationMethod[];
}

/** `--dirichlet-alpha`: a finite number > 0. */
function dirichletAlphaFlag(args: ParsedArgs): number {
  const raw = args.values['dirichlet-alpha'];
  if (raw === undefined) return D.dirichletAlpha;
  const v = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(v) || v <= 0) throw usageError(`fedex simulate: --dirichlet-alpha must be a number > 0, got '${String(raw)}'.`);
  return v;
}

function int(args: ParsedArgs, name: string, fallback: number, min: number, max: number): number {
  return numberFlag(args, name, 'simulate', fallback, { min, max, integer: true });
}

const COLUMNS = [
  { header: 'method', width: 11, align: 'left' as const },
  { header: 'round', width: 5 },
  { header: 'train loss', width: 10 },
  { header: 'eval loss', width: 9 },
  { header: 'accuracy', width: 8 },
  { header: 'exact', width: 6 },
  { header: 'rel. dev.', width: 9 },
  { header: 'sent', width: 10 },
  { header: 'received', width: 10 },
  { header: 'time', width: 8 },
];

function pct(x: number | null): string {
  return x === null || !Number.isFinite(x) ? '–' : `${(x * 100).toFixed(1)}%`;
}

/** `--client-ranks 4,8,16`: integers in 1..1024, in the order given (client i gets the i-th, cyclically). */
export function parseClientRanks(raw: string): number[] {
  return rankListFlag(raw, 'simulate', 'client-ranks', 1024);
}

/** The client ranks, checked: each ≤ the global rank, federated methods that stay exact with them (fedex, flora), no robust rule or DP. */
function checkClientRanks(ranks: number[], rank: number, methods: readonly string[], robustOrPrivate: boolean): number[] {
  const above = ranks.find((r) => r > rank);
  if (above !== undefined) throw usageError(`fedex simulate: --client-ranks ${above} is above the global rank ${rank} (--rank).`);
  const other = methods.filter((m) => m !== 'fedex' && m !== 'flora' && m !== 'centralized');
  if (other.length > 0) throw usageError(`fedex simulate: --client-ranks needs methods that fold a truncated start into the base (fedex, flora; centralized runs at --rank), not ${other.join(', ')}: give --methods fedex,flora,centralized.`);
  if (robustOrPrivate) throw usageError('fedex simulate: --client-ranks cannot be combined with --aggregation or the DP flags.');
  return ranks;
}

function num(x: number | null): string {
  return x === null || !Number.isFinite(x) ? '–' : formatNumber(x, 4);
}

export const simulateCommand: CliCommand = defineCommand({
  name: 'simulate',
  summary: 'THE MAIN JOB: compare FedEx-LoRA, FedIT, FFA-LoRA and centralized LoRA on one machine (no arguments needed)',
  usage: USAGE,
  help: SUMMARY,
  flags: FLAGS,
  async run(args, io) {
    const hp: SimulationHyperparameters = {
      clients: int(args, 'clients', D.clients, 1, 64),
      rounds: int(args, 'rounds', D.rounds, 1, 10_000),
      localSteps: int(args, 'local-steps', D.localSteps, 1, 1_000_000),
      rank: args.values.rank === undefined && args.values['client-ranks'] !== undefined ? Math.max(...parseClientRanks(optionalString(args, 'client-ranks')!)) : int(args, 'rank', D.rank, 1, 1024),
      alpha: numberFlag(args, 'alpha', 'simulate', D.alpha, { min: Number.MIN_VALUE }),
      batchSize: int(args, 'batch-size', D.batchSize, 1, 4096),
      lr: numberFlag(args, 'lr', 'simulate', D.lr, { min: Number.MIN_VALUE, max: 10 }),
      seed: int(args, 'seed', D.seed, 0, 0xffffffff),
    };
    const { clients, rounds, localSteps, rank, alpha, batchSize, lr, seed } = hp;
    const seqLen = int(args, 'seq-len', D.seqLen, 2, 65_536);
    const evalExamples = int(args, 'eval-examples', D.evalExamples, 0, 10_000_000);
    const methods = parseMethods(optionalString(args, 'methods') ?? D.methods);
    const splitFlag = choiceFlag(args, 'split', 'simulate', ['non-iid', 'dirichlet', 'iid'] as const, D.split);
    // --split dirichlet is a non-IID split by group whose shares are drawn (trainer/data/split.ts splitDirichlet).
    let split: 'non-iid' | 'iid' = splitFlag === 'dirichlet' ? 'non-iid' : splitFlag;
    const dirichletAlpha = splitFlag === 'dirichlet' ? dirichletAlphaFlag(args) : undefined;
    if (splitFlag !== 'dirichlet' && args.values['dirichlet-alpha'] !== undefined) throw usageError(`fedex simulate: --dirichlet-alpha applies to --split dirichlet only (got --split ${splitFlag}).`);
    const seeds = int(args, 'seeds', D.seeds, 1, 1000);
    const sweepRaw = optionalString(args, 'sweep');
    const sweep = sweepRaw === undefined ? undefined : parseSweep(sweepRaw, { clients: args.values.clients !== undefined, localSteps: args.values['local-steps'] !== undefined });
    const device = choiceFlag(args, 'device', 'simulate', DEVICES, 'cpu');
    const threads = args.values.threads === undefined ? undefined : int(args, 'threads', 1, 1, 256);
    const out = resolve(optionalString(args, 'out') ?? D.out);
    const data = optionalString(args, 'data') ?? D.data;
    const evalData = optionalString(args, 'eval-data');
    const eventsTarget = optionalString(args, 'events');
    const human = humanOut(io, eventsTarget);
    const synthetic = optionalString(args, 'model') === 'synthetic';
    const targetModules = listFlag(optionalString(args, 'target-modules'));
    // Every round aggregates all the clients (quorum = clients): a trim must drop someone out of them.
    const aggregation = aggregationFlags(args, 'simulate', { clients });
    if (sweep?.axis === 'clients') { for (const k of sweep.values) aggregationFlags(args, 'simulate', { clients: k }); }
    if (aggregation !== undefined && args.values['residual-rank'] !== undefined) throw usageError(`fedex simulate: --residual-rank applies to the mean rule only, not to --aggregation ${aggregation.name}.`);
    const privacy = privacyFlags(args, 'simulate', [
      ...(args.values['residual-rank'] !== undefined ? ['--residual-rank'] : []),
      ...(aggregation !== undefined ? [`--aggregation ${aggregation.name}`] : []),
    ]);
    const clientRanks = args.values['client-ranks'] === undefined ? undefined : checkClientRanks(parseClientRanks(optionalString(args, 'client-ranks')!), rank, methods, aggregation !== undefined || privacy !== undefined);

    let createWorkload: (run: RunPlan) => Promise<SimulationWorkload>;
    let modelLabel: string;
    // What --seq-len cut, once per trainer (each client's shard, and the pooled evaluation data).
    const reported = new Set<string>();
    if (!synthetic) {
      // A non-IID split needs groups or labels: the default falls back to IID for data without them, and says so.
      const chosen = await resolveSplit(data, seed, args.values.split === undefined ? undefined : split).catch((err: unknown) => {
        throw err instanceof RangeError ? usageError(`fedex simulate: ${splitFlag === 'dirichlet' ? '--split dirichlet: ' : ''}${err.message}`) : err;
      });
      split = chosen.split;
      if (chosen.note !== undefined) human.write(`note: ${chosen.note}\n`);
    }
    if (synthetic) {
      createWorkload = async (run) => createSyntheticWorkload({ rank, alpha, seed: run.seed });
      modelLabel = 'synthetic';
    } else {
      const modelDir = resolveModelDir(optionalString(args, 'model'), 'simulate');
      const resolved = await modelLayout(modelDir, { rank, alpha, targetModules });
      const cores = availableParallelism();
      const createTrainer = await loadTrainerFactory();
      createWorkload = async (run) => {
        human.write(`building ${run.clients + 1} trainers for ${modelDir} (${resolved.modelType}, ${resolved.layout.length} adapted modules: ${resolved.targetModules.join(', ')})…\n`);
        const shardSizes = new Map<string, number>();
        return createOnnxWorkload({
          createTrainer,
          modelDir,
          data,
          ...(evalData !== undefined ? { evalData } : {}),
          split,
          rank,
          alpha,
          ...(dirichletAlpha !== undefined ? { dirichletAlpha } : {}),
          targetModules: resolved.targetModules,
          batchSize,
          lr,
          seed: run.seed,
          seqLen,
          device,
          threads: threads ?? Math.max(1, Math.floor(cores / (run.clients + 1))),
          ...(evalExamples > 0 ? { evalExamples } : {}),
          ...(booleanFlag(args, 'pack') ? { packing: true } : {}),
          ...basePrecisionFlag(args, 'simulate'),
          ...recomputeFlag(args, 'simulate'),
          onData: (who, report) => {
            const cut = describeTruncation(report);
            if (cut !== null && !reported.has(`${who}:${cut}`)) {
              reported.add(`${who}:${cut}`);
              human.write(`warning: ${who}: ${cut}\n`);
            }
            // A drawn split's shard sizes are shown once per run (each client reports its own).
            if (dirichletAlpha === undefined || !who.startsWith('client ') || shardSizes.has(who)) return;
            shardSizes.set(who, report.train.records);
            if (shardSizes.size === run.clients) {
              const sizes = [...shardSizes].sort(([a], [b]) => parseInt(a.slice(7), 10) - parseInt(b.slice(7), 10)).map(([, n]) => n);
              human.write(`note: --split dirichlet (α = ${dirichletAlpha}, seed ${run.seed}): clients 1…${run.clients} hold ${sizes.join(', ')} training records\n`);
            }
          },
        });
      };
      modelLabel = modelDir;
    }

    const sink: EventSink = teeSink(eventsFlagSink(eventsTarget, io.stdout));
    const backend = createOrtProductBackend();
    const controller = new AbortController();
    const onSigint = (): void => controller.abort(new Error('interrupted'));
    process.once('SIGINT', onSigint);
    const table = new LiveTable(COLUMNS, human);
    let bar: { key: string; bar: ProgressBar } | undefined;
    const clearBar = (): void => {
      bar?.bar.done();
      bar = undefined;
    };
    const splitLabel = dirichletAlpha !== undefined ? `dirichlet α=${dirichletAlpha}` : split;
    // The run in progress (a sweep over clients changes the progress bar's total).
    let running: RunPlan | undefined;
    human.write(`fedex simulate: ${clients} clients × ${rounds} rounds × ${localSteps} local steps (batch ${batchSize}, lr ${lr}, rank ${rank}), `
      + `model ${modelLabel}, data ${data} (${splitLabel}), methods ${methods.join(', ')}${aggregation !== undefined ? `, aggregation ${ruleLabel(aggregation)}` : ''}`
      + `${clientRanks !== undefined ? `, client ranks ${clientRanks.join(', ')}` : ''}${seeds > 1 ? `, seeds ${seed}…${seed + seeds - 1}` : ''}${sweep !== undefined ? `, sweep ${sweep.axis} = ${sweep.values.join(', ')}` : ''}\n\n`);
    if (privacy !== undefined) human.write(`${privacyBanner({ ...privacy, delta: privacy.delta ?? DEFAULT_DP_DELTA })} (federated methods; centralized is not private)\n\n`);
    // Each run's comparison table, as it finishes.
    const printRun = (result: SimulationResult): void => {
      clearBar();
      const rows = result.report.comparison.map((
        m,
      ) => [m.method, num(m.evalLoss), pct(m.evalAccuracy), pct(m.exactMatch), m.meanRelativeDeviation === null ? '–' : formatNumber(m.meanRelativeDeviation), formatBytes(m.bytesSent), formatBytes(m.bytesReceived),
        formatSeconds(m.seconds)]
      );
      const initial = result.report.methods[0]?.rounds[0];
      human.write(`\n${renderTable(['method', 'final eval loss', 'accuracy', 'exact match', 'mean rel. deviation', 'sent', 'received', 'time'], rows)}\n`);
      human.write(
        `\n${
          initial !== undefined ? `Initial model: eval loss ${num(initial.evalLoss)}. ` : ''
        }Relative deviation = the share of the ideal update that plain averaging loses (FedIT keeps the error; FedEx-LoRA folds it into the base weights).\n`,
      );
      const spent = result.report.methods.flatMap((m) => {
        const dp = m.rounds.at(-1)?.privacy;
        return dp === undefined ? [] : [`${m.method} ε = ${epsilonText(dp.epsilon)}`];
      });
      if (privacy !== undefined) human.write(`Client-level DP at δ = ${deltaText(privacy.delta ?? DEFAULT_DP_DELTA)}: ${spent.join(', ')} (centralized is not private).\n`);
    };
    try {
      const outcome = await runComparison({
        methods,
        ...hp,
        seeds,
        ...(sweep !== undefined ? { sweep } : {}),
        out,
        saveAdapters: booleanFlag(args, 'save-adapters'),
        ...(args.values['residual-rank'] !== undefined ? { residualRank: numberFlag(args, 'residual-rank', 'simulate', 0, { min: 1, integer: true }) } : {}),
        ...(aggregation !== undefined ? { aggregation } : {}),
        ...(privacy !== undefined ? { privacy } : {}),
        ...(clientRanks !== undefined ? { clientRanks } : {}),
        createWorkload,
        labels: { model: modelLabel, data, split: splitLabel, device },
        sink,
        backend,
        signal: controller.signal,
        onRunStart: (run, total) => {
          running = run;
          if (total > 1) human.write(`\n── run ${run.index + 1} of ${total}: seed ${run.seed}${sweep !== undefined ? `, ${sweep.axis} ${run.sweepValue}` : ''} → ${join(out, run.label)}\n`);
        },
        onRunDone: (_run, result) => printRun(result),
        onStep: (method, clientId, p) => {
          const key = `${method}/${p.round}`;
          if (bar?.key !== key) {
            clearBar();
            const total = method === 'centralized' ? p.totalSteps : p.totalSteps * (running?.clients ?? clients);
            bar = { key, bar: new ProgressBar(`${method} round ${p.round}`, total, io.stderr) };
          }
          bar.bar.tick(1, `${clientId} loss ${formatNumber(p.loss)}`);
        },
        onRound: (method, row) => {
          clearBar();
          table.row([method, String(row.round), num(row.trainLoss), num(row.evalLoss), pct(row.evalAccuracy), pct(row.exactMatch), row.meanRelativeDeviation === null ? '–' : formatNumber(row.meanRelativeDeviation),
            formatBytes(row.bytesSent), formatBytes(row.bytesReceived), formatSeconds(row.seconds)]);
          const cut = row.residualTruncation;
          if (cut !== undefined) human.write(`  ${method} round ${row.round}: residual truncated to rank ${cut.rank}, up to ${formatNumber(cut.maxRelativeError)} of a module's ‖ΔR‖ dropped\n`);
          const dp = row.privacy;
          if (dp !== undefined)
            human.write(
              `  ${method} round ${row.round}: DP ε = ${epsilonText(dp.epsilon)} at δ = ${deltaText(dp.delta)} after ${dp.releases} round${
                dp.releases === 1 ? '' : 's'
              }, ${dp.clipped} of ${dp.updateNorms.length} updates clipped (noise std ${formatNumber(dp.noiseStd)})\n`,
            );
        },
        onMethodStart: () => {
          clearBar();
          table.header();
        },
      });
      clearBar();
      if (outcome.report !== null) human.write(`\n${comparisonText(outcome.report)}\n`);
      human.write(`Total ${formatSeconds(outcome.report?.seconds ?? outcome.runs[0].report.seconds)}. Report: ${outcome.reportHtml}\n          ${outcome.reportJson}\n`);
      return 0;
    } catch (err) {
      clearBar();
      sink.emit('error', { message: (err as Error).message });
      throw err;
    } finally {
      process.removeListener('SIGINT', onSigint);
      await backend.dispose();
      await sink.close();
    }
  },
});
