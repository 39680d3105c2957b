/**
 * A module's base weight as both ends of a federation hold it: its stored layout (`conv1d`, in × out,
 * for GPT-2's fan_in_fan_out modules), where the pristine weights come from (`BaseSource`), and
 * `applyResidual`, which the clients use to fold a message's residual into a weight through core's
 * `applyBaseChange` (the coordinator's function for its own steps), so a client that applies what the coordinator sent holds bit-for-bit the coordinator's
 * base (given the same `ProductBackend`).
 */
import type { Layout } from '../../core/lora.js';
import type { ProductBackend } from '../../core/product.js';
import type { Matrix } from '../../core/tensor.js';
import { applyBaseChange, type BaseChange } from '../../core/baseChange.js';
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

/** The base change one residual entry of a message describes (its tensors looked up by name). */
export function entryChange(module: ModuleLayout, entry: ResidualEntry, tensors: ReadonlyMap<string, NamedTensor>): BaseChange {
  return entry.form === 'factored'
    ? {
      form: 'factored',
      scale: entry.scale,
      p: tensorMatrix(tensors, tensorName(module.module, ROLE_RESIDUAL_P), module.out, entry.innerDim),
      q: tensorMatrix(tensors, tensorName(module.module, ROLE_RESIDUAL_Q), entry.innerDim, module.in),
    }
    : { form: 'dense', scale: entry.scale, d: tensorMatrix(tensors, tensorName(module.module, ROLE_RESIDUAL_DENSE), module.out, module.in) };
}

/** Folds one residual entry (with its tensors from the message) into the module's stored base weight (`from`: copy-and-update in one pass). */
export async function applyResidual(
  target: Matrix<Float32Array>,
  module: ModuleLayout,
  entry: ResidualEntry,
  tensors: ReadonlyMap<string, NamedTensor>,
  backend: ProductBackend,
  from?: Matrix<Float32Array>,
): Promise<void> {
  await applyBaseChange(target, moduleLayout(module), entryChange(module, entry, tensors), backend, from);
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
