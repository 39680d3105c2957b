/**
 * Aggregation during the uploads. With many clients the FedEx residual is full rank and travels
 * dense; forming it at the close, D = s·P·Q with inner dimension k·r, is the one heavy product of a
 * round (100 clients, 8 × 512², r = 32: ≈ 0.3 s on 2 cores) and sits between the last upload and
 * the broadcast. Instead each accepted upload adds c_i·B_i·A_i into a float32 out × in accumulator
 * S per module as it arrives (one rank-r product, while other uploads are still on the wire), and
 * the close only needs
 *
 *   D = s·(S / Σc − B̄Ā)      (c_i = 1 for uniform weights, the example count for `examples`)
 *
 * which equals s·ΔR = s·(Σ w_i B_i A_i − B̄Ā) with the B̄, Ā actually sent. The sum runs in arrival
 * order, so its float32 rounding (≈ 1e-7 of ‖Σ w_i B_i A_i‖, the size the exactness test measures
 * against) may differ between runs; small modules, where the close is cheap anyway, keep the
 * deterministic factored path (`mode: 'auto'`).
 */
import type { ProductBackend } from '../../core/product.js';
import type { Matrix } from '../../core/tensor.js';
import { chooseResidualForm, type ModuleLayout } from '../protocol/adapterTensors.js';
import type { Adapter } from '../../core/lora.js';

/** Below this many multiply-adds of the close-time product (out·in·k·r) `auto` keeps the factored path. */
export const INCREMENTAL_MIN_MACS = 1 << 27;

/** When to accumulate: `auto` for large modules whose residual will travel dense, `always` whenever it will be dense, `off` never. */
export type IncrementalMode = 'auto' | 'always' | 'off';

/** What the close gets for one module: S = Σ c_i B_i A_i and Σ c_i. */
export interface AccumulatedModule {
  readonly sum: Matrix<Float32Array>;
  readonly total: number;
}

/** The accumulators of one round. */
export class IdealUpdateAccumulator {
  private readonly sums = new Map<string, Float32Array>();
  private readonly coefficients = new Map<string, number>();
  private chain: Promise<void> = Promise.resolve();
  private failed: Error | undefined;

  /**
   * `modules`: the layout modules to accumulate (see `accumulatedModules`). `weighting` fixes the
   * coefficients c_i.
   */
  constructor(
    private readonly modules: readonly ModuleLayout[],
    private readonly weighting: 'uniform' | 'examples',
    private readonly backend: ProductBackend,
  ) {
    for (const m of modules) this.sums.set(m.module, new Float32Array(m.out * m.in));
  }

  /** True when no module is accumulated. */
  get empty(): boolean {
    return this.modules.length === 0;
  }

  /** Adds one accepted upload (queued behind the previous ones; never throws, a failure disables the accumulator). */
  add(clientId: string, adapter: Adapter, numExamples: number): void {
    if (this.empty || this.coefficients.has(clientId)) return;
    const c = this.weighting === 'uniform' ? 1 : numExamples;
    this.coefficients.set(clientId, c);
    if (c === 0) return;
    this.chain = this.chain.then(async () => {
      if (this.failed !== undefined) return;
      for (const m of this.modules) {
        const f = adapter.get(m.module)!;
        await this.backend.addScaledProduct({ shape: [m.out, m.in], data: this.sums.get(m.module)! }, 'linear', f.b, f.a, c);
      }
    }).catch((err: unknown) => {
      this.failed = err instanceof Error ? err : new Error(String(err));
    });
  }

  /**
   * The accumulated sums once every queued addition is done, if they hold exactly `participants`
   * and their coefficients match the strategy's normalised `weights`; otherwise null (the caller
   * falls back to the factored path).
   */
  async finish(participants: readonly { readonly clientId: string }[], weights: readonly number[]): Promise<Map<string, AccumulatedModule> | null> {
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
    return new Map(this.modules.map((m) => [m.module, { sum: { shape: [m.out, m.in], data: this.sums.get(m.module)! }, total }]));
  }

  /** Drops the sums (a round that closes without them). */
  dispose(): void {
    this.sums.clear();
  }
}

/**
 * The modules worth accumulating for a round of `sampled` clients: those whose residual will travel
 * dense with that many contributors ((out + in)·k·r ≥ out·in), and for `auto` only where the
 * close-time product is large (≥ `INCREMENTAL_MIN_MACS`). Only FedEx-LoRA (the base update) and
 * FedIT with deviation metrics (the norms of s·ΔR) use the sums.
 */
export function accumulatedModules(
  layout: readonly ModuleLayout[], method: 'fedex' | 'fedit' | 'ffa', deviationMetrics: boolean, sampled: number, mode: IncrementalMode,
): ModuleLayout[] {
  if (mode === 'off' || sampled < 2 || !(method === 'fedex' || (method === 'fedit' && deviationMetrics))) return [];
  return layout.filter((m) => chooseResidualForm(m.out, m.in, sampled * m.rank) === 'dense'
    && (mode === 'always' || m.out * m.in * sampled * m.rank >= INCREMENTAL_MIN_MACS));
}
