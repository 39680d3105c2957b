/**
 * The coordinator's base revisions: each FedEx round that changes the base is one `ResidualStep`
 * (revision r − 1 → r), kept in the form it was applied to the master copy (factored P, Q, scale;
 * or dense D in wire orientation with scale 1). A client holding revision h gets the update h → R:
 * the step itself when it is one step (so it lands bit-for-bit on the coordinator's base), or the
 * steps combined (factors concatenated with the scales folded in, or summed densely, whichever is
 * smaller) when it missed several rounds.
 */
import type { ProductBackend } from '../../core/product.js';
import { factoredIsSmaller } from '../../core/residual.js';
import type { Matrix } from '../../core/tensor.js';
import {
  ROLE_RESIDUAL_DENSE,
  ROLE_RESIDUAL_P,
  ROLE_RESIDUAL_Q,
  tensorName,
  type AdapterLayout,
  type ModuleLayout,
  type ResidualEntry,
} from '../protocol/adapterTensors.js';
import type { NamedTensor } from '../protocol/envelope.js';
import { addDense, type BaseChange } from '../../core/baseChange.js';

/** One module's part of a step: a base change (core/baseChange.ts: W += scale·P·Q, or W += scale·D with D out × in). */
export type StepModule = { readonly module: string } & BaseChange;

/** The base change of one round: from `revision − 1` to `revision`. */
export interface ResidualStep {
  readonly revision: number;
  readonly round: number;
  readonly modules: readonly StepModule[];
}

/** A base update ready for a message: its params entries and tensors. */
export interface BaseUpdatePayload {
  readonly fromRevision: number;
  readonly entries: ResidualEntry[];
  readonly tensors: NamedTensor[];
}

function entryOf(m: StepModule): ResidualEntry {
  return m.form === 'factored'
    ? { module: m.module, form: 'factored', innerDim: m.p.shape[1], scale: m.scale }
    : { module: m.module, form: 'dense', innerDim: 0, scale: m.scale };
}

function tensorsOf(m: StepModule): NamedTensor[] {
  return m.form === 'factored'
    ? [
      { name: tensorName(m.module, ROLE_RESIDUAL_P), shape: m.p.shape, data: m.p.data },
      { name: tensorName(m.module, ROLE_RESIDUAL_Q), shape: m.q.shape, data: m.q.data },
    ]
    : [{ name: tensorName(m.module, ROLE_RESIDUAL_DENSE), shape: m.d.shape, data: m.d.data }];
}

/** scale·P·Q (or scale·D) added into a dense out × in accumulator. */
async function accumulateDense(acc: Matrix<Float32Array>, m: StepModule, backend: ProductBackend): Promise<void> {
  if (m.form === 'factored') await backend.addScaledProduct(acc, 'linear', m.p, m.q, m.scale);
  else addDense(acc, 'linear', m.d, m.scale);
}

/** One module's parts over several steps, combined into one step module. */
async function combine(layout: ModuleLayout, parts: readonly StepModule[], factoredOk: boolean, backend: ProductBackend): Promise<StepModule> {
  if (parts.length === 1 && (parts[0].form === 'dense' || factoredOk)) return parts[0];
  const { out, in: inF } = layout;
  const factoredParts = parts.filter((p): p is Extract<StepModule, { form: 'factored' }> => p.form === 'factored');
  const inner = factoredParts.reduce((n, p) => n + p.p.shape[1], 0);
  if (factoredOk && factoredParts.length === parts.length && factoredIsSmaller(out, inF, inner)) {
    const p = new Float32Array(out * inner);
    const q = new Float32Array(inner * inF);
    let col = 0;
    for (const part of factoredParts) {
      const k = part.p.shape[1];
      for (let o = 0; o < out; o++) for (let j = 0; j < k; j++) p[o * inner + col + j] = Math.fround(part.scale * part.p.data[o * k + j]);
      q.set(part.q.data, col * inF);
      col += k;
    }
    return { module: layout.module, form: 'factored', scale: 1, p: { shape: [out, inner], data: p }, q: { shape: [inner, inF], data: q } };
  }
  const acc: Matrix<Float32Array> = { shape: [out, inF], data: new Float32Array(out * inF) };
  for (const part of parts) await accumulateDense(acc, part, backend);
  return { module: layout.module, form: 'dense', scale: 1, d: acc };
}

/** Every step since revision 0, in memory, with what has been sent kept small by combining. */
export class ResidualHistory {
  private readonly steps = new Map<number, ResidualStep>();

  constructor(private readonly load: (revision: number) => Promise<ResidualStep>) {}

  /** Records the step that produced `step.revision`. */
  add(step: ResidualStep): void {
    this.steps.set(step.revision, step);
  }

  private async step(revision: number): Promise<ResidualStep> {
    const cached = this.steps.get(revision);
    if (cached !== undefined) return cached;
    const loaded = await this.load(revision);
    this.steps.set(revision, loaded);
    return loaded;
  }

  /** Keeps only the steps after `revision` in memory (older ones are read back from disk when needed). */
  evictUpTo(revision: number): void {
    for (const r of this.steps.keys()) if (r <= revision) this.steps.delete(r);
  }

  /**
   * The update that takes a client from `from` to `to` (from < to), per module in layout order.
   * `factoredOk`: the client applies factored residuals (else everything is sent dense).
   */
  async updateBetween(from: number, to: number, layout: AdapterLayout, factoredOk: boolean, backend: ProductBackend): Promise<BaseUpdatePayload> {
    const byModule = new Map<string, StepModule[]>();
    for (let r = from + 1; r <= to; r++) {
      for (const m of (await this.step(r)).modules) byModule.set(m.module, [...(byModule.get(m.module) ?? []), m]);
    }
    const entries: ResidualEntry[] = [];
    const tensors: NamedTensor[] = [];
    for (const m of layout) {
      const parts = byModule.get(m.module);
      if (parts === undefined) continue;
      const combined = await combine(m, parts, factoredOk, backend);
      entries.push(entryOf(combined));
      tensors.push(...tensorsOf(combined));
    }
    return { fromRevision: from, entries, tensors };
  }
}

/** Entries and tensors of one step as stored on disk (same names as on the wire). */
export function stepTensors(step: ResidualStep): { entries: ResidualEntry[]; tensors: NamedTensor[] } {
  return { entries: step.modules.map(entryOf), tensors: step.modules.flatMap(tensorsOf) };
}
