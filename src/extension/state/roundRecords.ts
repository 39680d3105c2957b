/**
 * Readers of the coordinator's richer payloads (src/federation/coordinator/events.ts): a
 * `round_closed` RoundRecord → RoundPoint (with the per-module ‖ΔĀ‖, ‖ΔB̄‖ and the per-participant
 * ‖A_i − Ā‖, ‖B_i − B̄‖), and an `update_heatmap` event → one HeatmapView per module.
 */
import { classifyModule, layerIndex } from '../../core/moduleNames.js';
import type { ClientLoss, ClientModuleDiff, HeatmapView, ModulePoint, PrivacyPoint, RoundPoint } from './federationState.js';
import { arr, entries, fields, num, str, strings, type Fields } from './read.js';

/** Largest heatmap side accepted (the coordinator pools to ≤ 32). */
export const MAX_HEATMAP_SIDE = 64;

/** A RoundRecord as a RoundPoint, or null when it has no round number. */
export function readRoundClosed(p: Fields, time: number): RoundPoint | null {
  const round = num(p.round);
  if (round === null) return null;
  const clientLoss: ClientLoss[] = entries(p.clients).map(([client, v]) => {
    const c = fields(v) ?? {};
    return { client, loss: num(c.trainLoss), examples: num(c.examples) };
  });
  // Per-client norms are arrays in `participants` order.
  const participants = strings(p.participants);
  const modules: ModulePoint[] = [];
  const clientDiffs: ClientModuleDiff[] = [];
  for (const raw of arr(p.modules)) {
    const m = fields(raw);
    const module = m === null ? null : str(m.module);
    if (m === null || module === null) continue;
    modules.push({
      module,
      type: classifyModule(module),
      layer: layerIndex(module),
      deviation: num(m.deviation),
      relativeDeviation: num(m.relativeDeviation),
      residualNorm: num(m.residualNorm),
      deltaA: num(m.globalDeltaANorm),
      deltaB: num(m.globalDeltaBNorm),
    });
    const a = arr(m.clientDeltaANorms);
    const b = arr(m.clientDeltaBNorms);
    if (a.length === 0 && b.length === 0) continue;
    participants.forEach((client, i) => clientDiffs.push({ client, module, a: num(a[i]), b: num(b[i]) }));
  }
  const rel = modules.map((x) => x.relativeDeviation).filter((x): x is number => x !== null);
  const loss = fields(p.loss);
  const traffic = fields(p.traffic);
  const sent = num(traffic?.wireSent) ?? num(traffic?.sent);
  const received = num(traffic?.wireReceived) ?? num(traffic?.received);
  return {
    round,
    aggregated: p.aggregated !== false,
    closedAt: num(p.closedAt) ?? time,
    durationMs: num(p.durationMs),
    sampled: strings(p.sampled).length,
    participants: participants.length,
    meanLoss: num(loss?.mean),
    meanRelativeDeviation: rel.length > 0 ? rel.reduce((x, y) => x + y, 0) / rel.length : null,
    clientLoss,
    modules,
    clientDiffs,
    bytes: sent === null && received === null ? null : (sent ?? 0) + (received ?? 0),
    ...readPrivacy(p.privacy),
  };
}

/** A round record's `privacy` (client-level DP) as a RoundPoint field; nothing when absent or not an object. */
function readPrivacy(raw: unknown): { privacy?: PrivacyPoint } {
  const p = fields(raw);
  if (p === null) return {};
  return { privacy: { epsilon: num(p.epsilon), delta: num(p.delta), releases: num(p.releases), clipped: num(p.clipped), updates: arr(p.updateNorms).length, noiseStd: num(p.noiseStd) } };
}

/** One module of an `update_heatmap` as a HeatmapView, or null when its grid is malformed. */
function readHeatmapModule(round: number, raw: unknown): HeatmapView | null {
  const m = fields(raw);
  const module = m === null ? null : str(m.module);
  if (m === null || module === null) return null;
  const base = { module, round, sourceRows: num(m.out), sourceCols: num(m.in), maxAbs: num(m.maxAbs), norm: num(m.norm) };
  const rows = num(m.rows);
  const cols = num(m.cols);
  const values = Array.isArray(m.values) ? m.values : null;
  const skipped = (note: string): HeatmapView => ({ ...base, rows: 0, cols: 0, values: [], note });
  if (values === null) return skipped(str(m.note) ?? 'no values');
  if (rows === null || cols === null || !Number.isInteger(rows) || !Number.isInteger(cols) || rows < 1 || cols < 1 || rows > MAX_HEATMAP_SIDE || cols > MAX_HEATMAP_SIDE) {
    return skipped(`malformed grid ${String(m.rows)}×${String(m.cols)}`);
  }
  if (values.length !== rows * cols) return skipped(`${values.length} values for a ${rows}×${cols} grid`);
  return { ...base, rows, cols, values: values.map(num), note: str(m.note) };
}

/** The modules of an `update_heatmap` event (empty when it has no round). */
export function readHeatmaps(p: Fields): HeatmapView[] {
  const round = num(p.round);
  if (round === null) return [];
  return arr(p.modules).map((m) => readHeatmapModule(round, m)).filter((h): h is HeatmapView => h !== null);
}
