// Reads what `--save-adapters` wrote for one round (client adapters, global adapter, base before
// and after) and measures, in float64, how far the global model W0' + s·B̄Ā is from the mean of the
// client models W0 + s·Bᵢ·Aᵢ (uniform weights), per module, relative to the size of the update.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { withCheckpoint } from '../../../src/model/checkpoint.js';
import { withSafetensors } from '../../../src/formats/safetensors.js';
import { readPeftAdapter, type LoraModule } from '../../../src/formats/peft.js';
import { roundDir } from '../../../src/federation/shared/adapterFolders.js';
import type { AdapterLayout } from '../../../src/federation/protocol/adapterTensors.js';

/** Float32 weights of the layout's modules in a saved base folder (a model folder or base.safetensors). */
export async function readBase(dir: string, layout: AdapterLayout): Promise<Map<string, Float32Array>> {
  const files = await readdir(dir);
  const out = new Map<string, Float32Array>();
  if (files.includes('config.json')) {
    await withCheckpoint(dir, async (c) => {
      for (const m of layout) out.set(m.module, await c.readFloat32(`${m.module}.weight`));
    });
  } else {
    await withSafetensors(join(dir, 'model.safetensors'), async (r) => {
      for (const m of layout) out.set(m.module, await r.readFloat32(`${m.module}.weight`));
    });
  }
  return out;
}

function effective(w: Float32Array, f: LoraModule, fanInFanOut: boolean): Float64Array {
  const [out, r] = f.B.shape;
  const inF = f.A.shape[1];
  const e = Float64Array.from(w);
  for (let o = 0; o < out; o++) {
    for (let x = 0; x < inF; x++) {
      let s = 0;
      for (let j = 0; j < r; j++) s += f.B.data[o * r + j] * f.A.data[j * inF + x];
      e[fanInFanOut ? x * out + o : o * inF + x] += f.scaling * s;
    }
  }
  return e;
}

/** Per module: max |global − mean of clients| and max |mean of clients − W0| (the update). */
export interface RoundCheck {
  readonly module: string;
  readonly err: number;
  readonly size: number;
}

/** Compares round `round`'s global model with the mean of its clients' models, from saved folders. */
export async function checkSavedRound(dir: string, round: number, layout: AdapterLayout): Promise<RoundCheck[]> {
  const before = await readBase(join(roundDir(dir, round - 1), 'base'), layout);
  const after = await readBase(join(roundDir(dir, round), 'base'), layout);
  const clientDirs = (await readdir(join(roundDir(dir, round), 'clients'))).sort();
  const clients = await Promise.all(clientDirs.map((c) => readPeftAdapter(join(roundDir(dir, round), 'clients', c))));
  const global = await readPeftAdapter(join(roundDir(dir, round), 'global'));
  return layout.map((m) => {
    const fan = m.fanInFanOut === true;
    const w0 = before.get(m.module)!;
    const mean = new Float64Array(w0.length);
    for (const c of clients) {
      const e = effective(w0, c.modules.find((x) => x.modulePath === m.module)!, fan);
      for (let i = 0; i < mean.length; i++) mean[i] += e[i] / clients.length;
    }
    const mine = effective(after.get(m.module)!, global.modules.find((x) => x.modulePath === m.module)!, fan);
    let err = 0;
    let size = 0;
    for (let i = 0; i < mean.length; i++) {
      err = Math.max(err, Math.abs(mine[i] - mean[i]));
      size = Math.max(size, Math.abs(mean[i] - w0[i]));
    }
    return { module: m.module, err, size };
  });
}
