// The exactness of a round with clients below the global rank, from what `--save-adapters` wrote:
// client i trained at rank r_i (its PEFT folder's r) from the previous global adapter truncated to
// r_i, on its own base W0_i = W0 + s·(B_g A_g − B_g[:, :r_i] A_g[:r_i, :]) (docs/math.md §1.4). In
// float64, per module: max |(W0' + s·B'A') − mean_i (W0_i + s·B_i A_i)| against the size of the update.
// Round 1 starts from the initial adapter, PEFT's init (B = 0): its truncation drops nothing.
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { readPeftAdapter, type LoraModule } from '../../../src/formats/peft.js';
import { roundDir } from '../../../src/federation/shared/adapterFolders.js';
import type { AdapterLayout } from '../../../src/federation/protocol/adapterTensors.js';
import type { RoundCheck } from './savedRounds.js';
import { readBase } from './savedRounds.js';

/** s·B[:, from:to]·A[from:to, :] (float64, stored layout) added into `target`. */
function addProduct(target: Float64Array, f: LoraModule, scale: number, from: number, to: number, fanInFanOut: boolean): void {
  const [out, r] = f.B.shape;
  const inF = f.A.shape[1];
  for (let o = 0; o < out; o++) {
    for (let x = 0; x < inF; x++) {
      let s = 0;
      for (let j = from; j < to; j++) s += f.B.data[o * r + j] * f.A.data[j * inF + x];
      target[fanInFanOut ? x * out + o : o * inF + x] += scale * s;
    }
  }
}

/** The check of round `round` (uniform weights), with each client's rank read from its folder. */
export async function checkSavedRoundWithRanks(dir: string, round: number, layout: AdapterLayout): Promise<(RoundCheck & { ranks: number[] })[]> {
  const before = await readBase(join(roundDir(dir, round - 1), 'base'), layout);
  const after = await readBase(join(roundDir(dir, round), 'base'), layout);
  const clientDirs = (await readdir(join(roundDir(dir, round), 'clients'))).sort();
  const clients = await Promise.all(clientDirs.map((c) => readPeftAdapter(join(roundDir(dir, round), 'clients', c))));
  const previousDir = join(roundDir(dir, round - 1), 'global');
  const previous = existsSync(previousDir) ? await readPeftAdapter(previousDir) : null;
  if (previous === null && round !== 1) throw new Error(`no global adapter saved for round ${round - 1}`);
  const global = await readPeftAdapter(join(roundDir(dir, round), 'global'));
  return layout.map((m) => {
    const fan = m.fanInFanOut === true;
    const w0 = before.get(m.module)!;
    const find = (a: { modules: readonly LoraModule[] }): LoraModule => a.modules.find((x) => x.modulePath === m.module)!;
    const g = find(global);
    const scale = g.scaling;
    const mean = new Float64Array(w0.length);
    const ranks: number[] = [];
    for (const c of clients) {
      const f = find(c);
      const r = f.A.shape[0];
      ranks.push(r);
      const model = Float64Array.from(w0);
      // The client's own base: what its truncated start dropped.
      if (previous !== null) addProduct(model, find(previous), scale, r, m.rank, fan);
      addProduct(model, f, f.scaling, 0, r, fan);
      for (let i = 0; i < mean.length; i++) mean[i] += model[i] / clients.length;
    }
    const mine = Float64Array.from(after.get(m.module)!);
    addProduct(mine, g, scale, 0, g.A.shape[0], fan);
    let err = 0;
    let size = 0;
    for (let i = 0; i < mean.length; i++) {
      err = Math.max(err, Math.abs(mine[i] - mean[i]));
      size = Math.max(size, Math.abs(mean[i] - w0[i]));
    }
    return { module: m.module, err, size, ranks };
  });
}
