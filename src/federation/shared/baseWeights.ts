/**
 * A module's base weight as both ends of a federation hold it: its stored layout (`conv1d`, in × out,
 * for GPT-2's fan_in_fan_out modules), where the pristine weights come from (`BaseSource`), and
 * `applyResidual`, the one function the coordinator and the clients use to fold a residual into a
 * weight, so a client that applies what the coordinator sent holds bit-for-bit the coordinator's
 * base (given the same `ProductBackend`).
 */
import type { Layout } from '../../core/lora.js';
import type { ProductBackend } from '../../core/product.js';
import type { Matrix } from '../../core/tensor.js';
import { ROLE_RESIDUAL_DENSE, ROLE_RESIDUAL_P, ROLE_RESIDUAL_Q, tensorName, type AdapterLayout, type ModuleLayout, type ResidualEntry } from '../protocol/adapterTensors.js';
import type { NamedTensor } from '../protocol/envelope.js';
import { tensorMatrix } from './adapterWire.js';

/** The stored layout of a module's base weight: `conv1d` (in × out) when `fanInFanOut`. */
export function moduleLayout(m: Pick<ModuleLayout, 'fanInFanOut'>): Layout {
  return m.fanInFanOut === true ? 'conv1d' : 'linear';
}

/** Stored shape of a module's base weight. */
export function storedShape(m: ModuleLayout): [number, number] {
  return m.fanInFanOut === true ? [m.in, m.out] : [m.out, m.in];
}

/**
 * target += scale·D for a dense residual D in wire orientation (out × in); transposed into a
 * `conv1d` target (in × out). Each value is rounded to float32 once (scale·d, then the sum). With
 * `from`, target = from + scale·D instead (one pass for a copy-and-update, the same bits).
 */
export function addDense(target: Matrix<Float32Array>, layout: Layout, d: Matrix<Float32Array>, scale: number, from: Matrix<Float32Array> = target): void {
  const [out, inF] = d.shape;
  const t = target.data;
  const w = from.data;
  const src = d.data;
  if (layout === 'linear') {
    if (scale === 1) for (let i = 0; i < src.length; i++) t[i] = w[i] + src[i];
    else for (let i = 0; i < src.length; i++) t[i] = w[i] + Math.fround(scale * src[i]);
    return;
  }
  if (from !== target) t.set(w);
  for (let o = 0; o < out; o++) {
    for (let x = 0; x < inF; x++) t[x * out + o] += scale === 1 ? src[o * inF + x] : Math.fround(scale * src[o * inF + x]);
  }
}

/** Folds one residual entry (with its tensors from the message) into the module's stored base weight. */
export async function applyResidual(
  target: Matrix<Float32Array>, module: ModuleLayout, entry: ResidualEntry,
  tensors: ReadonlyMap<string, NamedTensor>, backend: ProductBackend,
): Promise<void> {
  const layout = moduleLayout(module);
  if (entry.form === 'factored') {
    const p = tensorMatrix(tensors, tensorName(module.module, ROLE_RESIDUAL_P), module.out, entry.innerDim);
    const q = tensorMatrix(tensors, tensorName(module.module, ROLE_RESIDUAL_Q), entry.innerDim, module.in);
    await backend.addScaledProduct(target, layout, p, q, entry.scale);
  } else {
    addDense(target, layout, tensorMatrix(tensors, tensorName(module.module, ROLE_RESIDUAL_DENSE), module.out, module.in), entry.scale);
  }
}

/** Where the pristine base comes from: its content hash and a loader of the adapted modules' weights. */
export interface BaseSource {
  /** Content hash of the pristine base model (`baseModelHash` of its files). */
  readonly hash: string;
  /**
   * The pristine weights of exactly the `layout`'s modules (no more, no fewer), in stored layout,
   * float32. Throws naming a layout module the model cannot adapt. Never written to: clients copy a
   * module before changing it.
   */
  load(layout: AdapterLayout): Promise<ReadonlyMap<string, Matrix<Float32Array>>>;
}

/** The weights of exactly `layout`'s modules out of `all`; throws naming the first one missing. */
export function layoutWeights(all: ReadonlyMap<string, Matrix<Float32Array>>, layout: AdapterLayout, where: string): Map<string, Matrix<Float32Array>> {
  const out = new Map<string, Matrix<Float32Array>>();
  for (const m of layout) {
    const w = all.get(m.module);
    if (w === undefined) throw new RangeError(`the federation adapts module ${m.module}, which ${where} does not have (${all.size} adaptable modules, e.g. ${[...all.keys()].slice(0, 3).join(', ')})`);
    out.set(m.module, w);
  }
  return out;
}
