// The dashboard's figures as a live federation emits them (3 clients over loopback WebSockets):
// per-module ‖ΔĀ‖, ‖ΔB̄‖ and per-client ‖A_i − Ā‖, ‖B_i − B̄‖ in round_closed, and the
// update_heatmap of every round, each against a float64 reference built from what the clients
// trained and the coordinator's snapshots.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loraScaling } from '../../../src/core/lora.js';
import type { StrategyName } from '../../../src/core/strategies/types.js';
import { createSyntheticTrainer } from '../../../src/federation/client/syntheticTrainer.js';
import { Coordinator } from '../../../src/federation/coordinator/coordinator.js';
import { maxAbsPool } from '../../../src/federation/coordinator/roundFigures.js';
import type { RoundRecord, UpdateHeatmap } from '../../../src/federation/coordinator/events.js';
import { LAYOUT, coordinatorConfig, effective, recording, startClients, tempRunDir, type Seen } from './fixtures.js';

type Snapshot = ReturnType<Coordinator['snapshot']>;

function norm64(x: ArrayLike<number>, y: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += (x[i] - y[i]) ** 2;
  return Math.sqrt(s);
}

/** Stored layout (in × out for fanInFanOut) → nn.Linear orientation (out × in). */
function wire(e: Float64Array, out: number, inF: number, fanInFanOut: boolean): Float64Array {
  if (!fanInFanOut) return e;
  const t = new Float64Array(out * inF);
  for (let o = 0; o < out; o++) for (let x = 0; x < inF; x++) t[o * inF + x] = e[x * out + o];
  return t;
}

async function run(method: StrategyName): Promise<{ records: RoundRecord[]; snaps: Snapshot[]; heatmaps: UpdateHeatmap[]; seen: Map<number, Seen>[] }> {
  const { dir, cleanup } = await tempRunDir();
  const coordinator = await Coordinator.create(coordinatorConfig(dir, { method, rounds: 2 }));
  const snaps = [coordinator.snapshot()];
  const records: RoundRecord[] = [];
  const heatmaps: UpdateHeatmap[] = [];
  coordinator.on('round_closed', (r) => {
    records.push(r);
    snaps.push(coordinator.snapshot());
  });
  coordinator.on('update_heatmap', (h) => heatmaps.push(h));
  try {
    const url = await coordinator.start();
    const seen = [0, 1, 2].map(() => new Map<number, Seen>());
    const { runs } = startClients(url, 3, (i) => ({ trainer: recording(createSyntheticTrainer({ seed: 300 + i, noise: 0.05 }), seen[i]) }));
    await Promise.all([coordinator.run(), ...runs]);
    return { records, snaps, heatmaps, seen };
  } finally {
    await coordinator.close();
    await cleanup();
  }
}

describe('dashboard figures of a live federation', { timeout: 20_000 }, () => {
  for (const method of ['fedex', 'fedit'] as const) {
    test(`${method}: drift norms in round_closed and update_heatmap per round match float64 references`, async () => {
      const { records, snaps, heatmaps, seen } = await run(method);
      assert.deepEqual(heatmaps.map((h) => h.round), [1, 2], 'one heatmap per aggregated round');
      for (const [r, record] of records.entries()) {
        const round = r + 1;
        const before = snaps[r];
        const after = snaps[r + 1];
        const heat = heatmaps[r];
        assert.equal(heat.method, method);
        assert.equal(heat.omittedModules, 0);
        for (const m of LAYOUT) {
          const mod = record.modules.find((x) => x.module === m.module)!;
          const close = (got: number | undefined, want: number, what: string): void => assert.ok(got !== undefined && Math.abs(got - want) <= 1e-9 * Math.max(want, 1e-30), `round ${round} ${m.module} ${what}: ${got} vs ${want}`);
          close(mod.globalDeltaANorm, norm64(after.global.get(m.module)!.a.data, before.global.get(m.module)!.a.data), '‖ΔĀ‖');
          close(mod.globalDeltaBNorm, norm64(after.global.get(m.module)!.b.data, before.global.get(m.module)!.b.data), '‖ΔB̄‖');
          assert.equal(mod.clientDeltaANorms!.length, record.participants.length);
          record.participants.forEach((id, k) => {
            const mine = seen[Number(id.slice(1))].get(round)!.result.adapter.get(m.module)!;
            close(mod.clientDeltaANorms![k], norm64(mine.a.data, after.global.get(m.module)!.a.data), `‖A_${id} − Ā‖`);
            close(mod.clientDeltaBNorms![k], norm64(mine.b.data, after.global.get(m.module)!.b.data), `‖B_${id} − B̄‖`);
          });
          // Reference: for FedEx the weighted mean of the clients' models minus the previous global
          // model (what the heatmap promises); for FedIT the global model's own change.
          const s = loraScaling(4, m.rank, false);
          const fan = m.fanInFanOut === true;
          const prev = effective(before.base.get(m.module)!, before.global.get(m.module)!, s, fan);
          const next = new Float64Array(prev.length);
          if (method === 'fedex') {
            for (const id of record.participants) {
              const got = seen[Number(id.slice(1))].get(round)!;
              const e = effective(got.base.get(m.module)!, got.result.adapter.get(m.module)!, s, fan);
              for (let j = 0; j < e.length; j++) next[j] += e[j] / record.participants.length;
            }
          } else {
            next.set(effective(after.base.get(m.module)!, after.global.get(m.module)!, s, fan));
          }
          const delta = wire(next.map((v, j) => v - prev[j]), m.out, m.in, fan);
          const want = maxAbsPool(delta, m.out, m.in);
          const h = heat.modules.find((x) => x.module === m.module)!;
          assert.deepEqual([h.rows, h.cols, h.poolRows, h.poolCols, h.out, h.in], [want.rows, want.cols, want.poolRows, want.poolCols, m.out, m.in]);
          let size = 0;
          for (const v of want.values) size = Math.max(size, v);
          assert.ok(size > 1e-4, `round ${round} ${m.module}: a visible update`);
          h.values!.forEach((v, i) => assert.ok(Math.abs(v - want.values[i]) <= 1e-4 * size, `round ${round} ${m.module} cell ${i}: ${v} vs ${want.values[i]}`));
        }
      }
    });
  }
});
