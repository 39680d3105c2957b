/**
 * A client that trains below the federation's global rank (protocol 1.3, docs/protocol.md §5.6,
 * docs/math.md §1.4): what it trains with is the federation's settings at its rank r_i — every module
 * of rank above r_i capped at r_i, alpha scaled so the LoRA scaling stays the global s — and each
 * round it starts from the global adapter truncated to r_i, with what the truncation drops,
 * s·B_g[:, r_i:]·A_g[r_i:, :], added to a copy of its base. Its model then equals the global model when
 * the round starts; the coordinator, which knows the truncation, folds the same term into the global
 * base at the close, so the aggregate stays exact. The base copy itself stays at the coordinator's
 * revision: the adjusted weights are fresh copies for this round's training only.
 */
import { truncateFactors, truncationLoss } from '../../core/clientRanks.js';
import { loraScaling, type Adapter, type LoraFactors } from '../../core/lora.js';
import type { ProductBackend } from '../../core/product.js';
import type { Matrix } from '../../core/tensor.js';
import { moduleLayout } from '../shared/baseWeights.js';
import { ClientError } from './errors.js';
import type { BaseUpdateInfo, FederationSettings } from './trainer.js';

/**
 * The federation's settings as a client of rank `rank` trains with them: `rank`, the layout at that
 * rank, and alpha scaled by rank / global rank (by √ with rsLoRA) so that alpha / r — the scaling —
 * is the global one. The settings themselves when `rank` is absent or the global rank.
 */
export function settingsAtRank(config: FederationSettings, rank: number | undefined): FederationSettings {
  if (rank === undefined || rank === config.rank) return config;
  if (!Number.isInteger(rank) || rank < 1 || rank > config.rank) {
    throw new ClientError('C_BASE_LAYOUT', `client rank ${rank} must be an integer in 1..${config.rank} (the federation's global rank)`);
  }
  const alpha = config.rsLora ? config.alpha * Math.sqrt(rank / config.rank) : config.alpha * (rank / config.rank);
  return { ...config, rank, alpha, layout: config.layout.map((m) => (m.rank <= rank ? m : { ...m, rank })) };
}

/** The global adapter truncated to the layout's ranks (first r rows of A, columns of B). */
export function truncatedAdapter(global: Adapter, layout: FederationSettings['layout']): Map<string, LoraFactors> {
  const out = new Map<string, LoraFactors>();
  for (const m of layout) {
    const g = global.get(m.module);
    if (g === undefined) throw new ClientError('E_INTERNAL', `the global adapter has no module ${m.module}`);
    out.set(m.module, truncateFactors(g, m.rank));
  }
  return out;
}

/**
 * The base a client of rank below the global one trains on this round: for every module whose
 * truncation drops something, a copy of the base weight plus s·B_g[:, r:]·A_g[r:, :] (layout-aware,
 * through `backend`); the base itself otherwise. `adjusted` names the modules that differ from the revision.
 */
export async function truncatedBase(
  base: BaseUpdateInfo,
  global: Adapter,
  config: FederationSettings,
  rank: number,
  backend: ProductBackend,
): Promise<BaseUpdateInfo> {
  const modules = new Map(base.modules);
  const adjusted: string[] = [];
  for (const m of config.layout) {
    if (m.rank <= rank) continue;
    const g = global.get(m.module);
    const w = base.modules.get(m.module);
    if (g === undefined || w === undefined) throw new ClientError('E_INTERNAL', `module ${m.module}: no global adapter or base weight to truncate`);
    const loss = truncationLoss(g, rank);
    if (loss === null) continue;
    const copy: Matrix<Float32Array> = { shape: w.shape, data: Float32Array.from(w.data) };
    await backend.addScaledProduct(copy, moduleLayout(m), loss.p, loss.q, loraScaling(config.alpha, m.rank, config.rsLora));
    modules.set(m.module, copy);
    adjusted.push(m.module);
  }
  return adjusted.length === 0 ? base : { ...base, modules, adjustedModules: adjusted };
}
