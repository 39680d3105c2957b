/** `fedex aggregate`: one offline round over PEFT adapter folders (FedEx-LoRA, FedIT or FFA-LoRA). */
import { aggregateFolders } from '../../federation/offline/aggregateFolders.js';
import type { AggregateReport } from '../../federation/offline/aggregateFolders.js';
import { STRATEGY_NAMES } from '../../core/strategies/types.js';
import { classifyModule } from '../../core/moduleNames.js';
import { createStoredUpdateKernel } from '../../runtime/kernels/storedUpdate.js';
import { defineCommand, type CliCommand, type CliIO } from '../command.js';
import { choiceFlag, numberListFlag, stringFlag } from '../args.js';
import type { FlagSpecs } from '../args.js';
import { usageError } from '../errors.js';
import { AGGREGATION_FLAGS, aggregationFlags } from '../aggregationFlags.js';
import { printReport, weightWrite, weightWriteFlags, type CheckRowsFlag } from '../weightWriteFlags.js';
import { ProgressBar } from '../ui/progress.js';
import { formatNumber, renderTable } from '../ui/table.js';

const CHECK_ROWS: CheckRowsFlag = { fallback: 64, help: 'rows per module checked against float64 (0 = all)' };

const FLAGS: FlagSpecs = {
  method: { type: 'string', value: 'fedex|fedit|ffa|flora', help: 'aggregation rule (flora folds the whole mean update into the base; its adapter/ is a fresh start, A seeded, B = 0)', default: 'fedex' },
  base: { type: 'string', value: 'path', help: 'base model folder (model.safetensors, or shards listed by model.safetensors.index.json; + config.json) or a .safetensors file' },
  adapters: { type: 'string', multiple: true, value: 'dir…', help: 'PEFT adapter folders, one per client (list them after the flag)' },
  weights: { type: 'string', value: 'w1,w2,…', help: 'client weights (normalised); uniform when absent' },
  ...AGGREGATION_FLAGS,
  out: { type: 'string', value: 'dir', help: "output folder: adapter/, model.safetensors or the base's shards + index and its config/tokenizer files (fedex), report.json" },
  ...weightWriteFlags(CHECK_ROWS, 'the fused update'),
};

const USAGE = 'fedex aggregate --method fedex|fedit|ffa|flora --base <model dir or .safetensors> --adapters <dir> <dir> … [--weights 3,1,2] --out <dir>';
const SUMMARY = [
  'Aggregates client LoRA adapters in one offline round. FedEx-LoRA averages A and B and folds the',
  'residual s·(Σ w_i B_i A_i − B̄Ā) into the base weights (model.safetensors), so the result equals the',
  'weighted mean of the client models; FedIT averages only; FFA-LoRA averages B (A must be shared).',
  'Streams the base in row blocks (a few MiB at a time, single-file or sharded checkpoints); nothing is',
  'written unless everything succeeds.',
].join('\n');

/** `--adapters a b c`: parseArgs takes one value per flag, so each following non-flag argument becomes its own `--adapters x`. */
export function expandMultiValue(argv: readonly string[], flag: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] !== flag) {
      out.push(argv[i]);
      continue;
    }
    while (i + 1 < argv.length && !argv[i + 1].startsWith('-')) out.push(flag, argv[++i]);
  }
  return out;
}

function printSummary(report: AggregateReport, io: CliIO): void {
  const rows = report.summary.byType.map((t) => [
    t.moduleType,
    String(t.modules),
    formatNumber(t.meanRelativeDeviation),
    formatNumber(t.maxRelativeDeviation),
    formatNumber(Math.max(0, ...report.modules.filter((m) => classifyModule(m.module) === t.moduleType).map((m) => m.exactness.relativeError))),
  ]);
  io.stdout.write(`${renderTable(['module type', 'modules', 'mean rel. deviation', 'max rel. deviation', 'max exactness error'], rows)}\n`);
  const s = report.summary;
  const rule = report.aggregation ?? 'mean';
  io.stdout.write(`\n${report.method}${rule !== 'mean' ? ` (${rule})` : ''}: ${report.modules.length} modules from ${report.adapters.length} adapters in ${report.seconds.toFixed(2)} s. `
    + `${rule === 'mean' ? 'Plain averaging' : `The ${rule} of the factors alone`} loses ${(s.total.relativeDeviation * 100).toPrecision(3)}% of the ideal update (Frobenius, all modules). `
    + (report.exactMethod
      ? `Global model vs. ${rule} of client models: max relative error ${formatNumber(s.maxExactnessRelativeError)} (${s.allWithinTolerance ? 'exact to float32 round-off' : 'OUTSIDE float32 tolerance'}).`
      : `This method is inexact: the global model misses that share.`)
    + (s.maxDowncastAbsError > 0 ? ` Down-cast to the stored dtype: max abs rounding ${formatNumber(s.maxDowncastAbsError)}.` : '')
    + '\n');
}

export const aggregateCommand: CliCommand = defineCommand({
  name: 'aggregate',
  summary: 'aggregate PEFT adapters offline (fedex | fedit | ffa | flora) into a global adapter and base model',
  usage: USAGE,
  help: SUMMARY,
  flags: FLAGS,
  preprocess: (argv) => expandMultiValue(argv, '--adapters'),
  positionals: { max: 0, hint: 'adapter folders go right after --adapters' },
  async run(args, io) {
    const adapters = (args.values.adapters as string[] | undefined) ?? [];
    if (adapters.length === 0) throw usageError("fedex aggregate: --adapters needs at least one adapter folder. See 'fedex aggregate --help'.");
    const method = choiceFlag(args, 'method', 'aggregate', STRATEGY_NAMES, 'fedex');
    if (method === 'fedsb') {
      throw usageError('fedex aggregate: --method fedsb is not offered offline: a PEFT adapter folder holds a Fed-SB client as (A, B·R_i), without R; '
        + 'their A is shared, so --method ffa averages B·R_i into B·R̄ and is exact for them (docs/math.md §1.5).');
    }
    const weights = numberListFlag(args, 'weights', 'aggregate');
    const aggregation = aggregationFlags(args, 'aggregate', { ...(weights !== undefined ? { weightedBy: '--weights' } : {}), clients: adapters.length });
    const write = weightWrite(args, 'aggregate', CHECK_ROWS);
    const updater = createStoredUpdateKernel(write.kernel);
    let bar: ProgressBar | null = null;
    try {
      const report = await aggregateFolders({
        method,
        base: stringFlag(args, 'base', 'aggregate'),
        adapters,
        weights,
        ...(aggregation !== undefined ? { aggregation } : {}),
        out: stringFlag(args, 'out', 'aggregate'),
        dtype: write.dtype,
        force: write.force,
        checkRows: write.checkRows,
        updater,
        onModule: (_done, total, module) => {
          bar ??= new ProgressBar('aggregating', total, io.stderr);
          bar.tick(1, module);
        },
        onWarning: (message) => io.stderr.write(`fedex aggregate: warning: ${message}\n`),
      });
      (bar as ProgressBar | null)?.done();
      printReport(args, io, report, printSummary);
      return report.exactMethod && !report.summary.allWithinTolerance ? 1 : 0;
    } finally {
      await updater.dispose();
    }
  },
});
