/**
 * Aggregation during the uploads. With many clients the FedEx residual is full rank and travels
 * dense; forming it at the close, D = s·P·Q with inner dimension k·r, is the one heavy product of a
 * round (100 clients, 8 × 512², r = 32: ≈ 0.3 s on 2 cores) and sits between the last upload and
 * the broadcast. A strategy that is linear in the uploads offers a streaming accumulator per module
 * (`AggregationStrategy.accumulator`, core/strategies/sums.ts): each accepted upload is added as it
 * arrives, while other uploads are still on the wire, and the close only finishes the sums. This
 * file decides which modules are worth it and keeps the bookkeeping: one queue in arrival order,
 * each client's coefficient, and whether the sums hold exactly the round's participants with the
 * strategy's weights (otherwise the close uses the strategy's own `aggregate`). Small modules,
 * where the close is cheap anyway, keep the deterministic path (`mode: 'auto'`).
 */
import type { Adapter, LoraModuleSpec } from '../../core/lora.js';
import type { ProductBackend } from '../../core/product.js';
import { preferFactored } from '../../core/residual.js';
import type { AggregationStrategy, ModuleAccumulator } from '../../core/strategies/types.js';
import type { ModuleLayout } from '../protocol/adapterTensors.js';

/** Below this many multiply-adds of the close-time product (out·in·k·r) `auto` keeps the factored path. */
export const INCREMENTAL_MIN_MACS = 1 << 27;

/** When to accumulate: `auto` for large modules whose residual will travel dense, `always` whenever it will be dense, `off` never. */
export type IncrementalMode = 'auto' | 'always' | 'off';

/** The accumulators of one round. */
export class UploadAccumulator {
  private readonly accumulators = new Map<string, ModuleAccumulator>();
  private readonly coefficients = new Map<string, number>();
  private chain: Promise<void> = Promise.resolve();
  private failed: Error | undefined;

  /**
   * `modules`: the specs to accumulate (see `accumulatedModules`), each through the strategy's own
   * accumulator. `weighting` fixes the coefficients c_i (1, or the example count).
   */
  constructor(
    modules: readonly LoraModuleSpec[],
    strategy: AggregationStrategy,
    private readonly weighting: 'uniform' | 'examples',
    backend: ProductBackend,
  ) {
    if (strategy.accumulator === undefined) return;
    for (const spec of modules) this.accumulators.set(spec.name, strategy.accumulator(spec, backend));
  }

  /** True when no module is accumulated. */
  get empty(): boolean {
    return this.accumulators.size === 0;
  }

  /** Adds one accepted upload (queued behind the previous ones; never throws, a failure disables the accumulator). */
  add(clientId: string, adapter: Adapter, numExamples: number): void {
    if (this.empty || this.coefficients.has(clientId)) return;
    const c = this.weighting === 'uniform' ? 1 : numExamples;
    this.coefficients.set(clientId, c);
    this.chain = this.chain.then(async () => {
      if (this.failed !== undefined) return;
      for (const [name, acc] of this.accumulators) await acc.add(adapter.get(name)!, c);
    }).catch((err: unknown) => {
      this.failed = err instanceof Error ? err : new Error(String(err));
    });
  }

  /**
   * The accumulators once every queued addition is done, if they hold exactly `participants` and
   * their coefficients match the strategy's normalised `weights`; otherwise null (the caller uses
   * the strategy's `aggregate`).
   */
  async finish(participants: readonly { readonly clientId: string }[], weights: readonly number[]): Promise<ReadonlyMap<string, ModuleAccumulator> | null> {
    await this.chain;
    if (this.failed !== undefined || this.empty || participants.length !== this.coefficients.size || weights.length !== participants.length) return null;
    let total = 0;
    for (const p of participants) {
      const c = this.coefficients.get(p.clientId);
      if (c === undefined) return null;
      total += c;
    }
    if (!(total > 0)) return null;
    for (let i = 0; i < participants.length; i++) {
      if (!(Math.abs(this.coefficients.get(participants[i].clientId)! / total - weights[i]) <= 1e-12)) return null;
    }
    return this.accumulators;
  }

  /** Drops the sums (a round that closes without them). */
  dispose(): void {
    this.accumulators.clear();
  }
}

/**
 * The modules worth accumulating for a round of `sampled` clients: none when the strategy offers no
 * accumulator, or when the sums would serve nothing (a strategy that leaves the base alone, without
 * deviation metrics); else those whose residual will travel dense with that many contributors
 * ((out + in)·k·r ≥ out·in), and for `auto` only where the close-time product is large
 * (≥ `INCREMENTAL_MIN_MACS`).
 */
export function accumulatedModules(
  layout: readonly ModuleLayout[],
  strategy: Pick<AggregationStrategy, 'accumulator' | 'updatesBase'>,
  deviationMetrics: boolean,
  sampled: number,
  mode: IncrementalMode,
): ModuleLayout[] {
  if (mode === 'off' || sampled < 2 || strategy.accumulator === undefined || !(strategy.updatesBase || deviationMetrics)) return [];
  return layout.filter((m) =>
    !preferFactored(m.out, m.in, sampled, m.rank)
    && (mode === 'always' || m.out * m.in * sampled * m.rank >= INCREMENTAL_MIN_MACS)
  );
}
