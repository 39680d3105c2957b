/** `fedex export`: a federation's result as one exact PEFT adapter on the original base, and/or a merged model. */
import { EXPORT_KINDS, exportFederation, type ExportReport } from '../../federation/export/exportFederation.js';
import { STRATEGY_NAMES } from '../../core/strategies/types.js';
import { createOrtGemmBackend } from '../../runtime/kernels/gemm64.js';
import { createStoredUpdateKernel } from '../../runtime/kernels/storedUpdate.js';
import { defineCommand, type CliCommand, type CliIO } from '../command.js';
import { choiceFlag, numberFlag, optionalString, stringFlag } from '../args.js';
import type { FlagSpecs } from '../args.js';
import { usageError } from '../errors.js';
import { printReport, weightWrite, weightWriteFlags, type CheckRowsFlag } from '../weightWriteFlags.js';
import { ProgressBar } from '../ui/progress.js';
import { formatBytes, formatNumber, renderTable } from '../ui/table.js';

const CHECK_ROWS: CheckRowsFlag = { fallback: 8, help: 'rows per module checked against the exact update in float64' };

const FLAGS: FlagSpecs = {
  out: { type: 'string', value: 'dir', help: 'output folder: adapter/ (PEFT), model/ (merged HF folder), export-report.json' },
  as: { type: 'string', value: EXPORT_KINDS.join('|'), help: 'what to write', default: 'both' },
  method: { type: 'string', value: STRATEGY_NAMES.join('|'), help: 'which run of a fedex simulate folder (default: fedex when present)' },
  'max-rank': { type: 'string', value: 'k', help: 'keep at most k directions per module in the adapter (default: the exact rank)' },
  'max-error': { type: 'string', value: 'x', help: "lower a module's adapter rank while ‖ΔW − B·A‖_F ≤ x·‖ΔW‖_F (default 0: exact)" },
  base: { type: 'string', value: 'dir', help: 'the original base model folder (default: the one the run recorded)' },
  ...weightWriteFlags(CHECK_ROWS, 'the merged weights (the re-factoring runs in float64 on the CPU)'),
};

const USAGE = `fedex export <run dir | simulate out dir | aggregate out dir> --out <dir> [--as ${EXPORT_KINDS.join('|')}] [--max-rank k] [--max-error x]`;
const SUMMARY = [
  "Writes a federation's result as users deploy it. FedEx-LoRA's result is the base with every round's",
  'residual folded in plus the global adapter, so the global adapter alone is NOT the result. `adapter`',
  'is one PEFT LoRA adapter on the ORIGINAL base whose B·A equals the total update per module (exact',
  'numerical rank, or lower with --max-rank/--max-error, the loss reported); `merged` is the final model',
  "in the base's dtype and sharding. FedIT and FFA-LoRA runs export their global adapter the same way.",
  'Works on a finished or interrupted `fedex host --out` folder, on `fedex simulate --out` folders and on',
  '`fedex aggregate --out` folders (relative to the base given to the aggregation).',
].join('\n');

function printSummary(report: ExportReport, io: CliIO): void {
  const rows = report.modules.map((m) => [
    m.module,
    `${m.out}×${m.in}`,
    String(m.innerDim),
    String(m.exactRank),
    String(m.rank),
    m.truncationError === 0 ? '0' : formatNumber(m.truncationError),
    m.adapterCheck !== undefined ? formatNumber(m.adapterCheck.relativeError) : '—',
    m.mergedCheck !== undefined ? formatNumber(m.mergedCheck.relativeError) : '—',
  ]);
  io.stdout.write(`${renderTable(['module', 'shape', 'inner', 'exact rank', 'rank', 'truncation error', 'adapter check', 'merged check'], rows)}\n`);
  const s = report.summary;
  const src = report.source;
  io.stdout.write(`\n${src.method}: ${src.roundsCompleted}/${src.rounds} rounds, ${src.baseSteps} base step(s) + the global adapter, ${s.modules} modules in ${report.seconds.toFixed(2)} s. `
    + (report.adapterDir !== null
      ? `Adapter (PEFT, on the original base ${report.base ?? '(synthetic model)'}): ${report.adapterDir}, ${formatBytes(s.adapterBytes)}; `
        + (s.exactModules === s.modules
          ? `exact in every module (below the resolution of 2⁻²⁶·σ₁: at most ${formatNumber(s.maxTruncationError)} of a module's update). `
          : `${s.modules - s.exactModules} module(s) truncated, largest relative Frobenius error ${formatNumber(s.maxTruncationError)}. `)
      : '')
    + (report.modelDir !== null ? `Merged model: ${report.modelDir}${s.maxDowncastAbsError > 0 ? ` (down-cast to the stored dtype: max abs rounding ${formatNumber(s.maxDowncastAbsError)})` : ''}. ` : '')
    + 'Report: export-report.json.\n');
}

export const exportCommand: CliCommand = defineCommand({
  name: 'export',
  summary: 'export a federation as one exact PEFT adapter on the original base and/or a merged model',
  usage: USAGE,
  help: SUMMARY,
  flags: FLAGS,
  positionals: { max: 1 },
  async run(args, io) {
    if (args.positionals.length !== 1) throw usageError(`fedex export: give one run directory (a fedex host --out, fedex simulate --out or fedex aggregate --out folder), got ${args.positionals.length}. See 'fedex export --help'.`);
    const as = choiceFlag(args, 'as', 'export', EXPORT_KINDS, 'both');
    const methodRaw = optionalString(args, 'method');
    const method = methodRaw === undefined ? undefined : choiceFlag(args, 'method', 'export', STRATEGY_NAMES, 'fedex');
    const maxRank = args.values['max-rank'] === undefined ? undefined : numberFlag(args, 'max-rank', 'export', 0, { min: 1, integer: true });
    const maxError = args.values['max-error'] === undefined ? undefined : numberFlag(args, 'max-error', 'export', 0, { min: 0, max: 0.999999 });
    const write = weightWrite(args, 'export', CHECK_ROWS);
    const updater = as === 'adapter' ? undefined : createStoredUpdateKernel(write.kernel);
    // The re-factoring's float64 products run on onnxruntime's CPU DGEMM (WebGPU has no float64).
    const gemm = createOrtGemmBackend({ intraOpThreads: write.kernel.intraOpThreads });
    let bar: ProgressBar | null = null;
    try {
      const base = optionalString(args, 'base');
      const report = await exportFederation({
        source: args.positionals[0],
        ...(method !== undefined ? { method } : {}),
        out: stringFlag(args, 'out', 'export'),
        as,
        ...(maxRank !== undefined ? { maxRank } : {}),
        ...(maxError !== undefined ? { maxRelativeError: maxError } : {}),
        ...(base !== undefined ? { base } : {}),
        dtype: write.dtype,
        force: write.force,
        checkRows: write.checkRows,
        ...(updater !== undefined ? { updater } : {}),
        gemm,
        onModule: (_done, total, module) => {
          bar ??= new ProgressBar('exporting', total, io.stderr);
          bar.tick(1, module);
        },
        onWarning: (message) => io.stderr.write(`fedex export: ${message}\n`),
      });
      (bar as ProgressBar | null)?.done();
      printReport(args, io, report, printSummary);
      return 0;
    } finally {
      await updater?.dispose();
      await gemm.dispose?.();
    }
  },
});
