/**
 * A client's float32 copy of the adapted base weights and its revision (docs/protocol.md §5.3–5.4),
 * loaded at the first welcome for exactly the federation's modules; base updates are folded in with
 * shared/baseWeights.ts's `applyResidual`, the coordinator's own function.
 */
import type { ProductBackend } from '../../core/product.js';
import type { Matrix } from '../../core/tensor.js';
import type { AdapterLayout, ResidualEntry } from '../protocol/adapterTensors.js';
import { tensorMap, type NamedTensor } from '../protocol/envelope.js';
import { applyResidual, storedShape, type BaseSource } from '../shared/baseWeights.js';
import { ClientError } from './errors.js';

/** The base update of a `round_start` or `federation_done`. */
export interface BaseUpdateParams {
  readonly baseRevision: number;
  readonly baseUpdate?: { readonly fromRevision: number; readonly modules: readonly ResidualEntry[] };
}

/**
 * A client's base weights at some revision. Copy-on-write: the loaded weights are shared until a
 * base update touches a module (FedIT and FFA-LoRA never copy anything; FedEx copies each module
 * once), so a loader may hand out the same matrices to many clients.
 */
export class BaseCopy {
  private readonly owned = new Set<string>();

  private constructor(
    private readonly source: BaseSource,
    /** The federation's adapted modules: exactly the modules this copy holds. */
    readonly layout: AdapterLayout,
    private current: Map<string, Matrix<Float32Array>>,
    private rev: number,
  ) {}

  /**
   * Loads the pristine base (revision 0) of exactly the layout's modules, checked against the
   * layout's shapes (`C_BASE_LAYOUT` naming the first difference).
   */
  static async load(source: BaseSource, layout: AdapterLayout): Promise<BaseCopy> {
    let loaded: ReadonlyMap<string, Matrix<Float32Array>>;
    try {
      loaded = await source.load(layout);
    } catch (err) {
      if (err instanceof ClientError) throw err;
      throw new ClientError('C_BASE_LAYOUT', `cannot load the base weights of the federation's modules: ${(err as Error).message}`, { cause: err });
    }
    const copy = new BaseCopy(source, layout, new Map(loaded), 0);
    copy.checkLayout(layout);
    if (copy.current.size !== layout.length) throw new ClientError('C_BASE_LAYOUT', `the base source returned ${copy.current.size} modules for a layout of ${layout.length}`);
    return copy;
  }

  /** True when this copy holds the same modules, in the same shapes, as `layout`. */
  sameLayout(layout: AdapterLayout): boolean {
    return layout.length === this.layout.length && layout.every((m, i) => {
      const mine = this.layout[i];
      return mine.module === m.module && mine.in === m.in && mine.out === m.out && (mine.fanInFanOut === true) === (m.fanInFanOut === true);
    });
  }

  /** Back to the pristine base (revision 0). */
  private async reload(): Promise<void> {
    this.current = new Map(await this.source.load(this.layout));
    this.owned.clear();
    this.rev = 0;
  }

  /** The module's weight, copied first if it is still shared with the source (`fill: false`: allocated, not copied). */
  private writable(module: string, fill = true): Matrix<Float32Array> | undefined {
    const m = this.current.get(module);
    if (m === undefined || this.owned.has(module)) return m;
    const copy: Matrix<Float32Array> = { shape: [m.shape[0], m.shape[1]], data: fill ? Float32Array.from(m.data) : new Float32Array(m.data.length) };
    this.current.set(module, copy);
    this.owned.add(module);
    return copy;
  }

  get hash(): string {
    return this.source.hash;
  }

  get revision(): number {
    return this.rev;
  }

  get modules(): ReadonlyMap<string, Matrix<Float32Array>> {
    return this.current;
  }

  /** Throws `C_BASE_LAYOUT` unless every layout module is present with its stored shape. */
  checkLayout(layout: AdapterLayout): void {
    for (const m of layout) {
      const w = this.current.get(m.module);
      const [rows, cols] = storedShape(m);
      if (w === undefined) throw new ClientError('C_BASE_LAYOUT', `the local base has no weight for module ${m.module}, which the federation adapts`);
      if (w.shape[0] !== rows || w.shape[1] !== cols) {
        throw new ClientError('C_BASE_LAYOUT', `module ${m.module}: local base weight is [${w.shape.join(', ')}], the federation's layout needs [${rows}, ${cols}]${m.fanInFanOut ? ' (fanInFanOut: in × out)' : ''}`);
      }
    }
  }

  /**
   * Applies a message's base update (§5.4): without one the revision must already match; with one
   * the revision must be `fromRevision`, or `fromRevision` is 0 and the pristine base is reloaded
   * first. Returns the modules that changed; a revision mismatch throws `E_BASE_MISMATCH` before
   * anything is touched.
   */
  async apply(params: BaseUpdateParams, tensors: readonly NamedTensor[], layout: AdapterLayout, backend: ProductBackend): Promise<string[]> {
    const update = params.baseUpdate;
    if (update === undefined) {
      // Revision 0 is the pristine base, named by its hash: any client can go back to it.
      if (params.baseRevision === 0 && this.rev !== 0) {
        await this.reload();
        return [...this.current.keys()];
      }
      if (this.rev !== params.baseRevision) {
        throw new ClientError('E_BASE_MISMATCH', `coordinator assumes base revision ${params.baseRevision} without sending an update; this client holds revision ${this.rev}`);
      }
      return [];
    }
    if (update.fromRevision !== this.rev && update.fromRevision !== 0) {
      throw new ClientError('E_BASE_MISMATCH', `base update applies to revision ${update.fromRevision}; this client holds revision ${this.rev}`);
    }
    if (update.fromRevision !== this.rev) await this.reload();
    const byModule = new Map(layout.map((m) => [m.module, m]));
    const byName = tensorMap(tensors);
    for (const entry of update.modules) {
      const m = byModule.get(entry.module);
      if (m === undefined || !this.current.has(entry.module)) throw new ClientError('E_BASE_MISMATCH', `base update names module ${entry.module}, which is not adapted here`);
      const shared = this.owned.has(entry.module) ? undefined : this.current.get(entry.module);
      // A dense update of a still-shared module: copy and add in one pass.
      const fused = shared !== undefined && entry.form === 'dense';
      const target = this.writable(entry.module, !fused)!;
      await applyResidual(target, m, entry, byName, backend, fused ? shared : undefined);
    }
    this.rev = params.baseRevision;
    return update.modules.map((e) => e.module);
  }
}
