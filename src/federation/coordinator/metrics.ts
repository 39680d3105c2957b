/**
 * Per-module deviation norms (‖s·ΔR‖_F, ‖s·Σ w_i B_i A_i‖_F) at a cost bounded by one dense
 * product. The core's Gram-matrix route costs O((out + in)·(k·r)²) in TypeScript: right for a few
 * clients, minutes for a hundred. When the residual is bigger factored than dense (the same test
 * that picks its wire form), the norms come from the dense s·ΔR instead — already formed for a FedEx
 * dense residual, otherwise one fused product through the `ProductBackend` (onnxruntime).
 */
import { deviationNorms, relativeDeviation, type DeviationNorms } from '../../core/deviation.js';
import type { LoraFactors } from '../../core/lora.js';
import type { ProductBackend } from '../../core/product.js';
import { factorResidual } from '../../core/residual.js';
import { frobeniusNorm, type Matrix } from '../../core/tensor.js';
import { chooseResidualForm } from '../protocol/adapterTensors.js';

/** One module's inputs: the clients' factors and weights, the new global, and s·ΔR if already formed (out × in). */
export interface ModuleNormsInput {
  readonly out: number;
  readonly in: number;
  readonly scale: number;
  readonly clients: readonly LoraFactors[];
  readonly weights: readonly number[];
  readonly global: LoraFactors;
  readonly scaledResidual?: Matrix<Float32Array>;
}

/** Deviation norms of one module, through Gram matrices or a dense product, whichever is cheaper. */
export async function moduleNorms(input: ModuleNormsInput, backend: ProductBackend): Promise<DeviationNorms> {
  const { out, in: inF, scale, clients, weights, global } = input;
  const inner = clients.length * global.a.shape[0];
  if (input.scaledResidual === undefined && chooseResidualForm(out, inF, inner) === 'factored') {
    return deviationNorms(clients, weights, global.a, global.b, scale);
  }
  let d = input.scaledResidual;
  if (d === undefined) {
    const { p, q } = factorResidual(clients, weights, global.a, 'stacked');
    d = { shape: [out, inF], data: new Float32Array(out * inF) };
    await backend.addScaledProduct(d, 'linear', p, q, scale);
  }
  const deviation = frobeniusNorm(d.data);
  // s·Σ w_i B_i A_i = s·ΔR + s·B̄Ā: one rank-r product more.
  const ideal: Matrix<Float32Array> = { shape: [out, inF], data: Float32Array.from(d.data) };
  await backend.addScaledProduct(ideal, 'linear', global.b, global.a, scale);
  const idealNorm = frobeniusNorm(ideal.data);
  return { deviationNorm: deviation, idealUpdateNorm: idealNorm, relativeDeviation: relativeDeviation(deviation, idealNorm) };
}
