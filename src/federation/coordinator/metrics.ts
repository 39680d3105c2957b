/**
 * Per-module deviation norms for the coordinator, kept for callers of `moduleNorms`: the math
 * (Gram matrices for a small factored residual, one dense product through the `ProductBackend`
 * otherwise) lives in the core's `deviationNormsBounded`.
 */
import { deviationNormsBounded, type DeviationNorms } from '../../core/deviation.js';
import type { LoraFactors } from '../../core/lora.js';
import type { ProductBackend } from '../../core/product.js';

/** One module's inputs: the clients' factors and weights, the new global, and s·ΔR if already formed (out × in). */
export interface ModuleNormsInput {
  readonly out: number;
  readonly in: number;
  readonly scale: number;
  readonly clients: readonly LoraFactors[];
  readonly weights: readonly number[];
  readonly global: LoraFactors;
  readonly scaledResidual?: LoraFactors['a'];
}

/** Deviation norms of one module (`deviationNormsBounded` with the global as Ā, B̄). */
export function moduleNorms(input: ModuleNormsInput, backend: ProductBackend): Promise<DeviationNorms> {
  const { clients, weights, global, scale, scaledResidual } = input;
  return deviationNormsBounded({ clients, weights, abar: global.a, bbar: global.b, scale, scaledResidual }, backend);
}
