// One process of test/trainer/recomputeRss.test.ts: builds the trainer on the given Llama folder
// with `--recompute on|off`, trains one step of full rows, evaluates them, and prints its peak RSS and the trainer's own
// estimate as one JSON line. Alone in its process, so the peak is this run's.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createRng } from '../../src/core/random.js';
import { InProcessTrainer } from '../../src/trainer/inProcessTrainer.js';
import { openModelSource } from '../../src/trainer/modelFolder.js';
import { smallSetup } from './setups.js';

const [model, mode, rowsText, seqText, vocabText] = process.argv.slice(2);
const rows = Number(rowsText);
const seqLen = Number(seqText);
const rng = createRng(5);
const data = join(model, `rows-${mode}.jsonl`);
await writeFile(data, `${Array.from({ length: rows }, () => JSON.stringify({ input_ids: Array.from({ length: seqLen }, () => rng.int(Number(vocabText) - 1)) })).join('\n')}\n`);
const setup = smallSetup({ modelDir: model, data, evalData: data, batchSize: rows, seqLen, threads: 2, recompute: mode as 'on' | 'off', memoryBudgetBytes: 16e9,
  lora: { ...smallSetup().lora, targetModules: ['q_proj', 'v_proj', 'down_proj'] } });
const trainer = await InProcessTrainer.create(setup, await openModelSource(model));
const losses: number[] = [];
await trainer.train({ adapter: trainer.initialAdapter(1) }, { steps: 1 }, { onProgress: (p) => losses.push(p.loss) });
await trainer.evaluate({ adapter: trainer.initialAdapter(1) }, { maxExamples: rows });
const { estimate, recompute } = trainer.info.memory;
process.stdout.write(`${JSON.stringify({ peakBytes: process.resourceUsage().maxRSS * 1024, trainBytes: estimate.trainBytes, totalBytes: estimate.totalBytes, recompute, loss: losses[0] })}\n`);
await trainer.dispose();
