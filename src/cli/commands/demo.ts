/**
 * `fedex demo`: the aggregation demo. Generates small GPT-2-layout (Conv1D) and Llama-layout (Linear)
 * checkpoints and three client adapters each, aggregates them with every method, and prints how far
 * plain averaging deviates from the exact update. Needs nothing from the network.
 */
import { join, resolve } from 'node:path';
import { rm } from 'node:fs/promises';
import { aggregateFolders } from '../../federation/offline/aggregateFolders.js';
import { writeSyntheticAdapters, writeSyntheticCheckpoint } from '../../model/checkpoints/synthetic.js';
import type { SyntheticModelSpec } from '../../model/checkpoints/synthetic.js';
import { createStoredUpdateKernel } from '../../runtime/kernels/storedUpdate.js';
import type { StrategyName } from '../../core/strategies/types.js';
import { defineCommand, type CliCommand } from '../command.js';
import { numberFlag, optionalString } from '../args.js';
import type { FlagSpecs } from '../args.js';
import { formatNumber, renderTable } from '../ui/table.js';

const FLAGS: FlagSpecs = {
  out: { type: 'string', value: 'dir', help: 'where checkpoints, adapters and results go', default: 'runs/demo' },
  clients: { type: 'string', value: 'k', help: 'number of client adapters', default: '3' },
  rank: { type: 'string', value: 'r', help: 'LoRA rank', default: '8' },
  seed: { type: 'string', value: 's', help: 'random seed', default: '1' },
};

const MODELS: readonly { label: string; spec: SyntheticModelSpec; targets: string[] }[] = [
  { label: 'gpt2 (Conv1D)', spec: { family: 'gpt2', layers: 4, hidden: 128, heads: 4, vocab: 512, positions: 64 }, targets: ['c_attn', 'c_proj'] },
  { label: 'llama (Linear, GQA, bf16)', spec: { family: 'llama', layers: 4, hidden: 128, heads: 4, kvHeads: 2, intermediate: 344, vocab: 512, dtype: 'BF16' },
    targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] },
];

const METHODS: readonly StrategyName[] = ['fedex', 'fedit'];

export const demoCommand: CliCommand = defineCommand({
  name: 'demo',
  summary: 'aggregation demo on generated GPT-2 and Llama-layout checkpoints (no download)',
  usage: 'fedex demo [--out dir] [--clients k] [--rank r]',
  help: 'Generates small checkpoints and client adapters, aggregates them with FedEx-LoRA and FedIT, and compares.',
  flags: FLAGS,
  async run(args, io) {
    const out = resolve(optionalString(args, 'out') ?? 'runs/demo');
    const clients = numberFlag(args, 'clients', 'demo', 3, { min: 1, max: 64, integer: true });
    const rank = numberFlag(args, 'rank', 'demo', 8, { min: 1, max: 128, integer: true });
    const seed = numberFlag(args, 'seed', 'demo', 1, { integer: true });
    const updater = createStoredUpdateKernel();
    const rows: string[][] = [];
    let failed = false;
    try {
      for (const [i, m] of MODELS.entries()) {
        const dir = join(out, m.spec.family);
        await rm(dir, { recursive: true, force: true });
        io.stdout.write(`generating ${m.label}: ${m.spec.layers} layers, d=${m.spec.hidden}, ${clients} client adapters (r=${rank}) in ${dir}\n`);
        await writeSyntheticCheckpoint(join(dir, 'base'), { ...m.spec, seed: seed + i });
        const adapters = await writeSyntheticAdapters(join(dir, 'adapters'), m.spec, { clients, rank, alpha: 2 * rank, targetModules: m.targets, seed: seed * 31 + i, bStd: 0.05, aDrift: 0.3 });
        for (const method of METHODS) {
          const report = await aggregateFolders({ method, base: join(dir, 'base'), adapters, out: join(dir, method), updater, force: true });
          const s = report.summary;
          if (report.exactMethod && !s.allWithinTolerance) failed = true;
          rows.push([
            m.label,
            method,
            String(report.modules.length),
            `${(s.total.relativeDeviation * 100).toPrecision(3)}%`,
            report.exactMethod ? formatNumber(s.maxExactnessRelativeError) : `${(s.total.relativeDeviation * 100).toPrecision(3)}% lost`,
            report.modelWritten ? 'yes' : 'no (unchanged)',
            `${report.seconds.toFixed(2)} s`,
          ]);
        }
      }
    } finally {
      await updater.dispose();
    }
    io.stdout.write(`\n${renderTable(['model', 'method', 'modules', 'plain-avg deviation', 'global vs. mean of clients', 'base updated', 'time'], rows)}\n`);
    io.stdout.write(
      `\nFedEx-LoRA folds the residual into the base, so the global model equals the mean of the client models to float32 round-off;\nFedIT (plain averaging) loses the share shown. Outputs (PEFT adapter, model.safetensors, report.json) are under ${out}.\n`,
    );
    return failed ? 1 : 0;
  },
});
